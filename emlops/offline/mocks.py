"""Truthful Pulumi mocks: what AWS would have answered, in AWS's own formats.

Pulumi's mocks accept anything, so a plan made with naive mocks can be full of empty ARNs and
missing names. These mocks answer like the AWS provider would for the stack's account, region and
partition: auto-naming with Pulumi's `<logical name>-<7 hex>` suffix, ARNs in each service's format,
physical ids the provider would use, and realistic answers to data sources. Anything they have no
truthful answer for fails loudly instead of returning `{}`.
The per-type tables they read (ARN formats, EC2 id prefixes, naming limits) live in `emlops.offline.mock_tables`.
"""

from __future__ import annotations

import base64
import functools
import json
import hashlib
import importlib
import inspect
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pulumi

from emlops.catalog.aws import partition_of, zone_id_prefix
from emlops.offline.mock_tables import (ARN_FORMATS, AUTONAME_OVERRIDES, LOWERCASE_NAMES,  # noqa: F401 (re-exported)
                                MAX_NAME_LENGTH, _BUCKET_CHILDREN, _EC2_ID_PREFIXES)


class MockGap(Exception):
    """The offline preview has no truthful answer for something the program asked for."""


@dataclass(frozen=True)
class AwsIdentity:
    """The account, region and partition a provider deploys into."""

    account_id: str
    region: str

    @property
    def partition(self) -> str:
        return partition_of(self.region).name

    @property
    def dns_suffix(self) -> str:
        return partition_of(self.region).dns_suffix


SUFFIX_LENGTH = 7


def digest(seed: str, length: int = SUFFIX_LENGTH) -> str:
    """A deterministic stand-in for Pulumi's random hex: same URN, same suffix, every run."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def autoname(logical_name: str, seed: str, max_length: int = 255, lowercase: bool = False) -> str:
    """Pulumi's auto-name: logical name, '-', 7 hex characters (the prefix is cut to fit)."""
    prefix = logical_name.lower() if lowercase else logical_name
    room = max_length - SUFFIX_LENGTH - 1
    return f"{prefix[:room]}-{digest(seed)}"


@functools.lru_cache(maxsize=None)
def _resource_class(token: str) -> Optional[type]:
    """The pulumi_aws class of a type token (`aws:s3/bucket:Bucket` -> `pulumi_aws.s3.Bucket`)."""
    package, module_path, class_name = token.split(":")
    if package != "aws":
        return None
    module = module_path.split("/")[0]
    try:
        mod = importlib.import_module("pulumi_aws" if module == "index" else f"pulumi_aws.{module}")
    except ImportError:
        return None
    return getattr(mod, class_name, None)


@functools.lru_cache(maxsize=None)
def _optional_init_args(token: str) -> frozenset[str]:
    """Arguments of a resource type that the program may leave out (and the provider may fill)."""
    cls = _resource_class(token)
    args_cls = getattr(importlib.import_module(cls.__module__), f"{cls.__name__}Args", None) if cls else None
    if args_cls is None:
        return frozenset()
    params = inspect.signature(args_cls.__init__).parameters
    return frozenset(name for name, p in params.items() if p.default is not inspect.Parameter.empty)


def _has_output(token: str, prop: str) -> bool:
    cls = _resource_class(token)
    return cls is not None and isinstance(getattr(cls, prop, None), property)


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)


