"""Small helpers every component uses for its children's resource options and tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional

import pulumi

PACKAGE = "emlops"


def type_token(type_name: str) -> str:
    """The component type token, `emlops:index:<Type>` (so Pulumi's component provider can host it)."""
    return f"{PACKAGE}:index:{type_name}"


def child(parent: pulumi.Resource, *, protect: bool = False, **extra) -> pulumi.ResourceOptions:
    """Options for a child: parented to the component (so provider, region and aliases flow down).

    `protect=True` marks a stateful child: Pulumi refuses to delete it (`protect`) and, if the code
    that declares it is removed, leaves it in the account instead of deleting it (`retain_on_delete`).
    """
    if protect:
        extra.setdefault("protect", True)
        extra.setdefault("retain_on_delete", True)
    return pulumi.ResourceOptions(parent=parent, **extra)


def merge_tags(*tag_sets: Optional[Mapping[str, str]]) -> dict[str, str]:
    """Later tag sets win; keys are kept in first-seen order so the plan stays stable."""
    merged: dict[str, str] = {}
    for tags in tag_sets:
        merged.update(tags or {})
    return merged
