"""`emlops check`: run the policy pack's rules in-process on a stack's offline plan.

The rules are the very objects `policy/__main__.py` hands to the Pulumi CLI (emlops.guardrails). Here
each plan resource becomes pulumi_policy's `ResourceValidationArgs` (resource rules) and a
`PolicyResource` (stack rules) the way the CLI builds them, the policy config comes from the stack's
config, and `report_violation` collects what the rules find. The stack's `guardrails.suppressions`
are applied afterwards, so a suppressed violation is still reported, with its reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from emlops.catalog.resources_pulumi import is_provider
from emlops.guardrails import POLICIES, RULES, Settings, pack_config
from emlops.offline.plan import Plan, PlanResource
from emlops.program.config_guardrails import GuardrailsConfig, SuppressionConfig
from emlops.review.cost import cost_of, usd
from emlops.review.prices import DEFAULT_PATH, PriceBook, PriceBookError

SCHEMA = "emlops.check/v1"
SEVERITIES = ("critical", "high", "medium", "low")
EXIT_VIOLATIONS = 1
EXIT_INPUT = 2


class CheckError(Exception):
    """A check that cannot run: one line for the user, and the exit code to end with."""

    def __init__(self, message: str, exit_code: int = EXIT_INPUT):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Violation:
    """One finding of one rule; stack-level findings have no resource (urn, name and type None)."""

    rule: str
    severity: str
    enforcement: str
    urn: Optional[str]
    name: Optional[str]
    type: Optional[str]
    message: str
    remediation: str
    suppressed: bool = False
    reason: Optional[str] = None

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "enforcement": self.enforcement, "urn": self.urn,
                "name": self.name, "type": self.type, "message": self.message, "remediation": self.remediation,
                "suppressed": self.suppressed, "reason": self.reason}


@dataclass
class CheckReport:
    """What `emlops check` found in one stack."""

    stack: str
    rules_evaluated: int
    resources: int
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    framework: Optional[str] = None  # only the rules of this framework ran

    @property
    def mandatory_violations(self) -> int:
        return sum(1 for v in self.violations if v.enforcement == "mandatory" and not v.suppressed)

    @property
    def failed(self) -> bool:
        return self.mandatory_violations > 0

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "stack": self.stack, "rulesEvaluated": self.rules_evaluated,
                "mandatoryViolations": self.mandatory_violations,
                "violations": [v.to_json() for v in self.violations],
                **({"framework": self.framework} if self.framework else {})}

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# Running the rules on a plan


def _options(resource: PlanResource) -> PolicyResourceOptions:
    opts = PolicyResourceOptions(resource.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], resource.parent)
    # The CLI does not pass retainOnDelete to policies; the plan has it, and prod-stateful-protected reads it.
    opts.retain_on_delete = resource.retain_on_delete
    return opts


def _props(resource: PlanResource) -> Any:
    # the CLI's read-only proxies, so rules see the same Mapping/Sequence types offline
    return unknown_checking_proxy(json.loads(json.dumps(resource.inputs)))


def _providers(plan: Plan) -> dict[str, PolicyProviderResource]:
    return {r.urn: PolicyProviderResource(r.type, _props(r), r.urn, r.name)
            for r in plan.resources if is_provider(r.type)}


def policy_resources(plan: Plan) -> dict[str, PolicyResource]:
    """The plan's resources as the CLI hands them to stack rules (parents and dependencies linked), by URN."""
    providers = _providers(plan)
    resources = {r.urn: PolicyResource(r.type, _props(r), r.urn, r.name, _options(r),
                                       providers.get(r.provider or ""), None, [], {})
                 for r in plan.resources}
    for r in plan.resources:
        resources[r.urn].parent = resources.get(r.parent or "")
        resources[r.urn].dependencies = [resources[d] for d in r.dependencies if d in resources]
    return resources


