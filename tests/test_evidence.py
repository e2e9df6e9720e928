"""`emlops report` and `emlops check --framework`: the evidence per control, per resource, with suppressions and
what nothing covers; a self-contained HTML page; the README's commands."""

from __future__ import annotations

import json
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from emlops.guardrails import RULE_NAMES
from emlops.guardrails.controls import rules_of
from emlops.guardrails.frameworks import FRAMEWORKS
from emlops.offline.preview import preview_stack
from emlops.program.stackfile import find_project, load_stack
from emlops.review.evidence import evidence, report_stack
from emlops.review.evidence_render import html_page, markdown
from tests.conftest import ROOT
from tests.test_check import add_guardrails, make_project, suppression

runner = CliRunner()
README = (ROOT / "README.md").read_text()
# a reason with characters HTML and markdown tables must escape
REASON = "scratch <data> is rebuilt nightly | accepted by the data owner & ML-123"


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> tuple[Path, Path]:
    """A project whose prod adds an unencrypted bucket and an unmonitored endpoint (tests/test_check.py), and the
    plan file of its prod."""
    project = make_project(tmp_path_factory.mktemp("broken"))
    path = project / "prod.json"
    preview_stack("prod", project=find_project(project)).plan.write(path)
    return project, path


@pytest.fixture
def suppressed(broken, monkeypatch) -> Path:
    """The broken project with the bucket's finding suppressed (with REASON); the working directory."""
    project, _ = broken
    stack = project / "stacks" / "Pulumi.prod.yaml"
    original = stack.read_text()
    add_guardrails(project, suppression(reason=json.dumps(REASON)))
    monkeypatch.chdir(project)
    yield project
    stack.write_text(original)


def _prod_evidence(shipped_plan, *frameworks: str):
    config = load_stack(find_project(ROOT), "prod")
    return evidence("prod", shipped_plan("prod"), config, list(frameworks), "an offline preview")


def test_shipped_prod_evidence_for_nist(shipped_plan):
    report = _prod_evidence(shipped_plan, "nist-800-53")
    [nist] = report.frameworks
    results = {}
    for control in nist.controls:
        results.setdefault(control.result, []).append(control.control)
    assert {result: len(ids) for result, ids in results.items()} == {
        "pass": 31, "nothing to judge": 2, "not covered": 23}
    assert results["nothing to judge"] == ["AC-17", "AC-21"]  # no EKS, no package group in prod
    assert list(report.rules) == list(rules_of("nist-800-53", RULE_NAMES))
    keys = [r.name for r in shipped_plan("prod").resources if r.type == "aws:kms/key:Key"]
    rotation = report.rules["kms-key-rotation"]
    assert [(v.name, v.result) for v in rotation.verdicts] == [(name, "pass") for name in keys] and len(keys) == 5
    assert report.open_mandatory == 0 and report.suppressed == [] and report.warnings == []
    sc28 = next(c for c in nist.controls if c.control == "SC-28(1)")
    assert sc28.title == "Protection of Information at Rest | Cryptographic Protection"
    assert "sagemaker-feature-group-online-store-encrypted" in sc28.rules and "eks-secrets-encryption" in sc28.rules


def test_rules_on_pipeline_steps_list_only_the_pipelines_with_such_steps(shipped_plan):
    """A pipeline without a transform (or processing, or gate) step is none of those rules' business: passing it
    would count evidence that says nothing."""
    rules = _prod_evidence(shipped_plan, "hipaa").rules
    judged = {name: [v.name for v in rules[name].verdicts] for name in (
        "sagemaker-batch-transform-vpc", "sagemaker-processing-steps-in-vpc", "sagemaker-processing-steps-encrypted")}
    assert judged == {
        "sagemaker-batch-transform-vpc": ["prod-churn-nightly-pipeline"],
        "sagemaker-processing-steps-in-vpc": [
            "prod-churn-retraining-pipeline", "prod-fraud-retraining-pipeline", "prod-doc-scoring-retraining-pipeline",
            "prod-customers-data-pipeline"],
        "sagemaker-processing-steps-encrypted": [
            "prod-churn-retraining-pipeline", "prod-fraud-retraining-pipeline", "prod-doc-scoring-retraining-pipeline",
            "prod-customers-data-pipeline"]}
    assert {v.result for name in judged for v in rules[name].verdicts} == {"pass"}
    quarantine = _prod_evidence(shipped_plan, "soc2").rules["data-pipeline-quarantine"]
    assert [(v.name, v.result) for v in quarantine.verdicts] == [("prod-customers-data-pipeline", "pass")]


