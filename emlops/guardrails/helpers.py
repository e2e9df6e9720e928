"""What every rule shares: reading props that may be unknown, IAM documents, settings, and the rule factories.

Rules run in two places with the same code: under the Pulumi CLI (`pulumi preview --policy-pack policy`),
where props are pulumi_policy's read-only proxies and values not known during a preview raise
`UnknownValueError`, and in `emlops check` on the offline plan, where such values are the strings
`"[unknown: ...]"` and secrets are `"[secret]"`. A value that cannot be known is never a violation.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # an unknown is neither true nor false; callers test `is UNKNOWN` first
        raise TypeError("test `value is UNKNOWN` before using an unknown value")


UNKNOWN = _Unknown()
SECRET = "[secret]"
DEFAULT_REQUIRED_TAGS = ("owner", "cost-center", "data-classification")

# The policy config every rule may read (pulumi_policy per-policy config); `emlops check` derives it from
# the stack config, `emlops check STACK --pack-config PATH` writes it for the Pulumi CLI.
CONFIG_PROPERTIES: dict[str, dict[str, Any]] = {
    "production": {"type": "boolean", "default": False,
                   "description": "The stack is a production stack (emlops:platform.production)."},
    "environment": {"type": "string", "default": "",
                    "description": "Environment name (emlops:platform.environment), e.g. dev, staging, prod."},
    "allowedInstanceTypes": {"type": "array", "items": {"type": "string"}, "default": [],
                             "description": "SageMaker instance types this environment may use; empty: any."},
    "permissionBoundaryRequired": {"type": "boolean", "default": False,
                                   "description": "Every IAM role must carry a permissions boundary."},
    "requiredTags": {"type": "array", "items": {"type": "string"}, "default": list(DEFAULT_REQUIRED_TAGS),
                     "description": "Tag keys every taggable AWS resource must carry."},
    "suppressions": {"type": "array", "default": [],
                     "items": {"type": "object", "required": ["resource", "reason"],
                               "properties": {"resource": {"type": "string"}, "reason": {"type": "string"}}},
                     "description": "Resources (logical name or URN) this rule does not apply to, with the reason."},
}


@dataclass(frozen=True)
class Settings:
    """A policy's config with the defaults filled in (the CLI passes none when no config file is given)."""

    production: bool = False
    environment: str = ""
    allowed_instance_types: tuple[str, ...] = ()
    permission_boundary_required: bool = False
    required_tags: tuple[str, ...] = DEFAULT_REQUIRED_TAGS

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> "Settings":
        return cls(
            production=bool(config.get("production", False)),
            environment=str(config.get("environment", "") or ""),
            allowed_instance_types=tuple(config.get("allowedInstanceTypes") or ()),
            permission_boundary_required=bool(config.get("permissionBoundaryRequired", False)),
            required_tags=tuple(config.get("requiredTags") or DEFAULT_REQUIRED_TAGS),
        )

    def to_config(self) -> dict[str, Any]:
        return {"production": self.production, "environment": self.environment,
                "allowedInstanceTypes": list(self.allowed_instance_types),
                "permissionBoundaryRequired": self.permission_boundary_required,
                "requiredTags": list(self.required_tags)}


# ------------------------------------------------------------------------------------------------
# Reading props


def is_unknown(value: Any) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value.startswith("[unknown:"))


def get(props: Any, *path: Any, default: Any = None) -> Any:
    """`props[path[0]][path[1]]...`; `default` when a key is missing, UNKNOWN when a value is not known."""
    value = props
    for key in path:
        if is_unknown(value):
            return UNKNOWN
        try:
            if isinstance(key, int):
                if not is_list(value) or key >= len(value):
                    return default
                value = value[key]
            else:
                if not isinstance(value, Mapping) or key not in value:
                    return default
                value = value[key]
        except UnknownValueError:
            return UNKNOWN
        if value is None:
            return default
    return UNKNOWN if is_unknown(value) else value


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def items(value: Any) -> list[Any]:
    """The elements of a list prop (an unknown or missing list has none); unknown elements are UNKNOWN."""
    if not is_list(value):
        return []
    out = []
    for index in range(len(value)):
        try:
            element = value[index]
        except UnknownValueError:
            element = UNKNOWN
        out.append(UNKNOWN if is_unknown(element) else element)
    return out


def text(value: Any) -> Optional[str]:
    """A known, non-secret string, else None."""
    return value if isinstance(value, str) and not is_unknown(value) and value != SECRET else None


def parse_json(value: Any) -> Any:
    """A JSON document prop (policies are JSON strings); UNKNOWN when unknown, secret or not JSON."""
    if isinstance(value, Mapping):
        return value
    raw = text(value)
    if raw is None:
        return UNKNOWN
    try:
        return json.loads(raw)
    except ValueError:
        return UNKNOWN


def as_list(value: Any) -> list[Any]:
    """IAM's "one or many": a string or a list, as a list."""
    if value is None:
        return []
    return items(value) if is_list(value) else [value]


def allow_statements(document: Any) -> list[Mapping[str, Any]]:
    """The Allow statements of an IAM policy document (none when it is not known)."""
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(get(document, "Statement")) if isinstance(s, Mapping) and get(s, "Effect") == "Allow"]


