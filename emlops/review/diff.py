"""`emlops diff`: what changes between two plans (emlops.plan/v1), and which changes replace a resource.

Resources are matched by URN, as Pulumi matches them: URNs hold logical names, so they are stable; the
physical names Pulumi generates (`prod-fraud-config-b53719b`) sit in inputs such as `name`. A resource
renamed with `aliases` is matched to its old URN and keeps its generated names (`emlops.review.matching`);
renamed without, it is a new resource and the old one is deleted. Changed inputs are listed as
dotted/indexed paths (`productionVariants[0].instanceType`); inside a JSON document held in a string
(policies, event patterns, pipeline definitions) the path continues after `#`
(`policy#Statement[0].Resource`). Secrets stay `[secret]`; long values are cut.

Replacement: the resource catalogue (`emlops.catalog.resources`) records, per resource type, which
inputs AWS cannot update in place (the provider replaces the resource when they change), the input
holding its physical name, and whether it is stateful. A replaced resource that Pulumi auto-named gets
a new physical name, so Pulumi creates the new one before it deletes the old one; a fixed name has to
be freed first (delete-before-create, an interruption). The new name is not known offline, so every
input elsewhere that holds the old name (or, for a KMS key, the old key id) is shown as changing too,
which may in turn replace that resource (a replaced Model replaces its EndpointConfiguration).

Deleting or replacing a stateful resource (data lives in it) is called out, with its `protect` and
`retainOnDelete` flags from the base plan: `pulumi up` refuses to delete a protected resource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from emlops.catalog.resources import STATEFUL_TYPES, assumed
from emlops.catalog.resources_pulumi import STACK, is_provider
from emlops.offline.plan import Plan, PlanResource
from emlops.review.matching import has_generated_uuid, identities, is_auto_named, match, physical_name

__all__ = ["Change", "Pending", "PlanDiff", "ResourceDiff", "diff_plans", "is_auto_named", "physical_name",
           "render_markdown", "render_text", "replaces", "show", "warnings"]

MAX_VALUE = 80


def replaces(type_: str, path: str) -> bool:
    """Whether a change of input PATH replaces a resource of TYPE (the catalogue's replace-on-change inputs)."""
    if path.startswith("("):  # protect, provider, retainOnDelete: Pulumi options, not inputs
        return False
    return assumed(type_).replaces(path)


@dataclass(frozen=True)
class Pending:
    """A value known only after `pulumi up` (the new name of a replaced resource)."""

    what: str

    def __str__(self) -> str:
        return f"({self.what})"


@dataclass
class Change:
    """One input that changes: its path, old and new values, and whether the change replaces the resource."""

    path: str
    old: Any
    new: Any
    replaces: bool = False


@dataclass
class ResourceDiff:
    """One added, removed, updated or replaced custom resource."""

    action: str  # "add" | "remove" | "update" | "replace"
    resource: PlanResource  # head's, or base's for a removal
    group: str
    changes: list[Change] = field(default_factory=list)
    base: Optional[PlanResource] = None

    @property
    def stateful(self) -> bool:
        return self.resource.type in STATEFUL_TYPES

    @property
    def destructive(self) -> bool:
        return self.action in ("remove", "replace")

    def replacement_order(self) -> str:
        name = physical_name(self.resource)
        if is_auto_named(self.resource):
            return "create-before-delete: auto-named, the replacement gets a new name before the old one is deleted"
        if name is not None and self.base is not None and physical_name(self.base) == name:
            return f"delete-before-create: the name `{name}` is fixed, so the old one goes first (an interruption)"
        if name is not None:
            return f"create-before-delete: the new one is named `{name}`, then the old one is deleted"
        return "create-before-delete"


@dataclass
class PlanDiff:
    base_stack: str
    head_stack: str
    resources: list[ResourceDiff] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for r in self.resources if r.action == action)

    @property
    def empty(self) -> bool:
        return not self.resources

    def summary(self) -> str:
        return (f"+{self.count('add')} added, ~{self.count('update')} changed, -{self.count('remove')} removed, "
                f"±{self.count('replace')} replaced")

    def groups(self) -> list[tuple[str, list[ResourceDiff]]]:
        out: dict[str, list[ResourceDiff]] = {}
        for r in self.resources:
            out.setdefault(r.group, []).append(r)
        return list(out.items())


# -- computing ---------------------------------------------------------------------------------------


