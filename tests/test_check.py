"""`emlops check`: shipped stacks pass, a broken change fails with the right rules; suppressions and reports."""

from __future__ import annotations

import json
import re
import runpy
import textwrap
from pathlib import Path

import pytest
import typer
from pulumi_policy import StackValidationArgs
from pydantic import ValidationError
from typer.testing import CliRunner

from emlops.review.check import (
    SCHEMA,
    apply_suppressions,
    check_stack,
    evaluate,
    guardrails_of,
    policy_resources,
    settings_of,
)
from emlops.cli.check import markdown_report, register
from emlops.guardrails import POLICIES, RULES, Settings, pack_config, rules_markdown
from emlops.offline.plan import Plan
from emlops.offline.preview import preview_stack
from emlops.program.stackfile import find_project, load_stack
from emlops.program.config_guardrails import AcceptedStatefulChange, GuardrailsConfig, SuppressionConfig
from tests.conftest import ROOT, SHIPPED_STACKS, extended_project

runner = CliRunner()
REASON = "scratch data is rebuilt nightly; accepted by the data owner (ML-123)"

# A change under review adds, next to the platform, a bucket someone forgot to encrypt and a model
# endpoint nobody monitors (both otherwise as the platform would build them).
BROKEN_CHANGE = '''
# --- the change under review
import pulumi as _pulumi
import pulumi_aws as _aws
from emlops.components.endpoint import (EndpointContext as _Context, EndpointSettings as _Settings,
                                       ModelArtifact as _Artifact, ModelEndpoint as _Endpoint)
from emlops.components.network_access import https_only_security_group as _https_only
from emlops.components.model_card import (ModelCard as _Card, ModelCardContext as _CardContext,
                                         ModelCardSettings as _CardSettings)
from emlops.components.settings import Governance as _Governance, Placement as _Placement

_config = load_platform_config()
_tags = {**_config.tags.as_dict(), "environment": _config.environment, "managed-by": "emlops"}
_scratch = _aws.s3.Bucket("prod-scratch-bucket", tags=_tags, opts=_pulumi.ResourceOptions(
    parent=platform, protect=True, retain_on_delete=True))
_child = _pulumi.ResourceOptions(parent=platform)
_aws.s3.BucketVersioning("prod-scratch-versioning", bucket=_scratch.id,
                         versioning_configuration={"status": "Enabled"}, opts=_child)
_aws.s3.BucketPublicAccessBlock("prod-scratch-public-access", bucket=_scratch.id, block_public_acls=True,
                                block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
                                opts=_child)
_aws.s3.BucketPolicy("prod-scratch-policy", bucket=_scratch.id, opts=_child, policy=_scratch.arn.apply(
    lambda arn: __import__("json").dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn, arn + "/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})))
# (its network interfaces send HTTPS to the VPC endpoints, as the platform's own do)
_group = _https_only(platform, "prod-ranking", platform.network.vpc_id, "Ranking endpoint", _tags,
                     egress_to=platform.network.endpoint_egress)
_Endpoint("prod-ranking", _Settings.model_validate({
    "variants": [{"name": "primary", "instance_type": "ml.m5.xlarge", "initial_instance_count": 2}],
    "deployment": {"strategy": "canary"}, "autoscaling": {"min_instances": 2, "max_instances": 4}}), _Context(
    artifact=_Artifact("s3://acme-ml-prod-models/ranking/model.tar.gz"),
    image_uri="333333333333.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2",
    placement=_Placement(platform.network.vpc_id, platform.network.private_subnet_ids, [_group.id]),
    kms_key_arn=platform.data_key.arn, capture_bucket=platform.capture,
    governance=_Governance(_tags, _config.permission_boundary_arn)), opts=_child)
_Card("prod-ranking-model-card", _CardSettings(intended_uses="Ranks offers", risk_rating="Low", owner="ranking"),
      _CardContext(card_name="prod-ranking", model_name="ranking", endpoint_name="prod-ranking",
                   package_group="ranking", production=True, governance=_Governance(_tags, protect=True)), opts=_child)
'''
BROKEN = [("s3-bucket-sse-kms", "prod-scratch-bucket",
           "bucket 'prod-scratch-bucket' has no SSE-KMS default encryption"),
          ("sagemaker-prod-endpoint-monitoring", "prod-ranking-endpoint",
           "endpoint 'prod-ranking' has no monitoring schedule")]