def test_a_failure_and_a_suppression_reach_their_controls(broken, suppressed):
    report = report_stack("prod", broken[1])
    sse = report.rules["s3-bucket-sse-kms"]
    [scratch] = [v for v in sse.verdicts if v.name == "prod-scratch-bucket"]
    assert (scratch.result, scratch.reason, scratch.findings) == (
        "suppressed", REASON, ["bucket 'prod-scratch-bucket' has no SSE-KMS default encryption"])
    assert {v.result for v in sse.verdicts if v is not scratch} == {"pass"}
    monitoring = report.rules["sagemaker-prod-endpoint-monitoring"]
    assert [(v.name, v.result) for v in monitoring.verdicts if v.result != "pass"] == [
        ("prod-ranking-endpoint", "fail")]
    by_control = {(f.framework.name, c.control): c.result for f in report.frameworks for c in f.controls}
    assert by_control["soc2", "CC7.2"] == "fail"  # the unmonitored endpoint
    assert by_control["nist-800-53", "SC-13"] == "pass"  # only the suppressed bucket fails s3-bucket-sse-kms
    assert by_control["cis-aws", "1.4"] == "not covered"
    assert report.open_mandatory == 1 and [v.rule for v in report.suppressed] == ["s3-bucket-sse-kms"]
    text = markdown(report)
    assert ("| `s3-bucket-sse-kms` | prod-scratch-bucket (aws:s3/bucket:Bucket) | bucket 'prod-scratch-bucket' has "
            "no SSE-KMS default encryption | scratch <data> is rebuilt nightly \\| accepted by the data owner & "
            "ML-123 |") in text
    assert "| CC7.2 | System components monitored for anomalies | FAIL | `sagemaker-data-capture-enabled` (" in text
    page = html_page(report)
    assert REASON not in page
    assert "scratch &lt;data&gt; is rebuilt nightly | accepted by the data owner &amp; ML-123" in page


def test_a_stack_rule_that_names_no_subjects_is_reported_by_its_findings(shipped_plan):
    from types import SimpleNamespace

    from emlops.review.check import Violation
    from emlops.review.evidence import RuleEvidence, _verdicts

    plan = shipped_plan("prod")
    bucket = next(r for r in plan.resources if r.type == "aws:s3/bucket:Bucket")
    found = [Violation("new-stack-rule", "high", "mandatory", bucket.urn, bucket.name, bucket.type, "it is wrong", ""),
             Violation("new-stack-rule", "high", "mandatory", None, None, None, "the stack is wrong", "")]
    verdicts, complete = _verdicts(SimpleNamespace(name="new-stack-rule"), plan, found)
    assert not complete
    assert [(v.name, v.result, v.findings) for v in verdicts] == [
        (bucket.name, "fail", ["it is wrong"]), (None, "fail", ["the stack is wrong"])]
    rule = RuleEvidence("new-stack-rule", "A new rule.", "high", "mandatory", verdicts, complete)
    assert rule.result == "fail"
    assert RuleEvidence("new-stack-rule", "A new rule.", "high", "mandatory", [], False).result == "pass"


