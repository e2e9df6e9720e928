"""emlops guardrails: the CrossGuard rules of the `policy/` pack, importable so `emlops check` runs the same objects.

Each rule is a pulumi_policy `ResourceValidationPolicy` or `StackValidationPolicy` with its name,
description, enforcement level, severity and remediation steps (pulumi_policy's own attributes).
"""

from __future__ import annotations

from pulumi_policy import Policy

from emlops.guardrails import audit, baseline, batch, data, governance, iam, ml, model_cards, network, serving
from emlops.guardrails.helpers import CONFIG_PROPERTIES, Settings

POLICIES: list[Policy] = [*ml.POLICIES, *serving.POLICIES, *batch.POLICIES, *data.POLICIES, *baseline.POLICIES,
                          *iam.POLICIES, *network.POLICIES, *governance.POLICIES, *model_cards.POLICIES,
                          *audit.POLICIES]
RULES: dict[str, Policy] = {policy.name: policy for policy in POLICIES}
RULE_NAMES: tuple[str, ...] = tuple(RULES)

if len(RULES) != len(POLICIES):  # pragma: no cover - a programming error caught at import
    raise RuntimeError("two guardrails share a name")


def pack_config(settings: Settings, suppressions: dict[str, list[dict[str, str]]] | None = None) -> dict:
    """The `--policy-pack-config` file for the Pulumi CLI: each rule's settings (only the keys its
    config schema declares) and the stack's suppressions of that rule."""
    values = {**settings.to_config()}
    out: dict = {}
    for policy in POLICIES:
        keys = [k for k in policy.config_schema.properties if k != "suppressions"]
        entry = {key: values[key] for key in keys}
        if suppressions and suppressions.get(policy.name):
            entry["suppressions"] = suppressions[policy.name]
        if entry:
            out[policy.name] = entry
    return out


__all__ = ["CONFIG_PROPERTIES", "POLICIES", "RULES", "RULE_NAMES", "Settings", "pack_config", "rule_rows",
           "rules_markdown"]


def rule_rows() -> list[tuple[str, str, str, str, str]]:
    """(rule, kind, enforcement, severity, what it requires) of every rule, in the pack's order."""
    return [(policy.name, "resource" if type(policy).__name__ == "ResourceValidationPolicy" else "stack",
             policy.enforcement_level.value, policy.severity.value, policy.description) for policy in POLICIES]


def rules_markdown() -> str:
    """The rules as a markdown table (`emlops rules --format markdown`)."""
    lines = ["| rule | kind | enforcement | severity | what it requires |", "|---|---|---|---|---|"]
    lines += [f"| `{name}` | {kind} | {enforcement} | {severity} | {description} |"
              for name, kind, enforcement, severity, description in rule_rows()]
    return "\n".join(lines) + "\n"
