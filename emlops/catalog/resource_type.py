"""What the resource catalogue records about one resource type (`ResourceType`), and how its templates fill in.

An entry is declarative data: ARN format and physical id as templates over the resource's inputs and
the account/region it is deployed into, its naming rules, the inputs whose change replaces it, whether
it holds data, whether it takes tags, its graph label, its AWS create request, and the outputs the
offline mocks answer with. Where a type truly needs code (EKS's endpoint and certificate), the entry
holds a small function defined next to it.

This module is plain Python (no Pulumi, no botocore), so `emlops diff` and `emlops graph` read the
catalogue without paying for the SDKs.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Optional, Protocol, Union

ALL = "*"  # in replace_on_change: every input but tags
TAGS = ("tags", "tagsAll")  # never replace: AWS tags in place
NAME_REPLACES = ("name",)  # the name is most AWS resources' identity
KUBERNETES_REPLACES = ("metadata.name", "metadata.namespace")

# physical_id: the service identifies the resource by its ARN (known once the ARN is computed)
BY_ARN = "(its ARN)"
# physical_id templates may use these besides the resource's inputs and account/region/partition
RANDOM_HEX = "{random_hex}"  # 17 hex digits, as EC2 ids end (`sg-0123456789abcdef0`)
RANDOM_UUID = "{random_uuid}"  # a version-4 UUID, as KMS key ids are


def digest(seed: str, length: int = 7) -> str:
    """A deterministic stand-in for a provider's random hex: same seed (the URN), same value, every run."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def random_uuid(seed: str) -> str:
    """The version-4 UUID the mocks give a resource whose id AWS generates as one (a KMS key)."""
    return str(uuid.UUID(digest(seed, 32), version=4))


class Placement(Protocol):
    """Where a resource is deployed: what the mocks know of the provider's account and region."""

    account_id: str
    region: str
    partition: str
    dns_suffix: str


@dataclass(frozen=True)
class Naming:
    """The input holding a type's physical name, how Pulumi auto-names it, and what AWS allows in it."""

    property: str = "name"
    """The input holding the physical name (a dotted path for Kubernetes objects: `metadata.name`)."""
    auto: bool = False
    """Pulumi fills it with `<logical name>-<7 hex>` (or `<namePrefix><26 hex>`) when the program leaves it out."""
    max_length: int = 255
    """The service's limit on the name, in characters. Pulumi refuses an auto-name that would not fit (it does
    not cut the logical name), and AWS refuses a longer name given."""
    lowercase: bool = False
    """The service accepts lower-case names only, so an auto-name is lower-cased."""
    pattern: Optional[str] = None
    """The service's character set, a regular expression the whole name matches; None: any characters."""
    min_length: int = 1
    """The service's shortest name."""
    what: Optional[str] = None
    """What messages call the named thing when the type has no graph label (`IAM role`)."""

    def problem(self, name: str) -> Optional[str]:
        """Why the service refuses `name` (its length or characters, with the limit), or None."""
        if len(name) > self.max_length:
            return f"is {len(name)} characters; AWS allows {self.max_length}"
        if len(name) < self.min_length:
            return f"is {len(name)} characters; AWS needs at least {self.min_length}"
        if self.pattern is not None and not re.fullmatch(self.pattern, name):
            return f"has characters AWS does not allow (the name must match {self.pattern})"
        return None


AUTO_NAMED = Naming(auto=True)
NOT_AUTO_NAMED = Naming()


@dataclass(frozen=True)
class CreateRequest:
    """How a resource type's inputs map onto its AWS create API (checked against botocore's service model).

    Members are matched case-insensitively (`memorySizeInMb` ~ `MemorySizeInMB`), and a pluralised
    list of one block (`s3DataSources`, the bridge's name for a Terraform block) onto the singular
    structure (`S3DataSource`). Only what that cannot match is listed here.
    """

    service: str
    operation: str
    renames: Mapping[str, str] = field(default_factory=dict)
    """Pulumi path (dotted, no list indexes) -> API member name."""
    ignore: frozenset[str] = frozenset()
    """Pulumi paths with no API counterpart, dropped on purpose (each with its reason in a comment)."""
    provider_supplied: frozenset[str] = frozenset()
    """Top-level API members the provider fills in itself (e.g. idempotency tokens), as plan placeholders."""
    json_documents: frozenset[str] = frozenset()
    """Pulumi paths of structures the provider sends as one JSON string member (a model card's `content`), its
    keys in the document's snake_case (map keys, e.g. `customDetails`, as they are)."""


Outputs = Union[Mapping[str, Any], Callable[[Mapping[str, str]], Mapping[str, Any]]]
PhysicalId = Union[None, str, Callable[[Mapping[str, Any]], str]]


