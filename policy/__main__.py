"""The emlops CrossGuard policy pack: the rules of `emlops.guardrails`, served to the Pulumi CLI.

Each rule carries its own enforcement level (mandatory or advisory), severity and remediation steps;
`emlops check STACK --pack-config PATH` writes the per-rule config (production, environment,
allowedInstanceTypes, permissionBoundaryRequired, requiredTags, suppressions) of a stack.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from emlops.guardrails import POLICIES

PolicyPack(
    "emlops",
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
    description="emlops guardrails: ML (SageMaker) and AWS baseline rules; the same code as `emlops check`.",
)
