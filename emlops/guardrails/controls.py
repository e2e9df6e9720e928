"""Which framework controls each guardrail evidences (emlops.guardrails.frameworks names the frameworks).

A rule is mapped to a control only when a passing rule is evidence that the control's requirement is met
for the resources it judges, the way checkov, cdk-nag's NIST 800-53 / HIPAA / PCI DSS packs and AWS Config's
conformance packs map their checks: encryption at rest to SC-28(1), CC6.1, A.8.24, 3.5.1 and
164.312(a)(2)(iv); least privilege to AC-6, CC6.3, A.8.2, 7.2.x and 164.308(a)(4)(ii)(B); and so on. Where
those packs map a check to every control it touches at all (versioning to PCI DSS 9.4.1, physical media), this
table keeps to the controls whose requirement the rule itself checks. A framework a rule says nothing about
is left out of its entry. The table lives here, beside the rules and not
in their decorators, so that one reviewer reads every mapping in one place.
"""

from __future__ import annotations

from emlops.guardrails.frameworks import FRAMEWORKS

Mapping = dict[str, tuple[str, ...]]


def _m(nist: str = "", soc2: str = "", iso: str = "", pci: str = "", hipaa: str = "", cis: str = "") -> Mapping:
    """One rule's controls per framework, each a space-separated list of control identifiers."""
    given = {"nist-800-53": nist, "soc2": soc2, "iso-27001": iso, "pci-dss": pci, "hipaa": hipaa, "cis-aws": cis}
    return {name: tuple(ids.split()) for name, ids in given.items() if ids}


# Shared meanings, so that every rule of one kind maps alike.
AT_REST = _m(nist="SC-28 SC-28(1)", soc2="CC6.1", iso="A.8.24", pci="3.5.1", hipaa="164.312(a)(2)(iv)")
NO_INBOUND = _m(nist="SC-7", soc2="CC6.6", iso="A.8.20 A.8.22", pci="1.3.1", hipaa="164.312(a)(1) 164.312(e)(1)")
NO_OUTBOUND = _m(nist="AC-4 SC-7", soc2="CC6.6 CC6.7", iso="A.8.12 A.8.20", pci="1.3.2",
                 hipaa="164.312(a)(1) 164.312(e)(1)")
LEAST_PRIVILEGE = _m(nist="AC-6", soc2="CC6.3", iso="A.8.2", pci="7.2.1 7.2.2 7.2.5", hipaa="164.308(a)(4)(ii)(B)")
SERVICE_LEAST_PRIVILEGE = _m(nist="AC-6", soc2="CC6.3", iso="A.5.15 A.8.2", pci="7.2.5", hipaa="164.312(a)(1)")
CHANGE_APPROVAL = _m(nist="AC-5 CM-3 CM-5", soc2="CC6.3 CC8.1", iso="A.5.3 A.8.31 A.8.32", pci="6.5.1 6.5.4")
MODEL_MONITORING = _m(soc2="CC7.2", iso="A.8.16")

