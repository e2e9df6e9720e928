"""The PR comment (emlops pr-comment) and the review commands: diff, graph, pr-comment."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from emlops.cli.review import register
from emlops.review.comment import MARKER, build_comment
from emlops.offline.preview import preview_stack
from tests.conftest import ROOT

runner = CliRunner()
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"


def review_app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    register(app)
    return app


def check_report(stack: str, violations: list[dict]) -> dict:
    return {"schema": "emlops.check/v1", "stack": stack, "rulesEvaluated": 34,
            "mandatoryViolations": sum(v["enforcement"] == "mandatory" and not v["suppressed"] for v in violations),
            "violations": violations}


def violation(rule: str, enforcement: str, name: str | None, suppressed: bool = False) -> dict:
    return {"rule": rule, "severity": "high", "enforcement": enforcement, "urn": None, "name": name,
            "type": CONFIG if name else None, "message": f"{rule} message", "remediation": f"fix {rule}",
            "suppressed": suppressed, "reason": "accepted by security (SEC-12)" if suppressed else None}


@pytest.fixture
def dirs(tmp_path: Path, shipped_plan) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    base.mkdir()
    head.mkdir()
    for stack in ("prod", "staging"):
        shipped_plan(stack).write(base / f"{stack}.json")
        shipped_plan(stack).write(head / f"{stack}.json")
    return base, head


def test_comment_for_a_dev_memory_change(project_copy, shipped_plan, dirs):
    base, head = dirs
    path = project_copy / "stacks" / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("memory_mb: 2048", "memory_mb: 3072"))
    shipped_plan("dev").write(base / "dev.json")
    preview_stack("dev", start=project_copy).plan.write(head / "dev.json")
    (head / "dev.check.json").write_text(json.dumps(check_report("dev", [
        violation("sagemaker-endpoint-config-kms", "mandatory", "dev-churn-config"),
        violation("required-tags", "advisory", None),
        violation("endpoint-min-instances", "mandatory", "dev-churn-endpoint", suppressed=True),
    ])))

    comment = build_comment(base, head)
    lines = comment.splitlines()
    assert lines[:6] == [
        MARKER, "## emlops preview", "",
        "| stack | + add | ~ change | - delete | ± replace | policies |", "|---|---|---|---|---|---|",
        "| `dev` | 0 | 1 | 0 | 1 | ❌ 1 mandatory |",
    ]
    assert "### `dev`" in lines
    assert "**0** to add (+), **1** to change (~), **0** to delete (-), **1** to replace (±)" in lines
    assert "#### ModelEndpoint churn" in lines
    assert ("  - `productionVariants[0].serverlessConfig.memorySizeInMb`: `2048` → `3072` **(forces replacement)**"
            in lines)
    assert "- `~` **update** `dev-churn-endpoint` (aws:sagemaker/endpoint:Endpoint)" in lines
    assert ("❌ **Policies**: 34 rules evaluated, 1 mandatory violation, 1 advisory, 1 suppressed" in lines)
    assert ("- **sagemaker-endpoint-config-kms** (high) `dev-churn-config`: sagemaker-endpoint-config-kms message"
            " — fix sagemaker-endpoint-config-kms") in lines
    assert "- endpoint-min-instances `dev-churn-endpoint`: accepted by security (SEC-12)" in lines
    mermaid = comment.index("```mermaid\nflowchart LR\n")
    assert comment.rindex("<details><summary>Diagram</summary>", 0, mermaid) > comment.index("### `dev`")
    assert comment.index("```\n\n</details>", mermaid) > mermaid
    assert '    n_dev_churn_endpoint["dev-churn-endpoint<br/>endpoint"]' in lines
    # unchanged stacks: one line, no diagram
    assert lines[-1] == "No changes: `prod`, `staging`"
    assert comment.count("```mermaid") == 1 and len(comment) < 65536


def test_new_and_removed_stacks_and_unchanged_verdicts(dirs, shipped_plan):
    base, head = dirs
    (head / "staging.json").unlink()
    shipped_plan("dev").write(head / "dev.json")
    (head / "prod.check.json").write_text(json.dumps(check_report("prod", [violation("x", "mandatory", None)])))
    comment = build_comment(base, head)
    lines = comment.splitlines()
    dev, staging = (sum(r.custom for r in shipped_plan(s).resources) for s in ("dev", "staging"))
    assert lines[5:7] == [f"| `dev` | {dev} | 0 | 0 | 0 | not checked |",
                          f"| `staging` | 0 | 0 | {staging} | 0 | not checked |"]
    assert "### `dev` (new stack)" in lines and "### `staging` (stack removed)" in lines
    assert comment.index("### `dev`") < comment.index("### `staging`")
    assert "<details><summary>Changes</summary>" in lines  # dozens of additions are collapsed
    assert lines[-1] == "No changes: `prod` (❌ 1 mandatory violation)"
    assert comment.count("```mermaid") == 1  # the removed stack has nothing to draw
    assert ("**⚠ Stateful resources deleted or replaced: `staging-logs-key`, `staging-network-flow-logs`, "
            "`staging-data-key`, ") in comment


def test_a_long_comment_is_cut_to_the_limit_with_a_note(dirs, shipped_plan):
    base, head = dirs
    # two new stacks, dev and staging (prod's diagram with a new staging would not fit GitHub's limit at all)
    shipped_plan("dev").write(head / "dev.json")
    (base / "staging.json").unlink()
    full = build_comment(base, head)
    assert full.count("```mermaid") == 2
    short = build_comment(base, head, limit=20000)
    assert len(short) <= 20000 and "```mermaid" not in short
    assert "*Diagram left out to fit GitHub's comment limit; run `emlops graph dev`.*" in short
    assert "*… diff cut to fit GitHub's comment limit; run `emlops diff` for all of it.*" in short
    assert short.count("<details>") == short.count("</details>") and short.startswith(MARKER)
    tiny = build_comment(base, head, limit=1000)
    assert len(tiny) <= 1000 and tiny.endswith("*… comment cut to fit GitHub's limit.*\n")
    assert tiny.count("<details>") == tiny.count("</details>")


# -- the commands ------------------------------------------------------------------------------------


def test_diff_command_prints_the_diff(tmp_path, shipped_plan):
    plan = shipped_plan("prod")
    changed = copy.deepcopy(plan)
    changed.get("prod-fraud-config").inputs["productionVariants"][0]["instanceType"] = "ml.c5.2xlarge"
    plan.write(tmp_path / "base.json")
    changed.write(tmp_path / "head.json")
    result = runner.invoke(review_app(), ["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json")])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("**prod**: +0 added, ~1 changed, -0 removed, ±1 replaced\n")
    text = runner.invoke(review_app(), ["diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"),
                                        "--format", "text"])
    assert text.exit_code == 0 and "instanceType: ml.c5.xlarge -> ml.c5.2xlarge (forces replacement)" in text.stdout


@pytest.mark.parametrize("content, message", [
    (None, "{path}: no such file"),
    ('{"schema": "emlops.check/v1", "violations": []}',
     "{path}: not an emlops.plan/v1 plan (schema is 'emlops.check/v1')"),
    ("not json", "{path}: not JSON (JSONDecodeError: Expecting value: line 1 column 1 (char 0))"),
    ('{"schema": "emlops.plan/v1", "stack": "x"}',
     "{path}: not an emlops.plan/v1 plan (missing or malformed 'project')"),
])
def test_diff_command_rejects_bad_files_in_one_line(tmp_path, shipped_plan, content, message):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    shipped_plan("dev").write(good)
    if content is not None:
        bad.write_text(content)
    result = runner.invoke(review_app(), ["diff", str(good), str(bad)])
    assert result.exit_code == 2
    assert result.stderr == "emlops diff: " + message.format(path=bad) + "\n" and result.stdout == ""


def test_diff_command_rejects_an_unknown_format(tmp_path, shipped_plan):
    shipped_plan("dev").write(tmp_path / "p.json")
    plan = str(tmp_path / "p.json")
    result = runner.invoke(review_app(), ["diff", plan, plan, "--format", "html"])
    assert result.exit_code == 2
    assert result.stderr == "emlops diff: --format: 'html' is not supported; allowed: markdown, text\n"


def test_graph_command_from_a_plan_file_and_from_a_stack(tmp_path, monkeypatch, shipped_plan):
    shipped_plan("dev").write(tmp_path / "dev.json")
    result = runner.invoke(review_app(), ["graph", "--plan", str(tmp_path / "dev.json"), "--format", "dot"])
    assert result.exit_code == 0 and result.stdout.startswith('digraph "emlops-dev" {\n')
    monkeypatch.chdir(ROOT)
    result = runner.invoke(review_app(), ["graph", "dev"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("flowchart LR\n") and "n_dev_churn_endpoint" in result.stdout


def test_graph_command_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    app = review_app()
    unknown = runner.invoke(app, ["graph", "qa"])
    assert unknown.exit_code == 2
    assert unknown.stderr == "stacks/Pulumi.qa.yaml: no such stack file; stacks in this project: dev, prod, shared, staging\n"
    neither = runner.invoke(app, ["graph"])
    assert neither.exit_code == 2 and neither.stderr == "emlops graph: give either a STACK or --plan PATH (not both)\n"
    missing = runner.invoke(app, ["graph", "--plan", str(tmp_path / "none.json")])
    assert missing.exit_code == 2 and missing.stderr == f"emlops graph: {tmp_path / 'none.json'}: no such file\n"
    fmt = runner.invoke(app, ["graph", "dev", "--format", "png"])
    assert fmt.exit_code == 2
    assert fmt.stderr == "emlops graph: --format: 'png' is not supported; allowed: mermaid, dot\n"


def test_pr_comment_command_writes_the_comment(dirs, tmp_path):
    base, head = dirs
    out = tmp_path / "comment.md"
    result = runner.invoke(review_app(), ["pr-comment", "--base", str(base), "--head", str(head), "--output", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text() == f"{MARKER}\n## emlops preview\n\nNo changes: `prod`, `staging`\n"
    printed = runner.invoke(review_app(), ["pr-comment", "--base", str(base), "--head", str(head)])
    assert printed.stdout == out.read_text()


def test_pr_comment_command_errors(dirs, tmp_path):
    base, head = dirs
    missing = runner.invoke(review_app(), ["pr-comment", "--base", str(tmp_path / "nope"), "--head", str(head)])
    assert missing.exit_code == 2 and missing.stderr == f"emlops pr-comment: {tmp_path / 'nope'}: not a directory\n"
    (head / "prod.check.json").write_text('{"schema": "other"}')
    bad = runner.invoke(review_app(), ["pr-comment", "--base", str(base), "--head", str(head)])
    assert bad.exit_code == 2
    assert bad.stderr == f"emlops pr-comment: {head / 'prod.check.json'}: not an emlops.check/v1 report\n"


def test_graph_command_reports_internal_errors_in_one_line(monkeypatch):
    import emlops.offline.preview

    def broken(stack):
        raise KeyError("boom")

    monkeypatch.setattr(emlops.offline.preview, "preview_stack", broken)
    result = runner.invoke(review_app(), ["graph", "dev"])
    assert result.exit_code == 1
    assert result.stderr == "emlops: internal error while previewing dev: KeyError: 'boom'\n"