def principals(statement: Mapping[str, Any]) -> list[Any]:
    """A statement's principals as one list: `"*"`, or the values under `AWS`, `Service`, ..."""
    principal = get(statement, "Principal")
    if not hasattr(principal, "keys"):
        return as_list(principal)
    return [value for key in principal for value in as_list(get(principal, key))]


def actions_match(statement: Mapping[str, Any], action: str) -> bool:
    """The statement allows `action` (IAM matches case-insensitively and expands `*` and `?`)."""
    return any(isinstance(a, str) and fnmatch.fnmatchcase(action.lower(), a.lower())
               for a in as_list(get(statement, "Action")))


def tags_of(props: Any) -> Any:
    """A resource's tags as a map (UNKNOWN when they are not known): pulumi-aws takes a map,
    pulumi-aws-native (Cloud Control) a list of `{"key": ..., "value": ...}` pairs."""
    tags = get(props, "tags")
    if tags is UNKNOWN or isinstance(tags, Mapping):
        return tags
    if not is_list(tags):
        return {}
    out: dict[str, Any] = {}
    for pair in items(tags):
        key = get(pair, "key") if isinstance(pair, Mapping) else None
        if pair is UNKNOWN or key is UNKNOWN:
            return UNKNOWN  # an unknown pair may be any required tag
        if isinstance(key, str):
            out[key] = get(pair, "value")
    return out


# ------------------------------------------------------------------------------------------------
# Rule factories: one decorated check function becomes one pulumi_policy policy object.

Finding = tuple[str, Optional[str]]  # (message, urn of the resource in violation)


def _schema(keys: Sequence[str]) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={key: CONFIG_PROPERTIES[key] for key in (*keys, "suppressions")})


def _suppressed(config: Mapping[str, Any], urn: Optional[str]) -> bool:
    """Suppressions handed to the Pulumi CLI in the pack config (`emlops check` marks them itself)."""
    if urn is None:
        return False
    name = urn.rsplit("::", 1)[-1]
    return any(get(s, "resource") in (urn, name) for s in items(config.get("suppressions")))


def _policy_kwargs(name: str, description: str, severity: str, remediation: str, enforcement: str,
                   config: Sequence[str]) -> dict[str, Any]:
    if enforcement not in ("mandatory", "advisory"):
        raise ValueError(f"rule {name}: enforcement {enforcement!r} must be mandatory or advisory")
    return dict(name=name, description=description, enforcement_level=EnforcementLevel(enforcement),
                severity=Severity(severity), remediation_steps=remediation, config_schema=_schema(config))


def resource_rule(name: str, *, types: Sequence[str], description: str, severity: str, remediation: str,
                  enforcement: str = "mandatory", config: Sequence[str] = (), with_args: bool = False
                  ) -> Callable[[Callable[..., Iterable[str]]], ResourceValidationPolicy]:
    """A rule on each resource of `types` (all when empty): `check(props, settings)` (and the whole
    ResourceValidationArgs with `with_args`) yields one message per violation."""

    def build(check: Callable[..., Iterable[str]]) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
            if types and args.resource_type not in types:
                return
            config = args.get_config() or {}
            if _suppressed(config, args.urn):
                return
            extra = (args,) if with_args else ()
            for message in check(args.props, Settings.of(config), *extra) or ():
                report_violation(message, None)

        policy = ResourceValidationPolicy(validate=validate, **_policy_kwargs(
            name, description, severity, remediation, enforcement, config))
        policy.resource_types = tuple(types)  # what the rule judges, for evidence reports
        return policy

    return build


def stack_rule(name: str, *, description: str, severity: str, remediation: str, enforcement: str = "mandatory",
               config: Sequence[str] = ()
               ) -> Callable[[Callable[[list[PolicyResource], Settings], Iterable[Finding]]], StackValidationPolicy]:
    """A rule on the whole stack: `check(resources, settings)` yields (message, urn) per violation."""

    def build(check: Callable[[list[PolicyResource], Settings], Iterable[Finding]]) -> StackValidationPolicy:
        def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
            config = args.get_config() or {}
            for message, urn in check(list(args.resources), Settings.of(config)) or ():
                if not _suppressed(config, urn):
                    report_violation(message, urn)

        return StackValidationPolicy(validate=validate, **_policy_kwargs(
            name, description, severity, remediation, enforcement, config))

    return build


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def pipeline_steps(props: Any, kind: str) -> list[tuple[str, Mapping[str, Any]]]:
    """(step name, arguments) of every step of type `kind` in a pipeline's definition, conditions' branches
    included; none when the definition is not known."""
    definition = parse_json(get(props, "pipelineDefinition"))
    if not isinstance(definition, Mapping):
        return []
    found: list[tuple[str, Mapping[str, Any]]] = []

    def walk(steps: Any) -> None:
        for step in items(steps):
            if not isinstance(step, Mapping):
                continue
            arguments = step.get("Arguments") if isinstance(step.get("Arguments"), Mapping) else {}
            if step.get("Type") == kind:
                found.append((str(step.get("Name", "?")), arguments))
            walk(arguments.get("IfSteps"))
            walk(arguments.get("ElseSteps"))

    walk(definition.get("Steps"))
    return found
