"""The stateful-change gate: `emlops diff BASE HEAD --fail-on-stateful`.

Replacing or deleting a stateful resource (the catalogue's `stateful` flag: keys, buckets, feature groups,
package groups, repositories, the MLflow server, ...) loses what it holds (or, where it is retained on
delete, leaves it in the account, no longer managed, beside an empty new one).
The gate fails on each such change of HEAD against BASE that the stack file does not accept: an entry of
`guardrails.accepted_stateful_changes` naming that resource of BASE, the change (`replace` or `delete`) and
a written reason. CI runs it for every stack on every pull request, comparing the plans of the base branch
(built with the base's own emlops, so an upgrade of emlops or of a provider that would replace a stateful
resource is caught too) with the pull request's.

The stack file is the head's (`stacks/Pulumi.<stack>.yaml` of the project in the working directory, the
plans' stack): accepting a change is part of the change. An acceptance naming no resource of BASE is an
error (exit 2; remove acceptances once their change is deployed); one that matches no change is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional, Sequence

from emlops.catalog.resources import STATEFUL_TYPES
from emlops.offline.plan import Plan, PlanResource
from emlops.review.diff import PlanDiff, ResourceDiff

if TYPE_CHECKING:  # the stack file's models load with the stack file, when the gate runs
    from emlops.program.config_guardrails import AcceptedStatefulChange

KEY = "emlops:platform.guardrails.accepted_stateful_changes"
EXIT_INPUT = 2


class GateError(Exception):
    """The gate cannot judge: a stack file that does not load or an acceptance that names nothing (one line)."""

    exit_code = EXIT_INPUT


def change_of(resource: ResourceDiff) -> str:
    """`delete` or `replace`, as an acceptance spells it."""
    return "delete" if resource.action == "remove" else "replace"


@dataclass
class Verdict:
    """One replaced or deleted stateful resource, and the acceptance (by its index) that lets it through."""

    resource: ResourceDiff
    accepted: Optional[int] = None
    reason: str = ""
    note: str = ""  # for a blocked one: what would keep it, or which acceptance does not fit

    @property
    def old(self) -> PlanResource:
        return self.resource.base or self.resource.resource

    def line(self, stack: str, source: str) -> str:
        """One line saying what happens to the (blocked) resource and how to accept it."""
        r = self.resource
        why = next((f"; {c.path} forces it" for c in r.changes if c.replaces), "") if r.action == "replace" else ""
        what = f"{stack}: {change_of(r)}s stateful resource {self.old.name} ({self.old.type}{why})"
        return (f"{what} without an accepted change{self.note}; to accept it, add {{resource: {self.old.name}, "
                f"change: {change_of(r)}, reason: \"why, and who accepted it\"}} to "
                f"guardrails.accepted_stateful_changes in {source}")


@dataclass
class GateReport:
    """What the gate found in one stack's change."""

    stack: str
    source: str
    verdicts: list[Verdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.accepted is None]

    @property
    def failed(self) -> bool:
        return bool(self.blocked)

    def lines(self) -> list[str]:
        """One line per blocked resource."""
        return [v.line(self.stack, self.source) for v in self.blocked]

    def summary(self) -> str:
        if not self.verdicts:
            return "no stateful resource replaced or deleted"
        if self.failed:
            n = len(self.blocked)
            return f"{n} stateful resource{'s' * (n != 1)} replaced or deleted without an accepted change"
        n = len(self.verdicts)
        return f"{n} stateful resource{'s' * (n != 1)} replaced or deleted, each accepted"