CONTROLS: dict[str, Mapping] = {
    # serving (emlops.guardrails.ml, serving)
    "sagemaker-endpoint-config-kms": AT_REST,
    "sagemaker-data-capture-kms": AT_REST,
    "sagemaker-data-capture-enabled": _m(soc2="CC7.2", iso="A.8.15 A.8.16"),
    "sagemaker-prod-variant-instances": _m(nist="SC-36", soc2="A1.2", iso="A.8.14"),
    "sagemaker-prod-blue-green-rollback": _m(nist="CM-3 CP-10", soc2="CC8.1", iso="A.8.32", pci="6.5.1"),
    "sagemaker-instance-type-allowed": _m(nist="CM-2 CM-6", iso="A.8.9", pci="2.2.1"),
    "sagemaker-model-network-isolation": NO_OUTBOUND,
    "sagemaker-model-vpc": NO_INBOUND,
    "sagemaker-pipeline-role-not-shared": SERVICE_LEAST_PRIVILEGE,
    "sagemaker-prod-endpoint-autoscaling": _m(nist="SC-5(2)", soc2="A1.1", iso="A.8.6"),
    "sagemaker-prod-endpoint-monitoring": MODEL_MONITORING,
    "sagemaker-monitor-vpc": NO_INBOUND,
    "sagemaker-monitor-network-isolation": NO_OUTBOUND,
    "sagemaker-monitoring-output-encrypted": AT_REST,
    "sagemaker-feature-group-online-store-encrypted": AT_REST,
    "sagemaker-feature-group-offline-store-encrypted": AT_REST,
    "sagemaker-model-package-group-not-public": _m(nist="AC-3 AC-21", soc2="CC6.1 CC6.6", iso="A.5.15 A.8.3",
                                                   pci="7.2.1 7.3.1", hipaa="164.312(a)(1)"),
    "sagemaker-model-package-group-approval-stays-with-the-registry": CHANGE_APPROVAL,
    "sagemaker-async-output-encrypted": AT_REST,
    "sagemaker-async-failures-reported": _m(soc2="CC7.2", iso="A.8.16"),
    "sagemaker-shadow-capture": _m(nist="CM-3(2)", soc2="CC8.1", iso="A.8.32"),
    # batch transform (emlops.guardrails.batch)
    "sagemaker-batch-transform-output-encrypted": AT_REST,
    "sagemaker-batch-transform-network-isolation": NO_OUTBOUND,
    "sagemaker-batch-transform-vpc": NO_INBOUND,
    # data pipelines and training from the feature store (emlops.guardrails.data)
    "sagemaker-processing-steps-encrypted": AT_REST,
    "sagemaker-processing-steps-in-vpc": NO_INBOUND,
    "lambda-in-vpc": NO_INBOUND,
    # a batch that fails validation is stopped, set apart and reported: evidence of monitoring, not of integrity
    "data-pipeline-quarantine": MODEL_MONITORING,
    "athena-workgroup-results-encrypted": AT_REST,
    # model cards and the audit trail (emlops.guardrails.model_cards, audit)
    # a card names the model's owner (accountability) and rates its risk
    "sagemaker-prod-model-card": _m(nist="CM-8 CM-8(4)", soc2="CC3.2", iso="A.5.9"),
    "cloudtrail-trail-hardened": _m(nist="AU-2 AU-9 AU-12", soc2="CC7.2", iso="A.8.15", pci="10.2.1 10.3.2",
                                    hipaa="164.312(b)", cis="3.1 3.2 3.5"),
    # AWS baseline (emlops.guardrails.baseline)
    "s3-bucket-sse-kms": _m(nist="SC-13 SC-28 SC-28(1)", soc2="CC6.1", iso="A.8.24", pci="3.5.1",
                            hipaa="164.312(a)(2)(iv)"),
    "s3-bucket-versioning": _m(nist="CP-9 CP-10 SI-12", soc2="A1.2", iso="A.8.13",
                               hipaa="164.308(a)(7)(ii)(A) 164.312(c)(1)"),
    "s3-bucket-public-access-blocked": _m(nist="AC-3 AC-4 SC-7", soc2="CC6.1 CC6.6", iso="A.5.15 A.8.3",
                                          pci="1.3.1 1.4.4", hipaa="164.312(a)(1)", cis="2.1.4"),
    "s3-bucket-tls-only": _m(nist="SC-8 SC-8(1)", soc2="CC6.7", iso="A.5.14 A.8.24", pci="4.2.1",
                             hipaa="164.312(e)(1) 164.312(e)(2)(ii)", cis="2.1.1"),
    "kms-key-rotation": _m(nist="SC-12", soc2="CC6.1", iso="A.8.24", pci="3.7.4", hipaa="164.312(a)(2)(iv)",
                           cis="3.6"),
    "iam-no-wildcard-action": _m(nist="AC-3 AC-6", soc2="CC6.3", iso="A.5.15 A.8.2", pci="7.2.1 7.2.2 7.2.5",
                                 hipaa="164.308(a)(4)(ii)(B) 164.312(a)(1)", cis="1.16"),
    "iam-no-passrole-wildcard": _m(nist="AC-6 AC-6(10)", soc2="CC6.3", iso="A.8.2", pci="7.2.1 7.2.2 7.2.5",
                                   hipaa="164.308(a)(4)(ii)(B)"),
    "iam-no-full-access-managed-policy": {**LEAST_PRIVILEGE, "cis-aws": ("1.22",)},
    "iam-role-permission-boundary": _m(nist="AC-6 AC-6(10)", soc2="CC6.3", iso="A.8.2", pci="7.2.2",
                                       hipaa="164.308(a)(4)(ii)(B)"),
    "ecr-scan-on-push": _m(nist="RA-5", soc2="CC7.1", iso="A.8.8", pci="6.3.1", hipaa="164.308(a)(1)(ii)(A)"),
    "ecr-immutable-tags": _m(nist="CM-2", soc2="CC8.1", iso="A.8.9", pci="6.5.1"),
    "cloudwatch-log-group-retention": _m(nist="AU-11 SI-12", soc2="C1.2", iso="A.8.10"),
    "cloudwatch-log-group-kms": _m(nist="AU-9 SC-28(1)", soc2="CC6.1", iso="A.8.15 A.8.24", pci="3.5.1",
                                   hipaa="164.312(a)(2)(iv)"),
    "sns-topic-encrypted": AT_REST,
    "eks-private-endpoint": _m(nist="AC-17 SC-7", soc2="CC6.6", iso="A.8.20", pci="1.3.1", hipaa="164.312(e)(1)"),
    "eks-secrets-encryption": _m(nist="SC-28 SC-28(1)", soc2="CC6.1", iso="A.5.17 A.8.24", pci="8.3.2",
                                 hipaa="164.312(a)(2)(iv)"),
    "eks-control-plane-logging": _m(nist="AU-2 AU-12", soc2="CC7.2", iso="A.8.15", pci="10.2.1",
                                    hipaa="164.312(b)"),
    "ec2-security-group-no-open-ingress": _m(nist="AC-4 SC-7", soc2="CC6.6", iso="A.8.20", pci="1.3.1 1.4.2",
                                             hipaa="164.312(e)(1)", cis="5.2 5.3"),
    # IAM and the model registry (emlops.guardrails.iam)
    "iam-role-writes-scoped": _m(nist="AC-2 AC-6 CM-5", soc2="CC6.3", iso="A.5.18 A.8.2", pci="7.2.2",
                                 hipaa="164.308(a)(4)(ii)(C)"),
    "iam-data-roles-off-the-admin-path": _m(nist="AC-5 AC-6", soc2="CC6.3", iso="A.5.3 A.8.2", pci="7.2.2",
                                            hipaa="164.308(a)(4)(ii)(C)"),
    "iam-log-reads-scoped": _m(nist="AC-6 AU-9", soc2="CC6.1", iso="A.8.3 A.8.15", pci="10.3.1",
                               hipaa="164.312(a)(1)"),
    "sagemaker-register-for-approval-only": _m(nist="CM-3", soc2="CC8.1", iso="A.8.32", pci="6.5.1 6.5.4"),
    "sagemaker-approval-by-people-only": CHANGE_APPROVAL,
    "sagemaker-people-jobs-isolated": _m(nist="AC-4 SC-7", soc2="CC6.6", iso="A.8.20", pci="1.3.2"),
    "iam-passrole-no-widening": LEAST_PRIVILEGE,
    "iam-trust-matches-principal-arn": _m(nist="AC-3 IA-2", soc2="CC6.1", iso="A.5.15 A.5.16", pci="7.2.1",
                                          hipaa="164.312(d)"),
    "kms-grant-condition-on-grant-actions-only": _m(nist="SC-12", iso="A.8.24", pci="3.6.1"),
    # network (emlops.guardrails.network)
    "vpc-endpoint-policy-own-account": _m(nist="AC-4 SC-7", soc2="CC6.7", iso="A.8.12", pci="1.3.2",
                                          hipaa="164.312(a)(1)"),
    "ec2-egress-to-vpc-endpoints": _m(nist="AC-4 SC-7", soc2="CC6.6", iso="A.8.20 A.8.22", pci="1.3.2",
                                      hipaa="164.312(e)(1)"),
    # governance (emlops.guardrails.governance)
    "required-tags": _m(nist="CM-8 CM-8(4)", soc2="CC6.1 C1.1", iso="A.5.9 A.5.12 A.5.13", pci="12.5.1"),
    "prod-stateful-protected": _m(nist="CM-5 SI-12", soc2="A1.2", iso="A.5.33", hipaa="164.312(c)(1)"),
}


def controls_of(rule: str, framework: str) -> tuple[str, ...]:
    """The controls of FRAMEWORK that RULE evidences (none for a rule the table does not map)."""
    return CONTROLS.get(rule, {}).get(framework, ())


def rules_of(framework: str, rule_names: tuple[str, ...]) -> tuple[str, ...]:
    """Those of RULE_NAMES (in their order) that evidence at least one control of FRAMEWORK."""
    return tuple(name for name in rule_names if controls_of(name, framework))


def evidence_of(framework: str, rule_names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Each control of FRAMEWORK's catalogue and the rules (of RULE_NAMES, in their order) that evidence it."""
    return {control: tuple(rule for rule in rule_names if control in controls_of(rule, framework))
            for control in FRAMEWORKS[framework].catalogue}