def group_of(plan: Plan, resource: PlanResource) -> str:
    """The resource's top component under the platform ("ModelEndpoint churn"), or "base"."""
    by_urn = {r.urn: r for r in plan.resources}
    chain: list[PlanResource] = []
    current: Optional[PlanResource] = resource
    while current is not None:
        if not current.custom and current.type != STACK.token:
            chain.append(current)
        current = by_urn.get(current.parent) if current.parent else None
    if not chain:
        return "stack"
    platform = chain[-1]
    if len(chain) == 1:
        return "base" if platform is not resource else "stack"
    top = chain[-2]
    kind = top.type.rsplit(":", 1)[-1]
    if kind in ("KmsKey", "SecureBucket", "ServiceRole"):
        return "base"
    label = top.name[len(platform.name) + 1:] if top.name.startswith(platform.name + "-") else top.name
    return f"{kind} {label}"


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    doc = _as_json_document(value)
    if doc is not None:
        for inner, leaf in _leaves(doc):
            yield (f"{path}#{inner}" if inner else path), leaf
    elif isinstance(value, dict):
        if not value:
            yield path, value
        for key in sorted(value):
            yield from _leaves(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        if not value:
            yield path, value
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def _as_json_document(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[" and len(value) > 1:
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


_ABSENT = object()


def _changes(old: Any, new: Any, path: str = "") -> Iterator[Change]:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _changes(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{path}.{key}" if path else key)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            yield from _changes(old[i] if i < len(old) else _ABSENT, new[i] if i < len(new) else _ABSENT,
                                f"{path}[{i}]")
    elif (doc_old := _as_json_document(old)) is not None and (doc_new := _as_json_document(new)) is not None:
        for change in _changes(doc_old, doc_new, ""):
            yield Change(f"{path}#{change.path}" if change.path else path, change.old, change.new)
    else:
        yield Change(path, None if old is _ABSENT else old, None if new is _ABSENT else new)


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    """Added, removed, updated and replaced custom resources of HEAD compared with BASE (a resource renamed
    with `aliases` is matched to its old URN, see `emlops.review.matching`)."""
    matching = match(base, head)
    base_of = matching.base_of
    head_by_urn = {r.urn: r for r in head.resources}
    changes: dict[str, list[Change]] = {}
    for r in head.resources:
        old = base_of.get(r.urn)
        if not r.custom or old is None:
            continue
        found = list(_changes(old.inputs, matching.kept(r.inputs)))
        for option, before, after in (("(protect)", old.protect, r.protect),
                                      ("(provider)", old.provider, matching.base_urn(r.provider)),
                                      ("(retainOnDelete)", old.retain_on_delete, r.retain_on_delete)):
            if before != after:
                found.append(Change(option, before, after))
        for c in found:
            c.replaces = replaces(r.type, c.path)
        if found:
            changes[r.urn] = found

    # A replaced auto-named resource gets a new name: everything holding the old one changes too.
    propagated: set[str] = set()
    while True:
        todo = [urn for urn, cs in changes.items() if urn not in propagated and any(c.replaces for c in cs)]
        if not todo:
            break
        for urn in todo:
            propagated.add(urn)
            replaced, now = base_of[urn], head_by_urn[urn]
            for ident in identities(replaced):
                new_name = physical_name(now)
                known = new_name if new_name != ident and not is_auto_named(now) else None
                _propagate(ident, known, replaced, head, base_of, changes)
            if is_provider(replaced.type):  # Pulumi replaces what a replaced provider manages
                for r in head.resources:
                    if r.provider == urn and r.urn in base_of and r.urn != urn:
                        changes.setdefault(r.urn, []).append(
                            Change("(provider)", urn, Pending(f"replaced provider `{replaced.name}`"), True))

    result = PlanDiff(base.stack, head.stack)
    for r in head.resources:
        if not r.custom:
            continue
        if r.urn not in base_of:
            result.resources.append(ResourceDiff("add", r, group_of(head, r)))
        elif r.urn in changes:
            cs = changes[r.urn]
            action = "replace" if any(c.replaces for c in cs) else "update"
            result.resources.append(ResourceDiff(action, r, group_of(head, r), cs, base_of[r.urn]))
    matched = {old.urn for old in base_of.values()}
    for r in base.resources:
        if r.custom and r.urn not in matched:
            result.resources.append(ResourceDiff("remove", r, group_of(base, r), base=r))
    return result


def _propagate(ident: str, new_name: Optional[str], replaced: PlanResource, head: Plan,
               base_of: dict[str, PlanResource], changes: dict[str, list[Change]]) -> None:
    """Show inputs holding IDENT (the old name or key id of REPLACED) as changing with it."""
    needle = ident.lower()
    what = "key id" if has_generated_uuid(replaced.type) else "name"
    pending = Pending(f"new {what} of `{replaced.name}`, after its replacement")
    for r in head.resources:
        old = base_of.get(r.urn)
        if not r.custom or old is None or physical_name(old) == ident:
            continue
        known = {c.path for c in changes.get(r.urn, [])}
        for path, value in _leaves(old.inputs):
            if isinstance(value, str) and needle in value.lower() and path not in known:
                start = value.lower().index(needle)
                renamed = new_name and value[:start] + new_name + value[start + len(ident):]
                change = Change(path, value, renamed or pending)
                change.replaces = replaces(r.type, path)
                changes.setdefault(r.urn, []).append(change)


# -- rendering ---------------------------------------------------------------------------------------

SYMBOLS = {"add": "+", "update": "~", "remove": "-", "replace": "±"}
VERBS = {"add": "create", "update": "update", "remove": "delete", "replace": "replace"}


def show(value: Any, limit: int = MAX_VALUE) -> str:
    """A value for one line: JSON for structures, `[secret]` kept, cut to LIMIT characters."""
    if value is None:
        return "(none)"
    if isinstance(value, Pending):
        return str(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = text.replace("\r", "").replace("\n", "⏎")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def warnings(r: ResourceDiff) -> list[str]:
    """What a reviewer must not miss about this change (stateful loss, protect, retain)."""
    if not r.destructive:
        return []
    out = []
    old = r.base or r.resource
    if r.stateful:
        verb = "deletes" if r.action == "remove" else "replaces (deletes the old one)"
        fate = ("retainOnDelete: the old one stays in AWS with its data, no longer managed by this stack"
                if old.retain_on_delete else "its data goes with it")
        out.append(f"{verb} stateful resource `{r.resource.name}` ({r.resource.type}); {fate}")
    elif old.retain_on_delete:
        out.append("retainOnDelete: the old one stays in AWS, no longer managed by this stack")
    if old.protect:
        out.append("protected in the base plan: `pulumi up` refuses to delete it until `protect` is removed")
    return out


def _value_md(value: Any) -> str:
    text = show(value)
    return f"*{text}*" if isinstance(value, Pending) or value is None else f"`{text.replace('`', chr(39))}`"


def _resource_md(r: ResourceDiff) -> list[str]:
    head = f"- `{SYMBOLS[r.action]}` **{VERBS[r.action]}** `{r.resource.name}` ({r.resource.type})"
    if r.action == "replace":
        head += f" — {r.replacement_order()}"
    lines = [head]
    for w in warnings(r):
        lines.append(f"  - **⚠ {w}**")
    for c in r.changes:
        mark = " **(forces replacement)**" if c.replaces else ""
        lines.append(f"  - `{c.path}`: {_value_md(c.old)} → {_value_md(c.new)}{mark}")
    return lines


def render_markdown(diff: PlanDiff, stack: Optional[str] = None) -> str:
    """The diff as GitHub markdown, grouped by top component."""
    stack = stack or diff.head_stack
    lines = [f"**{stack}**: {diff.summary()}"]
    if diff.empty:
        return lines[0] + " — no changes\n"
    danger = [r for r in diff.resources if r.destructive and r.stateful]
    if danger:
        lines.append("")
        lines.append("**⚠ Stateful resources deleted or replaced: "
                     + ", ".join(f"`{r.resource.name}`" for r in danger) + "**")
    for group, members in diff.groups():
        lines += ["", f"#### {group}"]
        for r in members:
            lines += _resource_md(r)
    return "\n".join(lines) + "\n"


def render_text(diff: PlanDiff, stack: Optional[str] = None) -> str:
    """The diff as plain text for a terminal."""
    stack = stack or diff.head_stack
    lines = [f"{stack}: {diff.summary()}"]
    if diff.empty:
        return lines[0] + " - no changes\n"
    for group, members in diff.groups():
        lines += ["", f"{group}:"]
        for r in members:
            head = f"  {SYMBOLS[r.action]} {VERBS[r.action]} {r.resource.name} ({r.resource.type})"
            if r.action == "replace":
                head += f" - {r.replacement_order()}"
            lines.append(head)
            lines += [f"      !! {w.replace('`', '')}" for w in warnings(r)]
            for c in r.changes:
                mark = " (forces replacement)" if c.replaces else ""
                lines.append(f"      {c.path}: {show(c.old)} -> {show(c.new)}{mark}".replace("`", ""))
    return "\n".join(lines) + "\n"
