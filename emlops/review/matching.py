"""Which resource of the base plan each resource of the head plan is, and what it keeps from it.

Pulumi matches a resource of the program to the stack's state by URN, or else by one of its aliases: a
resource (or a component above it) renamed with `aliases` naming its old name is the same AWS resource,
updated in place. Without aliases, a renamed resource is a new one, and the old one is deleted.

A resource matched through an alias keeps what the provider and AWS generated for it: its auto-name (the
provider reuses the old one), its id, a KMS key's id. The offline mocks derive those values from the URN,
so a head plan holds new ones where the renamed resource and everything referring to it mention them;
`Matching.kept` writes the old ones back before inputs are compared, so a rename shows only the changes
`pulumi up` would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from emlops.catalog.resource_type import RANDOM_UUID, digest, random_uuid
from emlops.catalog.resources import assumed
from emlops.offline.plan import Plan, PlanResource


def physical_name(resource: PlanResource, type_: Optional[str] = None) -> Optional[str]:
    """The resource's physical name from its inputs (the catalogue's name property of its type, or of
    `type_`: what it is now, for a resource recorded under an earlier token), if it has one."""
    value: Any = resource.inputs
    for key in assumed(type_ or resource.type).naming.property.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def is_auto_named(resource: PlanResource, type_: Optional[str] = None) -> bool:
    """True when the physical name is Pulumi's auto-name (`<logical>-<7 hex>`), not one the program chose."""
    name = physical_name(resource, type_)
    return name is not None and (name.endswith("-" + digest(resource.urn)) or name.endswith(digest(resource.urn, 26)))


def has_generated_uuid(type_: str) -> bool:
    """AWS gives it a fresh UUID id (a KMS key), which other resources' inputs hold."""
    return assumed(type_).physical_id == RANDOM_UUID


def identities(resource: PlanResource) -> list[str]:
    """Strings that change when the resource is replaced: an auto-name, a generated UUID id (a KMS key's)."""
    if has_generated_uuid(resource.type):
        return [random_uuid(resource.urn)]
    return [physical_name(resource)] if is_auto_named(resource) else []


def _generated(resource: PlanResource, type_: Optional[str] = None) -> list[str]:
    """What the mocks generated for the resource from its URN: ids (17 hex), name-prefix suffixes (26 hex),
    UUIDs, and its auto-name (read as `type_` names it, when given)."""
    name = physical_name(resource, type_) if is_auto_named(resource, type_) else None
    return [random_uuid(resource.urn), digest(resource.urn, 26), digest(resource.urn, 17), name or ""]


@dataclass
class Matching:
    """The base resource of each head resource that has one; the renamed ones; the generated values they keep."""

    base_of: dict[str, PlanResource] = field(default_factory=dict)  # head URN -> base resource
    renamed: dict[str, str] = field(default_factory=dict)  # head URN -> base URN, matched through an alias
    carried: dict[str, str] = field(default_factory=dict)  # a generated value in head -> the base's

    def kept(self, value: Any) -> Any:
        """VALUE (inputs of a head resource) with the generated values of renamed resources as they were."""
        if not self.carried:
            return value
        if isinstance(value, str):
            for new, old in self.carried.items():
                if new in value:
                    value = value.replace(new, old)
            return value
        if isinstance(value, dict):
            return {key: self.kept(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.kept(item) for item in value]
        return value

    def base_urn(self, head_urn: Optional[str]) -> Optional[str]:
        """The URN in base of a head resource (a provider, a parent): its own, or the one it was renamed from."""
        return self.renamed.get(head_urn, head_urn) if head_urn else head_urn


def _with_earlier_types(resource: PlanResource) -> list[str]:
    """The resource's aliases, then its URN and aliases under the earlier tokens of its type that its SDK
    aliases (the catalogue's `type_aliases`, which plans do not repeat): a base plan made with an older
    provider recorded the resource under one of those."""
    earlier = assumed(resource.type).type_aliases
    urns = [resource.urn, *resource.aliases]
    retyped = [urn.rsplit(f"{resource.type}::", 1)[0] + f"{old}::" + urn.rsplit("::", 1)[-1]
               for old in earlier for urn in urns if f"{resource.type}::" in urn]
    return [*resource.aliases, *retyped]


def match(base: Plan, head: Plan) -> Matching:
    """Match HEAD's resources to BASE's: by URN, else by the first alias naming a base resource that HEAD
    does not hold under its own URN (Pulumi refuses an alias that two resources claim)."""
    base_by_urn = {r.urn: r for r in base.resources}
    head_urns = {r.urn for r in head.resources}
    result = Matching()
    for r in head.resources:
        if r.urn in base_by_urn:
            result.base_of[r.urn] = base_by_urn[r.urn]
            continue
        for alias in _with_earlier_types(r):
            old = base_by_urn.get(alias)
            if old is not None and alias not in head_urns and alias not in result.renamed.values():
                result.base_of[r.urn], result.renamed[r.urn] = old, alias
                for new_value, old_value in zip(_generated(r), _generated(old, r.type)):
                    if new_value and old_value and new_value != old_value:
                        result.carried[new_value] = old_value
                break
    return result