def make_project(root: Path) -> Path:
    """A scratch project whose program is the real one plus BROKEN_CHANGE: prod's (the shared stack prod reads is
    previewed with the same program), at the end of the program's entry point, where the platform is built."""
    return extended_project(root, "if __import__('pulumi').get_stack() == 'prod':\n"
                                  + textwrap.indent(BROKEN_CHANGE, "    "))


@pytest.fixture(scope="module")
def broken_plan_file(tmp_path_factory) -> Path:
    project = make_project(tmp_path_factory.mktemp("broken"))
    path = project / "prod.json"
    preview_stack("prod", project=find_project(project)).plan.write(path)
    return path


def app_with_check() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """emlops"""

    register(app)
    return app


def add_guardrails(project: Path, text: str, stack: str = "prod") -> None:
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    current = path.read_text()
    if "\n    guardrails:\n" in current:  # the stack has a section (prod: its budget): TEXT's keys go first in it
        path.write_text(current.replace("\n    guardrails:\n", "\n" + text, 1))
    else:
        path.write_text(current.replace("    tags:\n", text + "    tags:\n", 1))


def suppression(rule: str = "s3-bucket-sse-kms", resource: str = "prod-scratch-bucket", reason: str = REASON) -> str:
    return f"    guardrails:\n      suppressions:\n        - rule: {rule}\n          resource: {resource}\n" \
           f"          reason: {reason}\n"


# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_have_no_unsuppressed_mandatory_violation(shipped_plan, stack):
    config = load_stack(find_project(ROOT), stack)
    violations = evaluate(shipped_plan(stack), settings_of(config, guardrails_of(config)))
    assert [(v.rule, v.name, v.message) for v in violations if v.enforcement == "mandatory"] == []


def test_the_settings_come_from_the_stack_config():
    project = find_project(ROOT)
    prod, dev = load_stack(project, "prod"), load_stack(project, "dev")
    assert settings_of(prod, guardrails_of(prod)) == Settings(
        production=True, environment="prod", allowed_instance_types=(), permission_boundary_required=True,
        required_tags=("owner", "cost-center", "data-classification"))
    assert settings_of(dev, guardrails_of(dev)).to_config() == {
        "production": False, "environment": "dev", "allowedInstanceTypes": [], "permissionBoundaryRequired": False,
        "requiredTags": ["owner", "cost-center", "data-classification"]}


def test_a_broken_change_fails_with_the_expected_rules(broken_plan_file):
    report = check_stack("prod", broken_plan_file, project=find_project(broken_plan_file.parent))
    assert [(v.rule, v.name, v.message) for v in report.violations] == BROKEN
    assert report.mandatory_violations == 2 and report.failed


def test_emlops_check_prod_previews_and_passes(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app_with_check(), ["check", "prod"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # prod's budget needs a price book, which the project does not ship
    assert result.stdout.startswith("warning: guardrails.monthly_budget_usd is not checked: no price book (write "
                                    "one with `emlops prices refresh` at prices/aws-price-book.json, or pass "
                                    "--prices FILE)\npassed: ")
    rules = int(result.stdout.split("passed: ")[1].split(" rules evaluated")[0])
    assert rules == len(POLICIES) >= 30
    assert "0 mandatory violation(s)" in result.stdout


def test_emlops_check_reports_violations_by_severity_and_exits_1(broken_plan_file, monkeypatch):
    monkeypatch.chdir(broken_plan_file.parent)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file)],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 1
    out = result.stdout
    assert out.index("CRITICAL (1)") < out.index("s3-bucket-sse-kms") < out.index("HIGH (1)") < out.index(
        "sagemaker-prod-endpoint-monitoring")
    assert "prod-scratch-bucket (aws:s3/bucket:Bucket)" in out
    assert RULES["s3-bucket-sse-kms"].remediation_steps[:40] in out
    assert out.splitlines()[-1] == (f"FAILED: {len(POLICIES)} rules evaluated on "
                                    f"{len(json.loads(broken_plan_file.read_text())['resources'])} resources of prod: "
                                    "2 mandatory violation(s), 0 advisory, 0 suppressed")