def evaluate(plan: Plan, settings: Settings, policies: Optional[list] = None) -> list[Violation]:
    """Every violation the rules report on `plan`, most severe first, then in rule and plan order."""
    policies = POLICIES if policies is None else policies
    config = settings.to_config()
    by_urn = {r.urn: r for r in plan.resources}
    providers = _providers(plan)
    stack_resources = policy_resources(plan)

    found: list[Violation] = []

    def collector(policy, fixed: Optional[PlanResource]):
        def report_violation(message: str, urn: Optional[str] = None) -> None:
            resource = fixed or (by_urn.get(urn) if urn else None)
            found.append(Violation(
                rule=policy.name, severity=policy.severity.value, enforcement=policy.enforcement_level.value,
                urn=resource.urn if resource else urn, name=resource.name if resource else None,
                type=resource.type if resource else None, message=message or policy.description,
                remediation=policy.remediation_steps or ""))
        return report_violation

    # the proxies are read-only, so every resource rule can share one per resource
    per_resource = [(r, stack_resources[r.urn].props, _options(r), providers.get(r.provider or ""))
                    for r in plan.resources]
    for policy in policies:
        if isinstance(policy, ResourceValidationPolicy):
            for r, props, opts, provider in per_resource:
                args = ResourceValidationArgs(r.type, props, r.urn, r.name, opts, provider, dict(config))
                _run(policy, args, collector(policy, r))
        else:
            _run(policy, StackValidationArgs(list(stack_resources.values()), dict(config)), collector(policy, None))

    order = {p.name: i for i, p in enumerate(policies)}
    position = {r.urn: i for i, r in enumerate(plan.resources)}
    found.sort(key=lambda v: (SEVERITIES.index(v.severity), order[v.rule], position.get(v.urn or "", -1)))
    return found


def _run(policy, args, report_violation) -> None:
    try:
        policy.validate(args, report_violation)
    except (UnknownValueError, _NotApplicableError):
        pass  # a value not known offline is never a violation; the CLI reports it as advisory


def apply_suppressions(violations: list[Violation], suppressions: list[SuppressionConfig]) -> list[str]:
    """Mark suppressed violations (with their reason); warnings for suppressions that match nothing."""
    warnings = []
    for suppression in suppressions:
        matched = [v for v in violations if v.rule == suppression.rule and suppression.resource in (v.name, v.urn)]
        for violation in matched:
            violation.suppressed, violation.reason = True, suppression.reason
        if not matched:
            warnings.append(f"suppression of {suppression.rule} for {suppression.resource!r} matches no violation; "
                            "remove it from guardrails.suppressions")
    return warnings


# ------------------------------------------------------------------------------------------------
# A stack: its config, its plan, its report


def guardrails_of(stack_config) -> GuardrailsConfig:
    """The stack's `guardrails` section (validated with the rest of its `emlops:platform`)."""
    return stack_config.platform.guardrails


def settings_of(stack_config, guardrails: GuardrailsConfig) -> Settings:
    """The policy config of a stack, from `emlops:platform`."""
    from emlops.program.config import REQUIRED_TAGS

    platform = stack_config.platform
    return Settings(production=platform.production, environment=platform.environment,
                    allowed_instance_types=tuple(guardrails.allowed_instance_types),
                    permission_boundary_required=platform.permission_boundary_arn is not None,
                    required_tags=tuple(REQUIRED_TAGS))


def load_stack_config(stack: str, project=None):
    from emlops.program.stackfile import find_project, load_stack
    from emlops.program.config import ConfigError

    try:
        project = project or find_project()
        config = load_stack(project, stack)
    except ConfigError as exc:
        raise CheckError(str(exc)) from None
    return project, config


def stack_pack_config(stack: str, project=None) -> dict:
    """The `--policy-pack-config` JSON for `pulumi preview -s STACK --policy-pack policy`."""
    _, config = load_stack_config(stack, project)
    guardrails = guardrails_of(config)
    suppressions: dict[str, list[dict[str, str]]] = {}
    for s in guardrails.suppressions:
        suppressions.setdefault(s.rule, []).append({"resource": s.resource, "reason": s.reason})
    return pack_config(settings_of(config, guardrails), suppressions)


BUDGET_RULE = "stack-monthly-budget"


