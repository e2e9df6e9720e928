"""What every component's settings and context share.

A component takes, besides its name and resource options, two typed things:

- its **settings**: what a platform team chooses, a pydantic model (a subclass of `Settings`) whose every
  field documents its default and unit and is validated once, when the model is made. The stack file's
  section for the component embeds this model as it is, so a setting has one name, one unit and one
  default, written once;
- its **context**: what the platform around it supplies (keys, buckets, network, alerts topic, tags,
  permissions boundary, protection), a frozen dataclass of Pulumi inputs that is complete when the
  component is constructed. `Governance` and `Placement` are the parts most contexts share.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

import pulumi
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from emlops.catalog.aws import LOG_RETENTION_DAYS


# EC2 ids: a type prefix and 8 (older) or 17 hex digits.
VPC_ID = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
SUBNET_ID = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
SECURITY_GROUP_ID = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")


# What a value of the wrong type is told, in Python as in a stack file (YAML's words: true/false, whole number).
STRICT_MESSAGES = {
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
}


class Settings(BaseModel):
    """Base of every component's settings: unknown keys are errors, values are frozen, surrounding
    whitespace is dropped, and types are strict: `true` is not 1, `1.5` and `"3"` are not whole numbers,
    `1` and `"yes"` are not booleans (pydantic's lax mode would turn `max_session_hours: true` into 1 hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    @model_validator(mode="wrap")
    @classmethod
    def _own_pattern_messages(cls, data: Any, handler: Any) -> Any:
        """A value that does not match a field's pattern is reported with the field's own `error_message`,
        for settings made in Python as for a stack file (whose one-line errors read the same message)."""
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            custom = [field_extra(cls, tuple(e["loc"])).get("errorMessage")
                      if e["type"] == "string_pattern_mismatch" else STRICT_MESSAGES.get(e["type"])
                      for e in errors]
            if not any(custom):
                raise
            raise ValidationError.from_exception_data(exc.title, [
                {"type": PydanticCustomError(e["type"], message or e["msg"], e.get("ctx")), "loc": e["loc"],
                 "input": e["input"]} for e, message in zip(errors, custom)]) from None


class AtKey(ValueError):
    """A problem a validator found at a deeper key than its own (`path`, relative to the validated model)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def _must_be_quoted_string(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"must be a quoted string (YAML reads {value!r} unquoted as a number; write '{value}')")
    return value


QuotedStr = Annotated[str, BeforeValidator(_must_be_quoted_string)]
"""A string that YAML would read as a number when unquoted (account ids, cost centers, versions)."""


def error_message(message: str) -> dict[str, Any]:
    """A field's own one-line error for a pattern mismatch, carried into the JSON Schema as `errorMessage`
    (the ajv-errors keyword), so editors and `emlops preview` say the same thing."""
    return {"errorMessage": message}


# -- reading a model along a key path (pydantic's error locations) ---------------------------------------------


def model_at(root: type[BaseModel], loc: tuple) -> Optional[type[BaseModel]]:
    """The model the key path `loc` (pydantic's error location) leads to inside `root`, or None."""
    model: Optional[type[BaseModel]] = root
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        field = find_field(model, str(part))
        model = nested_model(field.annotation) if field else None
    return model


def find_field(model: type[BaseModel], key: str):
    """The field of `model` that the stack file spells `key` (its alias, else its name), or None."""
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def nested_model(annotation: Any) -> Optional[type[BaseModel]]:
    """The model an annotation holds (itself, or inside Optional[...] / list[...]), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = nested_model(arg)
        if found:
            return found
    return None


def field_extra(root: type[BaseModel], loc: tuple) -> dict[str, Any]:
    """The JSON-schema extras (`errorMessage`, ...) of the field at `loc` inside `root`."""
    model = model_at(root, loc[:-1]) if loc else None
    field = find_field(model, str(loc[-1])) if model and loc else None
    extra = field.json_schema_extra if field else None
    return extra if isinstance(extra, dict) else {}


def check_log_retention(days: int) -> int:
    """`days` if CloudWatch Logs accepts it as a retention; else ValueError naming the allowed values."""
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
        raise ValueError(f"{days} is not a CloudWatch Logs retention; allowed: {allowed}")
    return days


@dataclass(frozen=True)
class Governance:
    """What every child of a component carries from the platform: tags, the permissions boundary of the
    roles it creates, and whether its stateful children are protected and retained on delete."""

    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of every role the component creates. Default: none."""
    protect: bool = False
    """Protect stateful children (no delete) and retain them when removed from the code. Default: false."""
    role_path: str = "/"
    """IAM path of the roles the component creates that reach none of the platform's data and anchor nothing
    stateful (the platform's `/emlops/<environment>/`, the only path its admins may change roles on). Roles with
    data access stay at `/`, out of the admins' reach. Default: `/`."""

    def with_tags(self, *extra: Optional[Mapping[str, str]]) -> "Governance":
        """The same governance with more tags (later ones win; first-seen key order, for stable plans)."""
        merged: dict[str, str] = dict(self.tags)
        for tags in extra:
            merged.update(tags or {})
        return dataclasses.replace(self, tags=merged)


@dataclass(frozen=True)
class Placement:
    """Where a workload's network interfaces go: private subnets of a VPC, and their security groups."""

    vpc_id: pulumi.Input[str]
    """The VPC of `subnet_ids`."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets (at least one; spread over zones for availability)."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the interfaces (at most 5). Default: the component creates one with no inbound
    rule and HTTPS out only."""

    def __post_init__(self) -> None:
        if isinstance(self.subnet_ids, str) or not self.subnet_ids or not self.vpc_id:
            raise ValueError("a placement needs vpc_id and a list of subnet_ids")
        if isinstance(self.vpc_id, str) and not VPC_ID.match(self.vpc_id):
            raise ValueError(f"vpc_id {self.vpc_id!r} must be a VPC id like 'vpc-0123456789abcdef0'")
        for subnet in self.subnet_ids:
            if isinstance(subnet, str) and not SUBNET_ID.match(subnet):
                raise ValueError(f"subnet id {subnet!r} must look like 'subnet-0123456789abcdef0'")
        check_security_group_ids(self.security_group_ids)


def check_security_group_ids(ids: Sequence[pulumi.Input[str]]) -> None:
    """Security groups given for SageMaker network interfaces: a list of at most 5 (VpcConfig's limit),
    each `sg-...` when a literal string (Outputs are other resources' ids)."""
    if isinstance(ids, str):
        raise ValueError(f"security_group_ids must be a list, e.g. [{ids!r}]")
    if len(ids) > 5:
        raise ValueError(f"security_group_ids: at most 5 security groups, got {len(ids)}")
    for value in ids:
        if isinstance(value, str) and not SECURITY_GROUP_ID.match(value):
            raise ValueError(f"security_group_ids: {value!r} is not a security group id (sg-...)")