@dataclass(frozen=True, eq=False)  # one entry per token: compared and hashed by identity
class ResourceType:
    """One AWS, Kubernetes or Pulumi resource type, as every emlops tool needs to know it."""

    token: str
    """Pulumi's type token, e.g. `aws:sagemaker/endpoint:Endpoint`."""
    label: Optional[str] = None
    """What `emlops graph` calls it; None: not drawn (policies, bucket settings, associations...)."""
    stateful: bool = False
    """Deleting it loses data or state someone relies on: `emlops diff` warns, production protects and retains it."""
    taggable: bool = False
    """It takes AWS tags (`tags`: a map for pulumi-aws, a list of `{key, value}` for pulumi-aws-native)."""
    naming: Naming = NOT_AUTO_NAMED
    replace_on_change: tuple[str, ...] = NAME_REPLACES
    """Inputs AWS cannot update in place; a path matches itself and everything under it, list indexes
    ignored (`vpcConfig.subnetIds`). ALL: every input but tags."""
    arn: Optional[str] = None
    """AWS's ARN format, a template over the inputs (`{name}`, `{name_lower}`), `{partition}`, `{region}`,
    `{account}`, `{id}` (the physical id), `{uuid}`/`{uuid_short}` and `{path}`; None: no ARN (or none
    recorded yet: the mocks refuse a type whose provider answers an `arn` output but has no format here)."""
    arn_output: str = "arn"
    """The output holding the ARN (pulumi-aws-native names it per type: `jobDefinitionArn`)."""
    physical_id: PhysicalId = None
    """The provider's id: None for the `name` input (17 random hex digits when it has none), BY_ARN, a
    template over the inputs, `{account}`, `{region}`, `{partition}`, `{random_hex}` and `{random_uuid}`,
    or a function of those values."""
    input_defaults: Mapping[str, Any] = field(default_factory=dict)
    """Inputs the provider fills when the program leaves them out (they appear in the ARN and outputs)."""
    outputs: Outputs = field(default_factory=dict)
    """Computed outputs the mocks answer with: templates (over the ARN's fields and `{dns_suffix}`) or
    literal values, or a function of those fields."""
    create: Optional[CreateRequest] = None
    """The AWS create request its inputs map onto, for request validation; None: not checked."""
    type_aliases: tuple[str, ...] = ()
    """Earlier tokens of the type that its provider SDK aliases (pulumi-aws v7's `...V2` S3 spellings, old
    Kubernetes API versions): Pulumi matches a resource recorded under one to this type. `emlops diff` matches
    them from here, so plans do not repeat them for every resource (a test keeps this list equal to the SDKs')."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_defaults", MappingProxyType(dict(self.input_defaults)))
        if not callable(self.outputs):
            object.__setattr__(self, "outputs", MappingProxyType(dict(self.outputs)))

    @property
    def package(self) -> str:
        """The provider package of the token: `aws`, `aws-native`, `kubernetes` or `pulumi`."""
        return self.token.split(":", 1)[0]

    @property
    def answers_tags_all(self) -> bool:
        """pulumi-aws answers `tagsAll` (the tags merged with the provider's default tags) for what it tags."""
        return self.taggable and self.package == "aws"

    def replaces(self, path: str) -> bool:
        """Whether a change of input PATH (`productionVariants[0].instanceType`, `policy#Statement[0]`) replaces it."""
        plain = re.sub(r"\[\d+\]", "", path.split("#", 1)[0])
        if plain.split(".")[0] in TAGS:
            return False
        return ALL in self.replace_on_change or any(
            plain == p or plain.startswith(p + ".") for p in self.replace_on_change)

    # -- what the offline mocks answer -----------------------------------------------------------------

    def physical_id_of(self, state: Mapping[str, Any], seed: str, where: Placement) -> str:
        """The physical id the provider would give a resource with these (auto-named) inputs."""
        spec = self.physical_id
        if spec is None:
            return str(state["name"]) if state.get("name") else digest(seed, 17)
        if spec == BY_ARN:
            return "pending"  # replaced by the ARN once computed_outputs has run
        values = {**state, "account": where.account_id, "region": where.region, "partition": where.partition,
                  "random_hex": digest(seed, 17), "random_uuid": random_uuid(seed)}
        return spec(values) if callable(spec) else spec.format(**values)

    def computed_outputs(self, resource_id: str, state: Mapping[str, Any], where: Placement) -> dict[str, Any]:
        """The computed outputs (ARN included) of a resource with this id and these inputs."""
        fields = template_fields(self.token, resource_id, state, where)
        answered = self.outputs(fields) if callable(self.outputs) else {
            key: value.format(**fields) if isinstance(value, str) else value for key, value in self.outputs.items()}
        out = dict(answered)
        if self.arn is not None:
            out[self.arn_output] = self.arn.format(**fields)
        return out


def template_fields(token: str, resource_id: str, state: Mapping[str, Any], where: Placement) -> dict[str, str]:
    """The values ARN formats and output templates are filled with: the placement, the id, the string
    inputs (each also as `<input>_lower`), and `principal_name`/`url_host_path` where those inputs exist."""
    fields = {
        "partition": where.partition, "region": where.region, "account": where.account_id,
        "dns_suffix": where.dns_suffix, "id": resource_id, "uuid": random_uuid(resource_id + token),
        "uuid_short": digest(resource_id + token, 32), **{k: v for k, v in state.items() if isinstance(v, str)},
    }
    for key in [k for k, v in fields.items() if isinstance(v, str)]:
        fields[f"{key}_lower"] = fields[key].lower()
    if isinstance(state.get("principalArn"), str):
        fields["principal_name"] = state["principalArn"].rsplit("/", 1)[-1]
    if isinstance(state.get("url"), str):
        fields["url_host_path"] = state["url"].removeprefix("https://")
    return fields