def budget_findings(plan: Plan, guardrails: GuardrailsConfig, book: Optional[PriceBook]
                    ) -> tuple[list[Violation], list[str]]:
    """The stack's `guardrails.monthly_budget_usd` against the high end of its estimate (`emlops cost`): a violation
    (advisory, or mandatory as `monthly_budget_enforcement` says) when it is above, a warning when it cannot be
    priced. Not a policy-pack rule: it needs the price book, which only `emlops check` reads."""
    budget = guardrails.monthly_budget_usd
    if budget is None:
        return [], []
    if book is None:
        return [], [f"guardrails.monthly_budget_usd is not checked: no price book (write one with `emlops prices "
                     f"refresh` at {DEFAULT_PATH}, or pass --prices FILE)"]
    report = cost_of(plan, book)
    warnings = [f"the estimate leaves out what the price book has no price for: {', '.join(report.missing)}"
                ] if report.missing else []
    high = report.total()[1]
    if high <= Fraction(str(budget)):
        return [], warnings
    test = " (test prices)" if book.test_data else ""
    return [Violation(
        rule=BUDGET_RULE, severity="medium", enforcement=guardrails.monthly_budget_enforcement, urn=None, name=None,
        type=None, message=f"the high estimate of {usd(high)} a month{test} is above guardrails.monthly_budget_usd "
                           f"({usd(Fraction(str(budget)))}); `emlops cost {plan.stack}` shows what it is made of",
        remediation="Lower the autoscaling maximums, instance types or schedules, or raise the budget with the "
                    "budget owner's agreement")], warnings


def framework_rules(framework: Optional[str]) -> list:
    """The rules of FRAMEWORK (every rule when None); an unknown framework is a CheckError naming the allowed."""
    if framework is None:
        return list(POLICIES)
    from emlops.guardrails.controls import rules_of
    from emlops.guardrails.frameworks import FRAMEWORK_NAMES

    if framework not in FRAMEWORK_NAMES:
        raise CheckError(f"--framework: {framework!r} is not a framework emlops maps its rules to; allowed: "
                         f"{', '.join(FRAMEWORK_NAMES)}")
    names = set(rules_of(framework, tuple(RULES)))
    return [policy for policy in POLICIES if policy.name in names]


def stack_plan(stack: str, plan_path: Optional[Path], project) -> Plan:
    """STACK's plan: read from PLAN_PATH (which must be STACK's), or previewed offline."""
    if plan_path is not None:
        try:
            plan = Plan.load(plan_path)
        except (OSError, ValueError, KeyError) as exc:
            raise CheckError(f"--plan {plan_path}: cannot read the plan: {exc}") from None
        if plan.stack != stack:
            raise CheckError(f"--plan {plan_path}: is the plan of stack {plan.stack!r}, not {stack!r}")
        return plan
    from emlops.offline.preview import PreviewError, preview_stack

    try:
        return preview_stack(stack, project=project).plan
    except PreviewError as exc:
        raise CheckError(str(exc), exc.exit_code) from None


def check_plan(stack: str, plan: Plan, config, policies: list) -> CheckReport:
    """Run POLICIES on PLAN with STACK's settings and suppressions (those of the rules that ran)."""
    guardrails = guardrails_of(config)
    violations = evaluate(plan, settings_of(config, guardrails), policies)
    ran = {policy.name for policy in policies}
    warnings = apply_suppressions(violations, [s for s in guardrails.suppressions if s.rule in ran])
    return CheckReport(stack=stack, rules_evaluated=len(policies), resources=len(plan.resources),
                       violations=violations, warnings=warnings)


def check_stack(stack: str, plan_path: Optional[Path] = None, project=None,
                framework: Optional[str] = None, prices: Optional[Path] = None) -> CheckReport:
    """Preview STACK offline (or load its plan file) and run every rule on it (those of FRAMEWORK, if given), and,
    without a framework, its budget with a price book (PRICES, else the project's `prices/aws-price-book.json` if
    there is one)."""
    policies = framework_rules(framework)
    project, config = load_stack_config(stack, project)
    plan = stack_plan(stack, plan_path, project)
    report = check_plan(stack, plan, config, policies)
    report.framework = framework
    guardrails = guardrails_of(config)
    if framework is None and guardrails.monthly_budget_usd is not None:
        default = project.root / DEFAULT_PATH
        try:
            book = PriceBook.load(prices) if prices else PriceBook.load(default) if default.exists() else None
        except PriceBookError as exc:
            raise CheckError(f"--prices: {exc}") from None
        found, warnings = budget_findings(plan, guardrails, book)
        report.violations += found
        report.warnings += warnings
    return report


__all__ = ["BUDGET_RULE", "CheckError", "CheckReport", "Violation", "RULES", "apply_suppressions", "budget_findings",
           "check_plan", "check_stack", "evaluate", "framework_rules", "guardrails_of", "policy_resources",
           "settings_of", "stack_pack_config", "stack_plan"]
