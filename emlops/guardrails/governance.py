"""Governance rules: required tags on every taggable AWS resource, and production's stateful resources kept.

Which types are taggable and which are stateful is the resource catalogue's (`emlops.catalog.resources`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from emlops.catalog.resources import STATEFUL_TYPES, lookup
from emlops.catalog.sdk import sdk_class
from emlops.guardrails.helpers import UNKNOWN, Settings, get, parse_json, resource_rule, tags_of

@functools.lru_cache(maxsize=None)
def is_taggable(resource_type: str) -> bool:
    """The type takes AWS tags: its catalogue entry says so; for a type the catalogue does not know (a
    team's own resources, under the Pulumi CLI), the provider SDK's argument class has a `tags` input."""
    entry = lookup(resource_type)
    if entry is not None:
        return entry.taggable
    if resource_type.split(":")[0] not in ("aws", "aws-native"):
        return False
    args = sdk_class(resource_type, "Args")
    return args is not None and hasattr(args, "tags")


def _default_tags(args: ResourceValidationArgs) -> Any:
    provider = args.provider
    if provider is None:
        return {}
    default_tags = get(provider.props, "defaultTags", default={})
    if isinstance(default_tags, str):  # provider inputs arrive JSON-encoded
        default_tags = parse_json(default_tags)
    tags = get(default_tags, "tags", default={})
    return tags if tags is UNKNOWN or isinstance(tags, Mapping) else {}


@resource_rule("required-tags", types=(), severity="medium", config=["requiredTags"], with_args=True,
               description="Every taggable AWS resource carries the owner, cost-center and data-classification "
                           "tags (the policy config's requiredTags).",
               remediation="Pass the stack's tags to the component (every component takes `tags`) or set them "
                           "as the AWS provider's default_tags.")
def required_tags(props: Any, settings: Settings, args: ResourceValidationArgs) -> Iterator[str]:
    if not is_taggable(args.resource_type):
        return
    tags, defaults = tags_of(props), _default_tags(args)
    if tags is UNKNOWN or defaults is UNKNOWN:
        return
    values = [(get(tags, key), get(defaults, key)) for key in settings.required_tags]
    if any(UNKNOWN in pair for pair in values):
        return
    missing = [key for key, (own, default) in zip(settings.required_tags, values) if not (own or default)]
    if missing:
        yield f"missing required tags: {', '.join(missing)}"


# Resources whose loss loses data or history: production protects them (no delete) and retains them
# (removing them from the code leaves them in the account).
@resource_rule("prod-stateful-protected", types=tuple(sorted(STATEFUL_TYPES)), severity="high", config=["production"],
               with_args=True,
               description="In production, stateful resources are protected and retained on delete.",
               remediation="Pass protect=True to the component (the platform does for production stacks); it sets "
                           "Pulumi's protect and retain_on_delete on the stateful child.")
def prod_stateful_protected(props: Any, settings: Settings, args: ResourceValidationArgs) -> Iterator[str]:
    if not settings.production:
        return
    missing = [] if args.opts.protect else ["protect"]
    # The Pulumi CLI does not tell policies about retainOnDelete; `emlops check` does.
    if getattr(args.opts, "retain_on_delete", True) is False:
        missing.append("retainOnDelete")
    if missing:
        yield f"a production {args.resource_type.split(':')[-1]} without {' and '.join(missing)}"


POLICIES = [required_tags, prod_stateful_protected]