def test_the_report_is_the_same_every_time(shipped_plan):
    first, second = (_prod_evidence(shipped_plan, "hipaa", "cis-aws") for _ in range(2))
    assert markdown(first) == markdown(second) and html_page(first) == html_page(second)
    assert [f.framework.name for f in first.frameworks] == ["hipaa", "cis-aws"]


class _Page(HTMLParser):
    """Every tag, attribute and id of a page, and its text."""

    def __init__(self):
        super().__init__()
        self.tags, self.attributes, self.ids, self.text, self.open = set(), [], set(), [], []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]
        self.ids |= {value for name, value in attrs if name == "id"}
        if tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag

    def handle_data(self, data):
        self.text.append(data)


def test_emlops_report_prod_nist_html_is_readable_on_its_own(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["report", "prod", "--framework", "nist-800-53", "--format", "html"])
    assert result.exit_code == 0, result.output
    page = _Page()
    page.feed(result.stdout)
    page.close()
    assert page.open == []  # every element closed
    assert page.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead",
                         "tbody", "tr", "th", "td", "code", "span", "a", "br", "em", "details", "summary"}
    links = [value for tag, name, value in page.attributes if name in ("href", "src")]
    assert links and all(link.startswith("#") and link[1:] in page.ids for link in links)  # nothing outside
    text = " ".join(page.text)
    assert "Evidence report of stack prod: NIST SP 800-53 Rev. 5" in text
    assert "Scope: a selection of base controls and enhancements of the AC, AU, CA, CM, CP, IA, RA, SA, SC and " \
           "SI" in text
    assert "56 controls in scope: 33 evidenced by the rules here (31 pass, 0 fail, 2 with nothing to judge in this " \
           "stack); 23 not covered by any rule here." in text
    assert "Controls nothing here covers (23)" in text and "Least Privilege | Log Use of Privileged Functions" in text
    assert "SOC 2" not in text


def test_report_markdown_from_a_plan_file_to_an_output_file(broken, suppressed):
    result = runner.invoke(app, ["report", "prod", "--plan", str(broken[1]), "--framework", "soc2",
                                 "--output", "prod-soc2.md"])
    assert result.exit_code == 0, result.output
    assert result.stderr == "evidence report of prod written to prod-soc2.md\n"
    text = Path("prod-soc2.md").read_text()
    assert text.startswith("# Evidence report of stack prod: SOC 2 (2017 Trust Services Criteria, revised points of "
                           "focus 2022)\n\nThe guardrails of emlops (the rules `emlops check` and the policy pack run) "
                           "were evaluated on ")
    assert "from the plan file prod.json: 60 rules that evidence controls of the framework below; 1 open " \
           "mandatory finding(s), 1 suppressed." in text
    assert "### Controls nothing here covers (" in text and "| CC1.1 | Commitment to integrity and ethical values |" \
        in text
    assert "| prod-ranking-endpoint (aws:sagemaker/endpoint:Endpoint) | FAIL | endpoint 'prod-ranking' has no " \
           "monitoring schedule |" in text


