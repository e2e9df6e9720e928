"""The control mapping: every rule evidences a control, every identifier has its framework's shape and is in
its catalogue, the table names only real rules, and a framework's rules are the ones `--framework` runs."""

from __future__ import annotations

import pytest

from emlops.catalog.resources import lookup
from emlops.guardrails import POLICIES, RULE_NAMES, RULES
from emlops.guardrails.controls import CONTROLS, controls_of, evidence_of, rules_of
from emlops.guardrails.frameworks import FRAMEWORK_NAMES, FRAMEWORKS
from emlops.guardrails.subjects import STACK_RULE_SUBJECTS, judged_by
from emlops.review.check import CheckError, framework_rules


def test_the_six_frameworks_and_their_names():
    assert FRAMEWORK_NAMES == ("nist-800-53", "soc2", "iso-27001", "pci-dss", "hipaa", "cis-aws")
    assert [f.title for f in FRAMEWORKS.values()] == [
        "NIST SP 800-53 Rev. 5", "SOC 2 (2017 Trust Services Criteria, revised points of focus 2022)",
        "ISO/IEC 27001:2022 Annex A", "PCI DSS v4.0", "HIPAA Security Rule (45 CFR Part 164, Subpart C)",
        "CIS Amazon Web Services Foundations Benchmark v3.0.0"]
    assert {name: len(f.catalogue) for name, f in FRAMEWORKS.items()} == {
        "nist-800-53": 56, "soc2": 38, "iso-27001": 46, "pci-dss": 34, "hipaa": 24, "cis-aws": 62}


def test_every_rule_maps_to_at_least_one_control_of_at_least_one_framework():
    unmapped = [p.name for p in POLICIES if not any(controls_of(p.name, f) for f in FRAMEWORK_NAMES)]
    assert unmapped == []


def test_the_table_names_no_unknown_rule_and_no_unknown_framework():
    assert sorted(set(CONTROLS) - set(RULE_NAMES)) == []
    assert all(set(mapping) <= set(FRAMEWORK_NAMES) and all(mapping.values()) for mapping in CONTROLS.values())


@pytest.mark.parametrize("framework", FRAMEWORK_NAMES)
def test_every_control_id_has_its_frameworks_shape_and_is_in_its_catalogue(framework):
    f = FRAMEWORKS[framework]
    mapped = {c for mapping in CONTROLS.values() for c in mapping.get(framework, ())}
    assert mapped, framework
    assert sorted(c for c in mapped if not f.valid_id(c)) == []
    assert sorted(mapped - set(f.catalogue)) == []
    assert sorted(c for c in f.catalogue if not f.valid_id(c)) == []
    assert all(title.strip() for title in f.catalogue.values())


@pytest.mark.parametrize("framework, good, bad", [
    ("nist-800-53", ["AC-6", "SC-28(1)", "AC-6(10)", "SI-12"], ["AC6", "SC-28 (1)", "CC6.1", "XX-1", "AC-6(a)"]),
    ("soc2", ["CC6.1", "CC9.2", "A1.2", "C1.1", "PI1.3", "P4.1"], ["CC6", "CC10.1", "A2.1", "SC-28", "cc6.1"]),
    ("iso-27001", ["A.5.1", "A.5.37", "A.6.8", "A.7.14", "A.8.24", "A.8.34"],
     ["A.8.35", "A.5.38", "A.9.1", "A.8", "8.24", "A.12.3.1"]),
    ("pci-dss", ["3.5.1", "10.2.1", "10.2.1.2", "1.4.4", "12.5.1"], ["3.5", "13.1.1", "A1.1.1", "3.5.1.2.3"]),
    ("hipaa", ["164.312(a)(2)(iv)", "164.312(b)", "164.308(a)(1)(ii)(D)", "164.308(a)(6)(ii)", "164.312(e)(1)"],
     ["164.312", "164.312(a)(2)(xi)", "164.400(a)", "164.312(f)", "45 CFR 164.312(b)"]),
    ("cis-aws", ["1.16", "2.1.4", "3.6", "5.2"], ["6.1", "2.1.4.1.2", "1", "CIS 1.16"]),
])
def test_the_shapes_accept_the_frameworks_identifiers_only(framework, good, bad):
    f = FRAMEWORKS[framework]
    assert [c for c in good if not f.valid_id(c)] == []
    assert [c for c in bad if f.valid_id(c)] == []