def test_json_report_shape(broken_plan_file, monkeypatch, tmp_path):
    monkeypatch.chdir(broken_plan_file.parent)
    target = tmp_path / "prod.check.json"
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file), "--json", str(target)])
    assert result.exit_code == 1
    report = json.loads(target.read_text())
    assert list(report) == ["schema", "stack", "rulesEvaluated", "mandatoryViolations", "violations"]
    assert (report["schema"], report["stack"], report["rulesEvaluated"], report["mandatoryViolations"]) == (
        SCHEMA, "prod", len(POLICIES), 2)
    first = report["violations"][0]
    assert first == {
        "rule": "s3-bucket-sse-kms", "severity": "critical", "enforcement": "mandatory",
        "urn": "urn:pulumi:prod::emlops::emlops:index:MlPlatform$aws:s3/bucket:Bucket::prod-scratch-bucket",
        "name": "prod-scratch-bucket", "type": "aws:s3/bucket:Bucket",
        "message": "bucket 'prod-scratch-bucket' has no SSE-KMS default encryption",
        "remediation": RULES["s3-bucket-sse-kms"].remediation_steps, "suppressed": False, "reason": None}


def test_markdown_format(broken_plan_file, monkeypatch):
    monkeypatch.chdir(broken_plan_file.parent)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file),
                                              "--format", "markdown"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "### emlops check `prod`: ❌ failed"
    assert lines[4:6] == ["| severity | rule | resource | violation | remediation / reason |", "|---|---|---|---|---|"]
    assert lines[6].startswith("| critical | `s3-bucket-sse-kms` | `prod-scratch-bucket (aws:s3/bucket:Bucket)` | "
                               "bucket 'prod-scratch-bucket' has no SSE-KMS default encryption | ")


def test_a_suppression_with_a_reason_is_reported_and_does_not_fail(broken_plan_file, project_copy, monkeypatch):
    add_guardrails(project_copy, suppression())
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file), "--json", "r.json"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 1  # the unmonitored endpoint still fails
    assert "Suppressed (1)" in result.stdout and REASON in result.stdout
    report = json.loads((project_copy / "r.json").read_text())
    assert report["mandatoryViolations"] == 1
    assert [(v["rule"], v["suppressed"], v["reason"]) for v in report["violations"]] == [
        ("s3-bucket-sse-kms", True, REASON), ("sagemaker-prod-endpoint-monitoring", False, None)]


def test_suppressing_every_violation_passes_and_by_urn_too(broken_plan_file, project_copy, monkeypatch):
    urn = ("urn:pulumi:prod::emlops::emlops:index:MlPlatform$emlops:index:ModelEndpoint"
           "$aws:sagemaker/endpoint:Endpoint::prod-ranking-endpoint")
    text = suppression() + f"        - rule: sagemaker-prod-endpoint-monitoring\n          resource: '{urn}'\n" \
                           "          reason: monitored by the ranking team's own schedule (ML-456)\n"
    add_guardrails(project_copy, text)
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file)])
    assert result.exit_code == 0, result.output
    assert "0 mandatory violation(s), 0 advisory, 2 suppressed" in result.stdout


@pytest.mark.parametrize("entry, message", [
    ("        - rule: s3-bucket-sse-kms\n          resource: prod-scratch-bucket\n",
     "stacks/Pulumi.prod.yaml: emlops:platform.guardrails.suppressions[0].reason: field required"),
    (suppression(reason="ok").split("suppressions:\n")[1],
     "stacks/Pulumi.prod.yaml: emlops:platform.guardrails.suppressions[0].reason: a suppression needs a written "
     "reason of at least 10 characters (why the rule does not apply and who accepted it)"),
    (suppression(rule="s3-bucket-sse").split("suppressions:\n")[1],
     "stacks/Pulumi.prod.yaml: emlops:platform.guardrails.suppressions[0].rule: unknown rule 's3-bucket-sse'; "
     "did you mean 's3-bucket-sse-kms'? `emlops rules` lists them"),
])
def test_a_bad_suppression_is_one_line_and_exit_2(broken_plan_file, project_copy, monkeypatch,
                                                   entry, message):
    add_guardrails(project_copy, "    guardrails:\n      suppressions:\n" + entry)
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file)])
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_a_suppression_that_matches_nothing_is_a_warning(broken_plan_file, project_copy, monkeypatch):
    add_guardrails(project_copy, suppression(rule="s3-bucket-versioning"))
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file)],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert ("warning: suppression of s3-bucket-versioning for 'prod-scratch-bucket' matches no violation; remove it "
            "from guardrails.suppressions") in result.stdout