class TruthfulMocks(pulumi.runtime.Mocks):
    """Mocks that answer for the stack's AWS account, region and partition."""

    def __init__(self, identity: AwsIdentity, stack_outputs: Optional[dict[str, dict]] = None):
        self.identity = identity
        # Outputs of the stacks the program references, by fully qualified name (`org/project/stack`).
        self.stack_outputs = dict(stack_outputs or {})
        # Explicit providers may point at other accounts or regions; invokes through them answer
        # for their own identity.
        self._providers: dict[str, AwsIdentity] = {}

    # -- resources --------------------------------------------------------------------------------

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        seed = getattr(args, "urn", None) or f"{args.typ}::{args.name}"
        state = dict(args.inputs)
        if args.typ.startswith("pulumi:providers:"):
            provider_id = str(uuid.UUID(digest(seed, 32)))
            if args.typ in ("pulumi:providers:aws", "pulumi:providers:aws-native"):
                self._register_provider(seed, provider_id, state)
            return provider_id, state

        if args.typ == "pulumi:pulumi:StackReference":
            return self._stack_reference(str(args.resource_id or args.name))

        identity = self.identity_for(args.provider)
        self._autoname(args.typ, args.name, seed, state)
        resource_id = self._physical_id(args.typ, seed, state)
        self._computed(args.typ, resource_id, state, identity)
        if args.typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            resource_id = state["arn"]  # IAM identifies OIDC providers by their ARN
        if args.typ == "aws-native:sagemaker:ModelQualityJobDefinition":
            resource_id = state["jobDefinitionArn"]
        if "tags" in state and _has_output(args.typ, "tags_all"):
            state["tagsAll"] = dict(state["tags"] or {})
        return resource_id, state

    def stack_reference_gap(self, name: str) -> MockGap:
        known = ", ".join(sorted(self.stack_outputs)) or "none"
        return MockGap(f"the program references stack {name!r}, whose outputs the offline preview does not "
                       f"have (previewed first: {known}); name it in registry.shared_stack")

    def _stack_reference(self, name: str) -> tuple[str, dict]:
        """What the engine reads for a stack reference: the referenced stack's outputs."""
        if name not in self.stack_outputs:
            raise self.stack_reference_gap(name)
        outputs = self.stack_outputs[name]
        secrets = sorted(key for key, value in outputs.items() if value == "[secret]")
        return name, {"name": name, "outputs": dict(outputs), "secretOutputNames": secrets}

    @staticmethod
    def autonamed_property(typ: str) -> Optional[str]:
        """The property Pulumi fills with an auto-name when the program leaves it out, if any."""
        if typ in AUTONAME_OVERRIDES:
            return AUTONAME_OVERRIDES[typ][0]
        if "name" in _optional_init_args(typ) and _has_output(typ, "name"):
            return "name"
        return None

    def _autoname(self, typ: str, logical: str, seed: str, state: dict) -> None:
        prop = self.autonamed_property(typ)
        if prop is None:
            return
        if typ in AUTONAME_OVERRIDES:
            _, max_length, lowercase = AUTONAME_OVERRIDES[typ]
        else:
            max_length, lowercase = MAX_NAME_LENGTH.get(typ, 255), typ in LOWERCASE_NAMES
        if state.get(prop):
            return
        prefix = state.get(f"{prop}Prefix")
        if prefix:
            state[prop] = f"{prefix}{digest(seed, 26)}"
        else:
            state[prop] = autoname(logical, seed, max_length, lowercase)

    def _physical_id(self, typ: str, seed: str, state: dict) -> str:
        if typ == "aws:kms/key:Key":
            return str(uuid.UUID(digest(seed, 32), version=4))  # KMS key ids are random UUIDs
        if typ == "aws:s3/bucket:Bucket":
            return state["bucket"]
        if typ in _BUCKET_CHILDREN:
            return str(state["bucket"])
        if typ == "aws:iam/rolePolicy:RolePolicy":
            return f"{state['role']}:{state['name']}"
        if typ in _EC2_ID_PREFIXES:
            return f"{_EC2_ID_PREFIXES[typ]}-{digest(seed, 17)}"  # EC2 ids: a type prefix and 17 hex digits
        if typ == "aws:appautoscaling/target:Target":
            return str(state["resourceId"])
        if typ == "aws:eks/nodeGroup:NodeGroup":
            return f"{state['clusterName']}:{state['nodeGroupName']}"
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return f"lt-{digest(seed, 17)}"
        if typ == "aws:glue/catalogDatabase:CatalogDatabase":
            return f"{state.get('catalogId') or self.identity.account_id}:{state['name']}"
        if typ == "aws:sagemaker/featureGroup:FeatureGroup":
            return str(state["featureGroupName"])
        if typ == "aws:sagemaker/modelPackageGroup:ModelPackageGroup":
            return str(state["modelPackageGroupName"])
        if typ == "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer":
            return str(state["trackingServerName"])
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            return "pending"  # replaced by the ARN once it is computed
        if typ == "aws-native:sagemaker:ModelQualityJobDefinition":
            return "pending"  # Cloud Control identifies it by its ARN, computed below
        if state.get("name"):
            return str(state["name"])
        return digest(seed, 17)

    def _computed(self, typ: str, resource_id: str, state: dict, identity: AwsIdentity) -> None:
        fields = {
            "partition": identity.partition, "region": identity.region, "account": identity.account_id,
            "id": resource_id, "uuid": str(uuid.UUID(digest(resource_id + typ, 32), version=4)),
            "uuid_short": digest(resource_id + typ, 32), **{k: v for k, v in state.items() if isinstance(v, str)},
        }
        for key in [k for k, v in fields.items() if isinstance(v, str)]:
            fields[f"{key}_lower"] = fields[key].lower()
        if isinstance(state.get("principalArn"), str):
            fields["principal_name"] = state["principalArn"].rsplit("/", 1)[-1]
        if isinstance(state.get("url"), str):
            fields["url_host_path"] = state["url"].removeprefix("https://")
        self._service_outputs(typ, resource_id, state, identity)
        if typ == "aws:kms/key:Key":
            state["keyId"] = resource_id
        elif typ == "aws:kms/alias:Alias":
            state["targetKeyArn"] = ARN_FORMATS["aws:kms/key:Key"].format(**{**fields, "id": state["targetKeyId"]})
        elif typ == "aws:s3/bucket:Bucket":
            bucket = state["bucket"]
            state["bucketDomainName"] = f"{bucket}.s3.{identity.dns_suffix}"
            state["bucketRegionalDomainName"] = f"{bucket}.s3.{identity.region}.{identity.dns_suffix}"
            state["region"] = identity.region
        elif typ in ("aws:iam/role:Role", "aws:iam/policy:Policy"):
            state.setdefault("path", "/")
            fields["path"] = state["path"]
            if typ == "aws:iam/role:Role":
                state["uniqueId"] = "AROA" + digest(fields["name"] + fields["account"], 17).upper()
        if _has_output(typ, "arn"):
            template = ARN_FORMATS.get(typ)
            if template is None:
                raise MockGap(
                    f"the offline preview has no ARN format for {typ}; add AWS's format for it to "
                    "ARN_FORMATS in emlops/mock_tables.py"
                )
            state["arn"] = template.format(**fields)

    def _service_outputs(self, typ: str, resource_id: str, state: dict, identity: AwsIdentity) -> None:
        """Computed outputs other resources read, in the formats the services use."""
        seed = f"{typ}::{resource_id}"
        if typ == "aws:ecr/repository:Repository":
            state["registryId"] = identity.account_id
            state["repositoryUrl"] = (f"{identity.account_id}.dkr.ecr.{identity.region}."
                                      f"{identity.dns_suffix}/{state['name']}")
        elif typ == "aws:eks/cluster:Cluster":
            cluster_id = digest(seed, 32).upper()
            state.setdefault("version", "1.33")
            state["endpoint"] = f"https://{cluster_id}.gr7.{identity.region}.eks.{identity.dns_suffix}"
            state["certificateAuthority"] = {"data": base64.b64encode(
                f"-----BEGIN CERTIFICATE-----\n{cluster_id}\n-----END CERTIFICATE-----\n".encode()).decode()}
            state["identities"] = [{"oidcs": [{
                "issuer": f"https://oidc.eks.{identity.region}.{identity.dns_suffix}/id/{cluster_id}"}]}]
            state["platformVersion"] = "eks.1"
            state["status"] = "ACTIVE"
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            state["status"] = "ACTIVE"
        elif typ == "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer":
            state["trackingServerUrl"] = (f"https://t-{digest(seed, 12)}.{identity.region}."
                                          "experiments.sagemaker.aws")
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            state["latestVersion"] = 1
            state["defaultVersion"] = 1
        elif typ == "aws-native:sagemaker:ModelQualityJobDefinition":
            state["jobDefinitionArn"] = (f"arn:{identity.partition}:sagemaker:{identity.region}:{identity.account_id}:"
                                         f"model-quality-job-definition/{state['jobDefinitionName'].lower()}")
            state["creationTime"] = "2026-01-01T00:00:00Z"

    # -- providers and data sources ---------------------------------------------------------------

    def _register_provider(self, urn: str, provider_id: str, inputs: dict) -> None:
        # Provider config reaches providers as strings; lists arrive JSON-encoded.
        accounts = inputs.get("allowedAccountIds") or []
        if isinstance(accounts, str):
            accounts = json.loads(accounts)
        region = inputs.get("region") or self.identity.region
        account = accounts[0] if len(accounts) == 1 else self.identity.account_id
        self._providers[f"{urn}::{provider_id}"] = AwsIdentity(account, region)

    def identity_for(self, provider_ref: Optional[str]) -> AwsIdentity:
        """The identity behind a provider reference (the stack's own for the default provider)."""
        return self._providers.get(provider_ref or "", self.identity)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, Optional[list[tuple[str, str]]]]:
        handler = _DATA_SOURCES.get(args.token)
        if handler is None:
            raise MockGap(
                f"the offline preview has no answer for data source {args.token}; add one to "
                "_DATA_SOURCES in emlops/mocks.py"
            )
        return handler(self.identity_for(args.provider), args.args), []


