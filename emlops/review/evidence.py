"""`emlops report`: the evidence a stack's plan gives for the controls of compliance frameworks.

The guardrails run on the plan exactly as `emlops check` runs them (the stack's settings and its
`guardrails.suppressions`, with their written reasons). Each rule's verdict is then given per resource it
judges (emlops.guardrails.subjects: pass, fail, or suppressed), and gathered per control through the
mapping of emlops.guardrails.controls. Every control of a framework's catalogue in scope appears: evidenced
by rules that pass, by rules that fail, by rules with nothing to judge in this stack, or by no rule at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from emlops.catalog.resources_pulumi import is_provider
from emlops.guardrails.controls import controls_of
from emlops.guardrails.frameworks import FRAMEWORKS, Framework
from emlops.guardrails.subjects import judges_resource
from emlops.offline.plan import Plan
from emlops.review.check import Violation, check_plan, framework_rules, load_stack_config, stack_plan

PASS, FAIL, SUPPRESSED = "pass", "fail", "suppressed"
# what a control's rules found in this stack
EVIDENCED_PASS, EVIDENCED_FAIL, NOTHING_TO_JUDGE, NOT_COVERED = "pass", "fail", "nothing to judge", "not covered"


@dataclass
class Verdict:
    """One rule on one resource (name, type and urn None for a finding about the whole stack)."""

    urn: Optional[str]
    name: Optional[str]
    type: Optional[str]
    result: str
    findings: list[str] = field(default_factory=list)
    reason: Optional[str] = None


@dataclass
class RuleEvidence:
    """One rule: what it requires, and its verdict on every resource it judges."""

    name: str
    description: str
    severity: str
    enforcement: str
    verdicts: list[Verdict]
    complete: bool  # every resource the rule judges is listed (else: its findings only)

    def count(self, result: str) -> int:
        return sum(1 for v in self.verdicts if v.result == result)

    @property
    def result(self) -> str:
        if self.count(FAIL):
            return FAIL
        return PASS if self.verdicts or not self.complete else NOTHING_TO_JUDGE


@dataclass
class ControlEvidence:
    """One control of a framework's catalogue and the rules that evidence it."""

    control: str
    title: str
    rules: list[str]
    result: str


@dataclass
class FrameworkEvidence:
    framework: Framework
    controls: list[ControlEvidence]

    def of(self, *results: str) -> list[ControlEvidence]:
        return [c for c in self.controls if c.result in results]


@dataclass
class EvidenceReport:
    """Every framework asked for, the rules that ran, the suppressions applied and the check's warnings."""

    stack: str
    source: str
    resources: int
    frameworks: list[FrameworkEvidence]
    rules: dict[str, RuleEvidence]
    suppressed: list[Violation]
    warnings: list[str]

    @property
    def open_mandatory(self) -> int:
        return sum(v.result == FAIL for r in self.rules.values() if r.enforcement == "mandatory" for v in r.verdicts)


def _verdicts(policy, plan: Plan, violations: list[Violation]) -> tuple[list[Verdict], bool]:
    judges = judges_resource(policy)
    by_urn: dict[Optional[str], Verdict] = {}
    if judges is not None:
        for r in plan.resources:
            if r.custom and not is_provider(r.type) and judges(r.type, r.inputs):
                by_urn[r.urn] = Verdict(r.urn, r.name, r.type, PASS)
    stack_level: list[Verdict] = []
    for v in violations:
        verdict = by_urn.get(v.urn) if v.urn else None
        if verdict is None:
            verdict = Verdict(v.urn, v.name, v.type, PASS)
            if v.urn:
                by_urn[v.urn] = verdict
            else:
                stack_level.append(verdict)
        verdict.findings.append(v.message)
        if v.suppressed:
            verdict.result = FAIL if verdict.result == FAIL else SUPPRESSED
            verdict.reason = v.reason
        else:
            verdict.result = FAIL
    return [*by_urn.values(), *stack_level], judges is not None


def evidence(stack: str, plan: Plan, config, frameworks: list[str], source: str) -> EvidenceReport:
    """The evidence PLAN gives for FRAMEWORKS, with STACK's settings and suppressions from CONFIG."""
    policies = [p for p in framework_rules(None) if any(controls_of(p.name, f) for f in frameworks)]
    report = check_plan(stack, plan, config, policies)
    rules: dict[str, RuleEvidence] = {}
    for policy in policies:
        verdicts, complete = _verdicts(policy, plan, [v for v in report.violations if v.rule == policy.name])
        rules[policy.name] = RuleEvidence(policy.name, policy.description, policy.severity.value,
                                          policy.enforcement_level.value, verdicts, complete)
    out = []
    for name in frameworks:
        framework = FRAMEWORKS[name]
        controls = []
        for control, title in framework.catalogue.items():
            evidencing = [rule for rule in rules if control in controls_of(rule, name)]
            results = {rules[rule].result for rule in evidencing}
            result = (NOT_COVERED if not evidencing else EVIDENCED_FAIL if FAIL in results
                      else EVIDENCED_PASS if PASS in results else NOTHING_TO_JUDGE)
            controls.append(ControlEvidence(control, title, evidencing, result))
        out.append(FrameworkEvidence(framework, controls))
    return EvidenceReport(stack=stack, source=source, resources=len(plan.resources), frameworks=out, rules=rules,
                          suppressed=[v for v in report.violations if v.suppressed], warnings=report.warnings)


def report_stack(stack: str, plan_path: Optional[Path] = None, framework: Optional[str] = None,
                 project=None) -> EvidenceReport:
    """Preview STACK offline (or read its plan file) and gather its evidence for FRAMEWORK (every one if None)."""
    framework_rules(framework)  # an unknown framework fails before anything is previewed
    frameworks = list(FRAMEWORKS) if framework is None else [framework]
    project, config = load_stack_config(stack, project)
    plan = stack_plan(stack, plan_path, project)
    source = f"the plan file {plan_path.name}" if plan_path is not None else "an offline preview"
    return evidence(stack, plan, config, frameworks, source)


__all__ = ["ControlEvidence", "EvidenceReport", "FrameworkEvidence", "RuleEvidence", "Verdict", "evidence",
           "report_stack"]