def test_allowed_instance_types_reach_the_rule(broken_plan_file, project_copy, monkeypatch):
    add_guardrails(project_copy, "    guardrails:\n      allowed_instance_types: [ml.m5.large]\n")
    monkeypatch.chdir(project_copy)
    report = check_stack("prod", broken_plan_file)
    assert {(v.rule, v.name) for v in report.violations if v.rule == "sagemaker-instance-type-allowed"} == {
        ("sagemaker-instance-type-allowed", name) for name in (
            "prod-churn-config", "prod-fraud-config", "prod-doc-scoring-config", "prod-ranking-config",
            "prod-churn-monitor-job", "prod-churn-monitor-quality-job", "prod-churn-monitor-bias-job",
            "prod-fraud-monitor-job", "prod-fraud-monitor-explainability-job", "prod-doc-scoring-monitor-job",
            # the nightly batch transform's job, and its inputs' monitoring job
            "prod-churn-nightly-pipeline", "prod-churn-nightly-monitor-job")}


def test_pack_config_file_for_the_pulumi_cli(broken_plan_file, project_copy, monkeypatch):
    add_guardrails(project_copy, suppression())
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", str(broken_plan_file),
                                              "--pack-config", "policy-config.json"])
    assert result.exit_code == 1  # the check runs too: the unmonitored endpoint fails it
    assert result.stdout.endswith("policy pack config of prod written to policy-config.json; use it with: pulumi "
                                  "preview -s prod --policy-pack policy --policy-pack-config policy-config.json\n")
    config = json.loads((project_copy / "policy-config.json").read_text())
    assert config["s3-bucket-sse-kms"] == {"suppressions": [{"resource": "prod-scratch-bucket", "reason": REASON}]}
    assert config["sagemaker-prod-endpoint-monitoring"] == {"production": True}
    assert config["iam-role-permission-boundary"] == {"permissionBoundaryRequired": True}
    assert config["required-tags"] == {"requiredTags": ["owner", "cost-center", "data-classification"]}
    assert config["sagemaker-instance-type-allowed"] == {"allowedInstanceTypes": []}
    # every key is one the rule's config schema declares (the CLI validates config against it)
    for name, entry in config.items():
        assert set(entry) <= set(RULES[name].config_schema.properties)


def test_the_pack_config_suppressions_silence_the_rule_under_the_cli(broken_plan_file):
    plan = Plan.load(broken_plan_file)
    settings = Settings(production=True, environment="prod")
    config = pack_config(settings, {"s3-bucket-sse-kms": [{"resource": "prod-scratch-bucket", "reason": REASON}]})
    rule = RULES["s3-bucket-sse-kms"]
    found: list = []
    resources = list(policy_resources(plan).values())
    rule.validate(StackValidationArgs(resources, config["s3-bucket-sse-kms"]), lambda m, u=None: found.append(u))
    assert found == []
    rule.validate(StackValidationArgs(resources, {}), lambda m, u=None: found.append(u))
    assert found == [next(r.urn for r in plan.resources if r.name == "prod-scratch-bucket")]


def test_the_pack_config_is_written_even_when_the_check_cannot_run(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app_with_check(), ["check", "prod", "--plan", "missing.json", "--pack-config", "p.json"])
    assert result.exit_code == 2 and result.stderr.startswith("--plan missing.json: cannot read the plan: ")
    assert json.loads((project_copy / "p.json").read_text())["prod-stateful-protected"] == {"production": True}