def _caller_identity(identity: AwsIdentity, _args: dict) -> dict[str, Any]:
    session = "emlops-preview"
    return {
        "id": identity.account_id,
        "accountId": identity.account_id,
        "arn": f"arn:{identity.partition}:sts::{identity.account_id}:assumed-role/{session}/{session}",
        "userId": f"AROA{digest(identity.account_id, 17).upper()}:{session}",
    }


@functools.lru_cache(maxsize=None)
def _region_description(region: str) -> str:
    import botocore.loaders

    for partition in botocore.loaders.create_loader().load_data("partitions")["partitions"]:
        if region in partition.get("regions", {}):
            return partition["regions"][region].get("description", region)
    return region


def _region(identity: AwsIdentity, args: dict) -> dict[str, Any]:
    region = args.get("region") or args.get("name") or identity.region
    return {
        "id": region,
        "name": region,
        "region": region,
        "description": _region_description(region),
        "endpoint": f"ec2.{region}.{partition_of(region).dns_suffix}",
    }


def _partition(identity: AwsIdentity, _args: dict) -> dict[str, Any]:
    dns_suffix = identity.dns_suffix
    return {
        "id": identity.partition,
        "partition": identity.partition,
        "dnsSuffix": dns_suffix,
        "reverseDnsPrefix": ".".join(reversed(dns_suffix.split("."))),
    }


def _availability_zones(identity: AwsIdentity, args: dict) -> dict[str, Any]:
    # Every SageMaker region has at least three zones; answering with three keeps plans stable.
    letters = ["a", "b", "c"]
    return {
        "id": identity.region,
        "names": [f"{identity.region}{letter}" for letter in letters],
        "zoneIds": [f"{zone_id_prefix(identity.region)}-az{i}" for i in range(1, len(letters) + 1)],
        "groupNames": [identity.region],
        "state": args.get("state") or "available",
    }


_DATA_SOURCES: dict[str, Callable[[AwsIdentity, dict], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
}