def evaluate(diff: PlanDiff, base: Plan, accepted: Sequence["AcceptedStatefulChange"], source: str) -> GateReport:
    """Judge every replaced or deleted stateful resource of DIFF against the stack's acceptances (GateError
    when an acceptance names no single resource of BASE)."""
    targets = [_target(base, a.resource, index, source) for index, a in enumerate(accepted)]
    report = GateReport(diff.head_stack, source)
    used: set[int] = set()
    destroyed = [r for r in diff.resources if r.destructive and r.stateful]
    for r in destroyed:
        verdict = Verdict(r)
        fits = [i for i, (a, t) in enumerate(zip(accepted, targets)) if t.urn == verdict.old.urn]
        exact = [i for i in fits if accepted[i].change == change_of(r)]
        if exact:
            verdict.accepted, verdict.reason = exact[0], " ".join(accepted[exact[0]].reason.split())
            used.add(exact[0])
        elif fits:  # named in the verdict's line; not warned about again
            used.add(fits[0])
            verdict.note = (f" (guardrails.accepted_stateful_changes[{fits[0]}] accepts a {accepted[fits[0]].change}, "
                            f"not a {change_of(r)})")
        elif r.action == "remove":
            verdict.note = _rename_hint(diff, r)
        report.verdicts.append(verdict)
    for index, (a, target) in enumerate(zip(accepted, targets)):
        if index in used:
            continue
        if target.type not in STATEFUL_TYPES:
            report.warnings.append(f"{source}: {KEY}[{index}]: {a.resource!r} ({target.type}) is not stateful: the "
                                   "gate never needs an acceptance for it; remove it")
        else:
            report.warnings.append(f"{source}: {KEY}[{index}]: the {a.change} of {a.resource!r} is accepted, but this "
                                   f"change does not {a.change} it; remove the acceptance once the change it was "
                                   "for is deployed")
    return report


def _target(base: Plan, resource: str, index: int, source: str) -> PlanResource:
    found = [r for r in base.resources if r.custom and resource in (r.name, r.urn)]
    if not found:
        raise GateError(f"{source}: {KEY}[{index}].resource: {resource!r} is not a resource of the plan before the "
                        f"change (stack {base.stack!r}); name one it holds, by its logical name or URN (an "
                        "acceptance whose change is deployed has done its job: remove it)")
    if len(found) > 1:
        types = ", ".join(r.type for r in found)
        raise GateError(f"{source}: {KEY}[{index}].resource: {resource!r} names {len(found)} resources of the plan "
                        f"before the change ({types}); give the URN of the one you accept")
    return found[0]


def _rename_hint(diff: PlanDiff, removed: ResourceDiff) -> str:
    """If HEAD adds exactly one resource of the same type, the removal may be a rename without aliases."""
    added = [r.resource.name for r in diff.resources if r.action == "add" and r.resource.type == removed.resource.type]
    if len(added) != 1:
        return ""
    return f" (renamed to {added[0]}? with aliases naming its old name, it or its component stays the same resource)"


def load_accepted(stack: str) -> tuple[str, list["AcceptedStatefulChange"]]:
    """The stack file (as errors name it) and its accepted stateful changes; GateError when it does not load."""
    from emlops.program.config import ConfigError
    from emlops.program.stackfile import find_project, load_stack

    try:
        config = load_stack(find_project(), stack)
    except ConfigError as exc:
        raise GateError(str(exc)) from None
    return config.source, list(config.platform.guardrails.accepted_stateful_changes)


def gate(base: Plan, head: Plan, diff: PlanDiff) -> GateReport:
    """The gate of a change from BASE to HEAD, with the acceptances of the plans' stack file."""
    if base.stack != head.stack:
        raise GateError(f"the base plan is of stack {base.stack!r} and the head plan of {head.stack!r}; the gate "
                        "compares two plans of one stack")
    source, accepted = load_accepted(head.stack)
    return evaluate(diff, base, accepted, source)


# -- rendering ---------------------------------------------------------------------------------------


def render_markdown(report: GateReport) -> str:
    icon = "❌" if report.failed else "✅"
    lines = [f"**Stateful-change gate**: {icon} {report.summary()}"]
    for v in report.verdicts:
        r = v.old
        mark = "✅" if v.accepted is not None else "❌"
        verdict = f"accepted: {v.reason}" if v.accepted is not None else "not accepted" + v.note
        lines.append(f"- {mark} **{change_of(v.resource)}** `{r.name}` ({r.type}): {verdict}")
    lines += [f"> warning: {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def render_text(report: GateReport) -> str:
    lines = [f"stateful-change gate: {'FAILED' if report.failed else 'passed'}, {report.summary()}"]
    for v in report.verdicts:
        r = v.old
        verdict = f"accepted: {v.reason}" if v.accepted is not None else "NOT accepted" + v.note
        lines.append(f"  {change_of(v.resource)} {r.name} ({r.type}): {verdict}")
    lines += [f"warning: {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"