def test_bad_input_exits_2(broken_plan_file, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    app = app_with_check()
    wrong = runner.invoke(app, ["check", "dev", "--plan", str(broken_plan_file)])
    assert (wrong.exit_code, wrong.stderr) == (
        2, f"--plan {broken_plan_file}: is the plan of stack 'prod', not 'dev'\n")
    missing = runner.invoke(app, ["check", "qa"])
    assert (missing.exit_code, missing.stderr) == (
        2, "stacks/Pulumi.qa.yaml: no such stack file; stacks in this project: dev, prod, shared, staging\n")
    fmt = runner.invoke(app, ["check", "prod", "--format", "html"])
    assert (fmt.exit_code, fmt.stderr) == (2, "--format: 'html' is not supported; allowed: text, markdown\n")
    (tmp_path / "x.json").write_text("{}")
    unreadable = runner.invoke(app, ["check", "prod", "--plan", str(tmp_path / "x.json")])
    assert unreadable.exit_code == 2 and unreadable.stderr.startswith(f"--plan {tmp_path / 'x.json'}: cannot read")


def test_guardrails_config_section():
    assert GuardrailsConfig().model_dump() == {"allowed_instance_types": [], "suppressions": [],
                                               "accepted_stateful_changes": [], "monthly_budget_usd": None,
                                               "monthly_budget_enforcement": "advisory",
                                               "monthly_budget_alerts_percent": [80, 100]}
    typo = "'ml.m5.larg' is not a SageMaker instance type; did you mean 'ml.m5.large'"
    with pytest.raises(ValidationError, match=typo):
        GuardrailsConfig(allowed_instance_types=["ml.m5.larg"])
    with pytest.raises(ValidationError, match="extra"):
        SuppressionConfig(rule="s3-bucket-sse-kms", resource="b", reason=REASON, until="2027-01-01")
    for name, field in {**GuardrailsConfig.model_fields, **SuppressionConfig.model_fields,
                        **AcceptedStatefulChange.model_fields}.items():
        assert field.description, name
    assert "Default: any type botocore allows." in GuardrailsConfig.model_fields["allowed_instance_types"].description


def test_unmatched_suppressions_and_matching_by_name_or_urn():
    from emlops.review.check import Violation

    v = Violation("kms-key-rotation", "high", "mandatory", "urn:a::k", "k", "aws:kms/key:Key", "m", "r")
    warnings = apply_suppressions([v], [SuppressionConfig(rule="kms-key-rotation", resource="urn:a::k", reason=REASON),
                                        SuppressionConfig(rule="kms-key-rotation", resource="other", reason=REASON)])
    assert (v.suppressed, v.reason) == (True, REASON)
    assert warnings == ["suppression of kms-key-rotation for 'other' matches no violation; remove it from "
                        "guardrails.suppressions"]


def test_policy_pack_builds_the_pack_from_the_rules(monkeypatch):
    import pulumi_policy

    built = {}

    def fake_pack(name, policies, enforcement_level=None, description=None, **kwargs):
        # the real PolicyPack starts the analyzer's gRPC server and blocks; here the arguments are recorded
        built.update(name=name, policies=policies, enforcement_level=enforcement_level, description=description)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", fake_pack)
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built["name"] == "emlops" and built["policies"] == POLICIES
    assert built["enforcement_level"] == pulumi_policy.EnforcementLevel.MANDATORY
    assert all(isinstance(p, pulumi_policy.Policy) for p in POLICIES)
    # constructing the servicer validates every policy the way PolicyPack does before serving
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    info = _PolicyAnalyzerServicer("emlops", "0.0.1", POLICIES, pulumi_policy.EnforcementLevel.MANDATORY
                                   ).GetAnalyzerInfo(None, None)
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    assert all(p.remediation_steps and p.severity for p in info.policies)


def test_policy_pack_files():
    import yaml

    manifest = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python" and manifest["description"]
    requirements = (ROOT / "policy" / "requirements.txt").read_text().splitlines()
    assert "pulumi-policy>=1.21,<2" in requirements and "-e .." in requirements
    assert "emlops rules" in (ROOT / "policy" / "README.md").read_text()


def test_emlops_rules_lists_every_rule_as_text_and_markdown():
    text = runner.invoke(app_with_check(), ["rules"], env={"COLUMNS": "400"})
    assert text.exit_code == 0, text.output
    rows = [[cell.strip() for cell in re.split("[┃│]", line)] for line in text.stdout.splitlines()]
    assert rows[0] == ["rule", "kind", "enforcement", "severity", "what it requires"]
    assert [row[0] for row in rows[2:]] == [p.name for p in POLICIES]
    assert rows[2] == ["sagemaker-endpoint-config-kms", "resource", "mandatory", "high",
                       "SageMaker endpoint configurations encrypt their instances' volumes with a KMS key."]
    markdown = runner.invoke(app_with_check(), ["rules", "--format", "markdown"])
    assert markdown.exit_code == 0 and markdown.stdout == rules_markdown()
    rows = markdown.stdout.splitlines()
    assert rows[:2] == ["| rule | kind | enforcement | severity | what it requires |", "|---|---|---|---|---|"]
    assert rows[2] == ("| `sagemaker-endpoint-config-kms` | resource | mandatory | high | SageMaker endpoint "
                       "configurations encrypt their instances' volumes with a KMS key. |")
    assert len(rows) == 2 + len(POLICIES)
    bad = runner.invoke(app_with_check(), ["rules", "--format", "html"])
    assert (bad.exit_code, bad.stderr) == (2, "--format: 'html' is not supported; allowed: text, markdown\n")


def test_markdown_report_of_a_clean_stack():
    from emlops.review.check import CheckReport

    text = markdown_report(CheckReport(stack="dev", rules_evaluated=37, resources=10))
    assert text == ("### emlops check `dev`: ✅ passed\n\n"
                    "37 rules evaluated on 10 resources of dev: 0 mandatory violation(s), 0 advisory, 0 suppressed\n")