def test_mappings_of_the_baseline_rules():
    assert CONTROLS["s3-bucket-tls-only"] == {
        "nist-800-53": ("SC-8", "SC-8(1)"), "soc2": ("CC6.7",), "iso-27001": ("A.5.14", "A.8.24"),
        "pci-dss": ("4.2.1",), "hipaa": ("164.312(e)(1)", "164.312(e)(2)(ii)"), "cis-aws": ("2.1.1",)}
    assert CONTROLS["sagemaker-endpoint-config-kms"] == {
        "nist-800-53": ("SC-28", "SC-28(1)"), "soc2": ("CC6.1",), "iso-27001": ("A.8.24",), "pci-dss": ("3.5.1",),
        "hipaa": ("164.312(a)(2)(iv)",)}
    assert CONTROLS["iam-no-full-access-managed-policy"]["cis-aws"] == ("1.22",)
    # model monitoring is evidence of anomaly monitoring (SOC 2, ISO), not of a security control of the others
    assert CONTROLS["sagemaker-prod-endpoint-monitoring"] == {"soc2": ("CC7.2",), "iso-27001": ("A.8.16",)}


def test_the_rules_of_each_framework():
    assert rules_of("cis-aws", RULE_NAMES) == (
        "s3-bucket-public-access-blocked", "s3-bucket-tls-only", "kms-key-rotation", "iam-no-wildcard-action",
        "iam-no-full-access-managed-policy", "ec2-security-group-no-open-ingress", "cloudtrail-trail-hardened")
    # model monitoring, failure reporting and quarantine evidence no NIST control; every rule evidences an ISO control
    assert [r for r in RULE_NAMES if r not in rules_of("nist-800-53", RULE_NAMES)] == [
        "sagemaker-data-capture-enabled", "sagemaker-prod-endpoint-monitoring", "sagemaker-async-failures-reported",
        "data-pipeline-quarantine"]
    assert rules_of("iso-27001", RULE_NAMES) == RULE_NAMES
    assert [p.name for p in framework_rules("cis-aws")] == list(rules_of("cis-aws", RULE_NAMES))
    assert framework_rules(None) == POLICIES


def test_evidence_of_a_control_lists_its_rules_in_the_packs_order():
    evidence = evidence_of("cis-aws", RULE_NAMES)
    assert list(evidence) == list(FRAMEWORKS["cis-aws"].catalogue)
    assert evidence["5.2"] == evidence["5.3"] == ("ec2-security-group-no-open-ingress",)
    assert evidence["1.4"] == ()
    assert evidence_of("hipaa", RULE_NAMES)["164.312(e)(2)(ii)"] == ("s3-bucket-tls-only",)


def test_an_unknown_framework_is_one_line_naming_the_allowed():
    with pytest.raises(CheckError) as error:
        framework_rules("nist")
    assert str(error.value) == ("--framework: 'nist' is not a framework emlops maps its rules to; allowed: "
                                "nist-800-53, soc2, iso-27001, pci-dss, hipaa, cis-aws")
    assert error.value.exit_code == 2


def test_every_rule_says_what_it_judges():
    for policy in POLICIES:
        judges = judged_by(policy)
        assert judges is not None, f"{policy.name}: name its subjects in emlops.guardrails.subjects"
    stack_rules = {p.name for p in POLICIES if type(p).__name__ == "StackValidationPolicy"}
    assert stack_rules == set(STACK_RULE_SUBJECTS)
    assert all(lookup(t) is not None for types in STACK_RULE_SUBJECTS.values() for t in types)
    assert RULES["kms-key-rotation"].resource_types == ("aws:kms/key:Key",)
    required_tags = judged_by(RULES["required-tags"])
    assert required_tags("aws:s3/bucket:Bucket") and not required_tags("aws:s3/bucketPolicy:BucketPolicy")
