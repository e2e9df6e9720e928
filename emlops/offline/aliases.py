"""Aliases as Pulumi's engine derives them, for the plan (`PlanResource.aliases`) and `emlops diff`.

A resource answers to its own URN and to its aliases: those the program declares (`aliases=[...]`, URNs or
specs whose blanks default to the resource's own name, type and parent), and, for the children of a renamed
component, their own names under the component's old name (its step generator's `generateAliases`). The
SDKs' own type renames (pulumi-aws's `...V2` S3 tokens, old Kubernetes API versions) are the catalogue's
`type_aliases`: the plan leaves them out, and `emlops diff` matches them from the catalogue.
"""

from __future__ import annotations

from typing import Any, Callable

from emlops.catalog.resources import assumed

MakeUrn = Callable[..., str]


def base_type(urn: str) -> str:
    """The resource's own type in a URN (its qualified type holds its parents' types before it)."""
    return urn.split("::")[2].rsplit("$", 1)[-1]


def collapse(request: Any, alias: Any, make_urn: MakeUrn) -> str:
    """One alias of a RegisterResource request: a URN, or a spec whose blanks default to the resource's own."""
    if alias.WhichOneof("alias") == "urn":
        return alias.urn
    spec = alias.spec
    parent = ("" if spec.WhichOneof("parent") == "noParent" and spec.noParent else
              spec.parentUrn if spec.WhichOneof("parent") == "parentUrn" and spec.parentUrn else request.parent)
    return make_urn(parent, spec.type or request.type, spec.name or request.name, spec.stack, spec.project)


def alias_urns(request: Any, make_urn: MakeUrn, parent_aliases: list[str]) -> list[str]:
    """The URNs a resource answers to besides its own: its own aliases, then its parent's aliases applied to it
    (a child named `<parent>-<suffix>` is looked for as `<parent's old name>-<suffix>`), each combined with
    its own."""
    own: list[str] = []
    for urn in [collapse(request, alias, make_urn) for alias in request.aliases] + list(request.aliasURNs):
        if urn not in own:
            own.append(urn)
    found = list(own)
    parent_name = request.parent.rsplit("::", 1)[-1] if request.parent else ""
    for parent_alias in parent_aliases:
        for type_, name in [(request.type, request.name)] + [(base_type(u), u.rsplit("::", 1)[-1]) for u in own]:
            if name.startswith(parent_name):
                name = parent_alias.rsplit("::", 1)[-1] + name[len(parent_name):]
            urn = make_urn(parent_alias, type_, name)
            if urn not in found:
                found.append(urn)
    return found


def recorded(type_: str, found: list[str], declared: dict[str, list[str]]) -> list[str]:
    """FOUND without those naming the resource by an earlier token of its type that the catalogue lists
    (`type_aliases`): every such resource of every plan would carry them. The other tokens seen are added to
    DECLARED (type -> tokens), so a test can hold the catalogue to what the SDKs declare."""
    earlier = set(assumed(type_).type_aliases)
    seen = [t for t in dict.fromkeys(base_type(urn) for urn in found) if t != type_]
    if seen:
        declared.setdefault(type_, [])
        declared[type_] += [t for t in seen if t not in declared[type_]]
    return [urn for urn in found if base_type(urn) not in earlier]