def test_one_report_written_as_html_and_markdown_by_the_outputs_extensions(broken, suppressed):
    """One evaluation, two files: what the PR workflow uploads for each stack; each the same as the report of its
    format alone."""
    plan = ["report", "prod", "--plan", str(broken[1]), "--framework", "soc2"]
    result = runner.invoke(app, [*plan, "--output", "prod.html", "--output", "prod.md"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ("evidence report of prod written to prod.html\n"
                             "evidence report of prod written to prod.md\n")
    alone = {each: runner.invoke(app, [*plan, "--format", each]).stdout for each in ("html", "markdown")}
    assert Path("prod.html").read_text() == alone["html"] and alone["html"].startswith("<!DOCTYPE html>\n")
    assert Path("prod.md").read_text() == alone["markdown"] and alone["markdown"].startswith("# Evidence report")
    # --format says the format of every output, whatever its name
    assert runner.invoke(app, [*plan, "--format", "html", "--output", "report.txt"]).exit_code == 0
    assert Path("report.txt").read_text() == alone["html"]


@pytest.mark.parametrize("args, message", [
    (["--format", "pdf"], "--format: 'pdf' is not supported; allowed: markdown, html"),
    (["--plan", "{plan}", "--output", "prod.md", "--output", "prod.pdf"],
     "--output prod.pdf: name it .md or .html, or give --format markdown or html"),
    (["--framework", "sox"], "--framework: 'sox' is not a framework emlops maps its rules to; allowed: nist-800-53, "
                             "soc2, iso-27001, pci-dss, hipaa, cis-aws"),
    (["--plan", "{plan}", "--output", "missing/prod.md"], None),
])
def test_report_bad_input_is_one_line_and_exit_2(broken, suppressed, args, message):
    args = [a.replace("{plan}", str(broken[1])) for a in args]
    result = runner.invoke(app, ["report", "prod", *args])
    assert result.exit_code == 2
    if message is None:
        message = "--output missing/prod.md: cannot write the report: No such file or directory"
    assert result.stderr == message + "\n"


def test_report_on_another_stacks_plan_is_refused(broken, suppressed):
    result = runner.invoke(app, ["report", "dev", "--plan", str(broken[1])])
    assert result.exit_code == 2
    assert result.stderr == f"--plan {broken[1]}: is the plan of stack 'prod', not 'dev'\n"


def test_check_framework_runs_that_frameworks_rules_only(broken, suppressed):
    plan = str(broken[1])
    resources = len(json.loads(broken[1].read_text())["resources"])
    cis = runner.invoke(app, ["check", "prod", "--plan", plan, "--framework", "cis-aws", "--json", "cis.json"],
                        env={"COLUMNS": "250"})
    # neither broken rule is a CIS one, and the suppression of a rule that did not run is no warning
    assert cis.exit_code == 0, cis.output
    assert cis.stdout == (f"passed: 7 rules of cis-aws evaluated on {resources} resources of prod: 0 mandatory "
                          "violation(s), 0 advisory, 0 suppressed\n")
    report = json.loads(Path("cis.json").read_text())
    assert (report["framework"], report["rulesEvaluated"], report["violations"]) == ("cis-aws", 7, [])
    soc2 = runner.invoke(app, ["check", "prod", "--plan", plan, "--framework", "soc2"], env={"COLUMNS": "250"})
    assert soc2.exit_code == 1
    assert soc2.stdout.splitlines()[-1] == (f"FAILED: 60 rules of soc2 evaluated on {resources} resources of prod: "
                                            "1 mandatory violation(s), 0 advisory, 1 suppressed")
    bad = runner.invoke(app, ["check", "prod", "--framework", "NIST"])
    assert (bad.exit_code, bad.stderr) == (2, "--framework: 'NIST' is not a framework emlops maps its rules to; "
                                              "allowed: nist-800-53, soc2, iso-27001, pci-dss, hipaa, cis-aws\n")


def test_readme_evidence_commands_run_as_shown(project_copy, monkeypatch):
    [block] = [b for b in re.findall(r"```bash\n(.*?)```", README, flags=re.S) if "emlops report" in b]
    monkeypatch.chdir(project_copy)
    for line in block.strip().splitlines():
        command = shlex.split(line.split("#")[0])
        assert command[0] == "emlops", line
        result = runner.invoke(app, command[1:])
        assert result.exit_code == 0, (line, result.output)
    assert Path("prod-nist.html").read_text().startswith("<!DOCTYPE html>")
    assert Path("prod-evidence.md").read_text().count("\n## ") == len(FRAMEWORKS) + 2


def test_readme_frameworks_table_is_the_mapping():
    rows = [line for line in README.splitlines() if line.startswith("| `--framework ")]
    assert rows == [f"| `--framework {f.name}` | {f.title} | {len(rules_of(f.name, RULE_NAMES))} | "
                    f"{len(f.catalogue)} | {f.scope} |" for f in FRAMEWORKS.values()]
