"""Truthful Pulumi mocks: what AWS would have answered, in AWS's own formats.

Pulumi's mocks accept anything, so a plan made with naive mocks can be full of empty ARNs and
missing names. These mocks answer like the AWS provider would for the stack's account, region and
partition: auto-naming with Pulumi's `<logical name>-<7 hex>` suffix, ARNs in each service's format,
physical ids the provider would use, and realistic answers to data sources. Anything they have no
truthful answer for fails loudly instead of returning `{}`: a custom resource type with no entry in
the resource catalogue (`emlops.catalog.resources`, which holds every type's ARN format, physical
id, naming rules and computed outputs), an ARN the catalogue has no format for, a data source.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Optional

import pulumi

from emlops.catalog.aws import partition_of, zone_id_prefix
from emlops.catalog.resource_type import BY_ARN, ResourceType, digest
from emlops.catalog.resources import UnknownResourceType, lookup, resource_type, source_of
from emlops.catalog.resources_pulumi import AWS_NATIVE_PROVIDER, AWS_PROVIDER, STACK_REFERENCE, is_provider
from emlops.catalog.sdk import sdk_class


class MockGap(Exception):
    """The offline preview has no truthful answer for something the program asked for."""


class NameRefused(ValueError):
    """A resource whose physical name AWS (or Pulumi's auto-naming, on AWS's limit) would refuse."""


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


def autoname(logical_name: str, seed: str, max_length: int = 255, lowercase: bool = False) -> str:
    """Pulumi's auto-name: logical name, '-', 7 hex characters. Like Pulumi, refuses (NameRefused) one that
    would be longer than the type's limit rather than cutting the logical name."""
    prefix = f"{logical_name.lower() if lowercase else logical_name}-"
    if len(prefix) + SUFFIX_LENGTH > max_length:
        raise NameRefused(f"name {prefix!r} plus {SUFFIX_LENGTH} random chars is longer than maximum length "
                          f"{max_length}")
    return f"{prefix}{digest(seed)}"


def _has_output(token: str, prop: str) -> bool:
    """Whether the pulumi_aws class of a type token has the output `prop`."""
    cls = sdk_class(token) if token.split(":", 1)[0] == "aws" else None
    return cls is not None and isinstance(getattr(cls, prop, None), property)


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
        if is_provider(args.typ):
            provider_id = str(uuid.UUID(digest(seed, 32)))
            if args.typ in (AWS_PROVIDER.token, AWS_NATIVE_PROVIDER.token):
                self._register_provider(seed, provider_id, state)
            return provider_id, state

        if args.typ == STACK_REFERENCE.token:
            return self._stack_reference(str(args.resource_id or args.name))

        entry = self._entry(args.typ) if getattr(args, "custom", True) else None
        if entry is None:  # a component resource: nothing to answer but an id
            return str(state["name"]) if state.get("name") else digest(seed, 17), state
        identity = self.identity_for(args.provider)
        self._autoname(entry, args.name, seed, state)
        self._check_name(entry, args.name, state)
        for key, value in entry.input_defaults.items():
            state.setdefault(key, value)
        resource_id = entry.physical_id_of(state, seed, identity)
        self._computed(entry, resource_id, state, identity)
        if entry.physical_id == BY_ARN:
            resource_id = state[entry.arn_output]
        if "tags" in state and entry.answers_tags_all:
            state["tagsAll"] = dict(state["tags"] or {})
        return resource_id, state

    @staticmethod
    def _entry(typ: str) -> ResourceType:
        try:
            return resource_type(typ)
        except UnknownResourceType as gap:
            raise MockGap(f"the offline preview has no catalogue entry for {typ}; {gap.hint}") from None

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
        entry = lookup(typ)
        return entry.naming.property if entry is not None and entry.naming.auto else None

    def _autoname(self, entry: ResourceType, logical: str, seed: str, state: dict) -> None:
        naming = entry.naming
        if not naming.auto or state.get(naming.property):
            return
        prefix = state.get(f"{naming.property}Prefix")
        if prefix:
            state[naming.property] = f"{prefix}{digest(seed, 26)}"
            return
        try:
            state[naming.property] = autoname(logical, seed, naming.max_length, naming.lowercase)
        except NameRefused as refused:
            raise NameRefused(f"could not make instance of {entry.token!r} {logical!r}: {refused} (AWS's limit "
                              f"for its {naming.property}; see {source_of(entry.token)})") from None

    @staticmethod
    def _check_name(entry: ResourceType, logical: str, state: dict) -> None:
        """AWS refuses a physical name (given or auto-named) outside the type's limits: so do the mocks."""
        name = state.get(entry.naming.property)
        # what the offline preview cannot know is written as a placeholder ("[unknown: ...]", "[secret]")
        known = isinstance(name, str) and not (name.startswith("[") and name.endswith("]"))
        problem = entry.naming.problem(name) if known else None
        if problem:
            raise NameRefused(f"{entry.token} {logical!r}: AWS refuses its {entry.naming.property} {name!r}: it "
                              f"{problem}")

    def _computed(self, entry: ResourceType, resource_id: str, state: dict, identity: AwsIdentity) -> None:
        """The catalogue's computed outputs (ARN included), in the formats the services use."""
        if entry.arn is None and _has_output(entry.token, "arn"):
            raise MockGap(
                f"the offline preview has no ARN format for {entry.token}; add AWS's format for it to its entry "
                f"in {source_of(entry.token)}"
            )
        state.update(entry.computed_outputs(resource_id, state, identity))

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
                "_DATA_SOURCES in emlops/offline/mocks.py"
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


def _trail(identity: AwsIdentity, args: dict) -> dict[str, Any]:
    """Cloud Control's read of a trail (the organisation's, named by its ARN): the preview has no account to read
    it in, so what the deploy checks is shown as unknown (the flags, typed booleans, are left out), never guessed."""
    name = args.get("trailName", "")
    what = f"[unknown: {name}, looked up when the stack is deployed]"
    return {"arn": name, "s3BucketName": what, "kmsKeyId": what}


_DATA_SOURCES: dict[str, Callable[[AwsIdentity, dict], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws-native:cloudtrail:getTrail": _trail,
}
