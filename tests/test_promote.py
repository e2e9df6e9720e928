"""`emlops promote`: a shadow test's challenger becomes the champion, in the registry.

The package path runs against moto in the shared registry's account (prod's groups live there), with the
package helpers of the approve tests; the MLflow path against a real local MLflow store (sqlite, in the test's
folder), named with --mlflow-uri (a stack file may only name an https server, or http on this machine). The
stack files are the shipped ones in a scratch project, with a shadow test added to the model.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from mlflow import MlflowClient
from typer.testing import CliRunner

from emlops.cli.operations import Runtime, register
from tests.conftest import edit_stack
from tests.test_operations import (ACCOUNT, PACKAGE_REVIEW, REGISTRY_ACCOUNT, REGISTRY_CALLER, WHY,
                                   create_packages, lines, moto_in, status_of)

runner = CliRunner()
BUCKET = "s3://acme-ml-dev-mlflow"
PROMOTED_BY_PROD = f"promoted from the shadow test of stack prod with emlops by {REGISTRY_CALLER}"
NOW = datetime(2026, 11, 26, 18, 30, 5, tzinfo=timezone.utc)


@pytest.fixture
def tty() -> dict[str, bool]:
    """Whether the command sees a terminal (CliRunner's stdin never is one)."""
    return {"on": True}


@pytest.fixture
def cli(tty):
    app = typer.Typer()
    register(app, Runtime(sleep=lambda seconds: None, now=lambda: NOW, interactive=lambda: tty["on"]))
    return lambda *args, input=None: runner.invoke(app, ["promote", *args], input=input, env={"COLUMNS": "200"})


def with_package_shadow(project: Path) -> None:
    """prod's churn (the shared group 'churn') runs a shadow test of the group's newest pending package."""
    source = "          model_package_group: churn\n"
    edit_stack(project, "prod", source, f"{source}        shadow:\n          challenger: {{model_package_group: churn}}\n")


def with_mlflow_shadow(project: Path, challenger: str = "models:/churn@challenger") -> None:
    """dev's churn (models:/churn@champion) on an instance, with a shadow test of CHALLENGER."""
    edit_stack(project, "dev", "        serverless:\n          memory_mb: 2048\n          max_concurrency: 5\n",
               "        variants:\n          - {name: primary, instance_type: ml.m5.large}\n"
               f"        shadow:\n          challenger: {{mlflow: \"{challenger}\"}}\n")


@pytest.fixture
def registry_aws(monkeypatch, project_copy: Path):
    """moto in the shared registry's account, run from a scratch project whose prod churn has a shadow test."""
    with_package_shadow(project_copy)
    yield from moto_in(monkeypatch, project_copy, REGISTRY_ACCOUNT)


# ---------------------------------------------------------------- model package group: approve the challenger



def test_promote_approves_the_newest_pending_package_in_the_shared_registry(registry_aws, cli):
    create_packages("Approved", "PendingManualApproval", "PendingManualApproval")
    result = cli("prod", "churn", input="y\n")
    assert result.exit_code == 0, result.stderr
    out = lines(result.stdout)
    assert out[0] == "Shadow test of churn in stack prod: model package group churn of stack shared, champion churn/1"
    assert out[1].startswith("Model package churn/3 (PendingManualApproval, created ")
    assert out[2:] == [
        *PACKAGE_REVIEW,
        "Promote churn/3 to champion (approve it in stack shared)? [y/N]: y",
        f"Approved churn/3 as {REGISTRY_CALLER}",
        "Promoted churn/3: champion churn/1 → churn/3",
        "Next: `pulumi up -s prod` deploys churn/3; the shadow variant serves churn/2, the newest package still "
        "pending approval",
    ]
    assert result.stderr == ""
    assert [status_of(v) for v in (1, 2, 3)] == [("Approved", None), ("PendingManualApproval", None),
                                                  ("Approved", PROMOTED_BY_PROD)]


def test_promoting_the_last_pending_package_says_the_shadow_needs_a_new_challenger(registry_aws, cli, tty):
    create_packages("PendingManualApproval")
    tty["on"] = False  # CI: --yes, no question
    result = cli("prod", "churn", "--yes")
    assert result.exit_code == 0, result.stderr
    out = lines(result.stdout)
    assert out[0] == "Shadow test of churn in stack prod: model package group churn of stack shared, champion none"
    assert not any(line.startswith("Promote churn") for line in out)
    assert out[-3:] == [
        f"Approved churn/1 as {REGISTRY_CALLER}",
        "Promoted churn/1: champion none → churn/1",
        "Next: `pulumi up -s prod` deploys churn/1; no package of churn is pending approval now, so the shadow test "
        "needs a new challenger (a newly registered version) before the next deploy, or no shadow",
    ]
    assert status_of(1) == ("Approved", PROMOTED_BY_PROD)


def test_a_package_dry_run_shows_the_promotion_and_changes_nothing(registry_aws, cli, tty):
    create_packages("Approved", "PendingManualApproval", "PendingManualApproval")
    tty["on"] = False  # a dry run needs neither a terminal nor --yes
    result = cli("prod", "churn", "--dry-run")
    assert result.exit_code == 0, result.stderr
    out = lines(result.stdout)
    assert out[2:] == [*PACKAGE_REVIEW, "Dry run: would approve churn/3 in stack shared, the champion in place of "
                                        "churn/1; nothing changed"]
    assert [status_of(v)[0] for v in (1, 2, 3)] == ["Approved", "PendingManualApproval", "PendingManualApproval"]


def test_declining_a_package_promotion_changes_nothing(registry_aws, cli):
    create_packages("PendingManualApproval")
    result = cli("prod", "churn", input="n\n")
    assert result.exit_code == 1
    assert lines(result.stdout)[-1] == "Promote churn/1 to champion (approve it in stack shared)? [y/N]: n"
    assert result.stderr == "emlops promote: not promoted; churn/1 stays PendingManualApproval\n"
    assert status_of(1) == ("PendingManualApproval", None)


def test_promote_without_a_pending_package(registry_aws, cli):
    create_packages("Approved", "Rejected")
    result = cli("prod", "churn", "--yes")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "emlops promote: model package group 'churn' has no package waiting for approval\n"
    assert [status_of(v)[0] for v in (1, 2)] == ["Approved", "Rejected"]


def test_a_pending_package_older_than_the_champion_is_not_promoted(registry_aws, cli):
    """The deploy serves the newest Approved package: approving an older one would not change what it serves."""
    create_packages("Approved", "PendingManualApproval", "Approved")
    result = cli("prod", "churn", "--yes")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("emlops promote: churn/2, the newest package pending approval, is older than the champion "
                             "churn/3; stack prod deploys the newest Approved package, so approving churn/2 would not "
                             "make it the champion\n")
    assert status_of(2) == ("PendingManualApproval", None)


def test_a_package_without_its_report_is_promoted_only_with_a_reason(registry_aws, cli):
    create_packages("PendingManualApproval", metrics=False)
    problem = "warning: model package churn/1 has no evaluation report (ModelMetrics.ModelQuality.Statistics)"
    refused = cli("prod", "churn", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr == (f"emlops promote: {problem}\nemlops promote: not approving churn/1 without its "
                              "evaluation report; if it may be approved anyway, say why with --no-report-reason "
                              "(recorded in the approval)\n")
    assert status_of(1)[0] == "PendingManualApproval"

    promoted = cli("prod", "churn", "--yes", "--no-report-reason", WHY)
    assert promoted.exit_code == 0, promoted.stderr
    assert promoted.stderr == f"emlops promote: {problem}\n"
    assert status_of(1) == ("Approved", f"{PROMOTED_BY_PROD}; no evaluation report: {WHY}")


@pytest.fixture
def prod_aws(monkeypatch, project_copy: Path):
    """moto in prod's own account (not the registry's)."""
    with_package_shadow(project_copy)
    yield from moto_in(monkeypatch, project_copy, ACCOUNT)


def test_promoting_a_package_with_an_environments_credentials_is_refused(prod_aws, cli):
    result = cli("prod", "churn", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops promote: the AWS credentials are for account {ACCOUNT} but stack 'shared' is "
                             f"in {REGISTRY_ACCOUNT}; use credentials for {REGISTRY_ACCOUNT}\n")


@pytest.fixture
def refusing_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_aws_out_of_reach_is_one_line(monkeypatch, project_copy, cli, refusing_port):
    with_package_shadow(project_copy)
    monkeypatch.chdir(project_copy)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_MAX_ATTEMPTS": "1",
                        "AWS_CONFIG_FILE": str(project_copy / "no-aws-config"),
                        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{refusing_port}"}.items():
        monkeypatch.setenv(name, value)
    result = cli("prod", "churn", "--dry-run")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("emlops promote: EndpointConnectionError: Could not connect to the endpoint URL: "
                             f"\"http://127.0.0.1:{refusing_port}/\"\n")


# ---------------------------------------------------------------- MLflow: move the source's alias


@dataclass
class Store:
    uri: str
    client: MlflowClient

    def aliases(self) -> dict[str, int]:
        return dict(self.client.get_registered_model("churn").aliases)

    def tags(self, version: int) -> dict[str, str]:
        return dict(self.client.get_model_version("churn", str(version)).tags)


@pytest.fixture
def store(tmp_path: Path, new_mlflow_store, project_copy: Path, monkeypatch) -> Store:
    """Registered model churn: versions 1 and 2 from runs with metrics, champion 1, challenger 2; dev's churn
    runs a shadow test of models:/churn@challenger; the operator is MLflow user alice."""
    with_mlflow_shadow(project_copy)
    monkeypatch.chdir(project_copy)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    uri = new_mlflow_store(tmp_path)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("churn-training", artifact_location=f"{BUCKET}/1")
    client.create_registered_model("churn")
    for number, (auc, log_loss) in enumerate(((0.91, 0.2871), (0.9342, 0.25)), start=1):
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, "auc", auc)
        client.log_metric(run, "log_loss", log_loss)
        client.create_model_version("churn", source=f"{BUCKET}/churn/v{number}/model", run_id=run)
    client.set_registered_model_alias("churn", "champion", 1)
    client.set_registered_model_alias("churn", "challenger", 2)
    return Store(uri, client)


def header(store: Store) -> list[str]:
    return [f"Shadow test of churn in stack dev: registered model 'churn', MLflow at {store.uri}",
            "Champion:   models:/churn@champion, version 1",
            f"Challenger: models:/churn@challenger, version 2 ({BUCKET}/churn/v2/model/)",
            "Run metrics",
            " metric   ┃ champion (version 1) ┃ challenger (version 2)",
            "━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━",
            " auc      │                 0.91 │                 0.9342",
            " log_loss │               0.2871 │                   0.25"]


PROMOTION_TAGS = {"emlops.promoted_from": "models:/churn@challenger", "emlops.promoted_to": "models:/churn@champion",
                  "emlops.promoted_in_stack": "dev", "emlops.promoted_by": "alice",
                  "emlops.promoted_at": "2026-11-26T18:30:05Z", "emlops.promoted_in_place_of": "1"}


def test_promote_moves_the_champion_alias_to_the_challengers_version_and_tags_it(store, cli):
    result = cli("dev", "churn", "--mlflow-uri", store.uri, input="y\n")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        *header(store),
        "Move models:/churn@champion from version 1 to version 2 (the champion of stack dev)? [y/N]: y",
        "Promoted models:/churn@challenger: models:/churn@champion version 1 → version 2, by alice",
        "Next: `pulumi up -s dev` deploys version 2; models:/churn@challenger names it too, so the shadow variant "
        "would serve the champion: move the challenger alias to a new version (or drop shadow) before the next deploy",
    ]
    assert result.stderr == ""
    assert store.aliases() == {"champion": 2, "challenger": 2}
    assert store.tags(2) == PROMOTION_TAGS
    assert store.tags(1) == {}


def test_a_challenger_that_is_the_champion_already_is_left_alone(store, cli):
    store.client.set_registered_model_alias("churn", "champion", 2)
    result = cli("dev", "churn", "--mlflow-uri", store.uri, "--yes")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [
        f"Shadow test of churn in stack dev: registered model 'churn', MLflow at {store.uri}",
        "Champion:   models:/churn@champion, version 2",
        "Challenger: models:/churn@challenger, version 2",
        "models:/churn@challenger is version 2, which models:/churn@champion already names: nothing to promote",
    ]
    assert store.aliases() == {"champion": 2, "challenger": 2}
    assert store.tags(2) == {}


def test_an_mlflow_dry_run_shows_the_move_and_changes_nothing(store, cli, tty):
    tty["on"] = False
    result = cli("dev", "churn", "--mlflow-uri", store.uri, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [*header(store), "Dry run: would move models:/churn@champion from version 1 to "
                                                    "version 2 and tag version 2 as promoted; nothing changed"]
    assert store.aliases() == {"champion": 1, "challenger": 2}
    assert store.tags(2) == {}


def test_declining_an_mlflow_promotion_changes_nothing(store, cli):
    result = cli("dev", "churn", "--mlflow-uri", store.uri, input="n\n")
    assert result.exit_code == 1
    assert result.stderr == "emlops promote: not promoted; models:/churn@champion stays at version 1\n"
    assert store.aliases() == {"champion": 1, "challenger": 2}
    assert store.tags(2) == {}


def test_a_first_champion_and_a_pinned_challenger(store, cli, project_copy):
    """No version is champion yet, and the shadow test names version 1 itself."""
    store.client.delete_registered_model_alias("churn", "champion")
    edit_stack(project_copy, "dev", "models:/churn@challenger", "models:/churn/1")
    result = cli("dev", "churn", "--mlflow-uri", store.uri, "--yes")
    assert result.exit_code == 0, result.stderr
    out = lines(result.stdout)
    assert out[1:4] == ["Champion:   models:/churn@champion, none",
                        f"Challenger: models:/churn/1, version 1 ({BUCKET}/churn/v1/model/)",
                        "Run metrics"]
    assert out[4] == " metric   ┃ champion ┃ challenger (version 1)"
    assert out[-2:] == [
        "Promoted models:/churn/1: models:/churn@champion none → version 1, by alice",
        "Next: `pulumi up -s dev` deploys version 1; models:/churn/1 names it too, so the shadow variant would serve "
        "the champion: name a new challenger in shadow.challenger (or drop shadow) before the next deploy",
    ]
    assert store.aliases() == {"champion": 1, "challenger": 2}
    assert store.tags(1) == {**PROMOTION_TAGS, "emlops.promoted_from": "models:/churn/1",
                             "emlops.promoted_in_place_of": "none"}


def test_a_challenger_whose_run_cannot_be_read_is_promoted_with_a_warning(store, cli, project_copy):
    lost_run = "0123456789abcdef0123456789abcdef"
    store.client.create_model_version("churn", source=f"{BUCKET}/churn/v3/model", run_id=lost_run)
    edit_stack(project_copy, "dev", "models:/churn@challenger", "models:/churn/3")
    result = cli("dev", "churn", "--mlflow-uri", store.uri, "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (f"emlops promote: warning: the run of version 3 ({lost_run}) cannot be read: Run with "
                             f"id={lost_run} not found\n")
    assert " log_loss │               0.2871 │" in lines(result.stdout)
    assert store.aliases()["champion"] == 3


MLFLOW_ERRORS = {
    "the challenger alias does not exist": (
        lambda store: store.client.delete_registered_model_alias("churn", "challenger"),
        "model 'churn': models:/churn@challenger: registered model 'churn' has no alias 'challenger'"),
    "the registered model does not exist": (
        lambda store: store.client.delete_registered_model("churn"),
        "model 'churn': models:/churn@challenger: no registered model named 'churn'"),
    "the challenger is not in S3": (
        lambda store: (store.client.create_model_version("churn", source="/home/ds/churn/model", run_id=None),
                       store.client.set_registered_model_alias("churn", "challenger", 3)),
        "model 'churn': models:/churn/3: version 3 is stored at /home/ds/churn/model, not in S3; SageMaker can only "
        "load models from S3"),
}


@pytest.mark.parametrize("change, message", MLFLOW_ERRORS.values(), ids=MLFLOW_ERRORS.keys())
def test_what_mlflow_cannot_promote_is_one_line(store, cli, change, message):
    change(store)
    result = cli("dev", "churn", "--mlflow-uri", store.uri, "--yes")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"emlops promote: {message}\n"
    if "no registered model" not in message:
        assert store.aliases()["champion"] == 1


def test_the_stacks_tracking_server_out_of_reach_is_one_line(project_copy, monkeypatch, cli, refusing_port):
    """Without --mlflow-uri the command uses the stack's registry.mlflow_tracking_uri, and gives up at once."""
    with_mlflow_shadow(project_copy)
    edit_stack(project_copy, "dev", "mlflow_tracking_uri: https://mlflow.dev.ml.example.com",
               f"mlflow_tracking_uri: http://127.0.0.1:{refusing_port}")
    monkeypatch.chdir(project_copy)
    result = cli("dev", "churn", "--yes")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"emlops promote: cannot reach the MLflow server at http://127.0.0.1:{refusing_port} "
                             "(connection refused)\n")


def test_credentials_in_the_tracking_uri_are_never_shown(store, cli, refusing_port):
    result = cli("dev", "churn", "--mlflow-uri", f"http://ci:s3cret@127.0.0.1:{refusing_port}/", "--yes")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"emlops promote: cannot reach the MLflow server at http://127.0.0.1:{refusing_port}/ "
                             "(connection refused)\n")


def test_a_sagemaker_tracking_server_is_reached_through_the_plugin_and_its_failure_is_one_line(
        store, cli, monkeypatch, refusing_port):
    """sagemaker-mlflow signs requests for MLflow's global tracking URI, not the client's: without it set to the
    ARN, the plugin raised IndexError. Its custom endpoint (a local port that refuses) stands for the server."""
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/dev-tracking"
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_CONFIG_FILE": "no-aws-config",
                        "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": f"http://127.0.0.1:{refusing_port}"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = cli("dev", "churn", "--mlflow-uri", arn, "--yes")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(f"emlops promote: model 'churn': models:/churn@challenger: MLflow at {arn} "
                                    f"failed: API request to http://127.0.0.1:{refusing_port}/api/2.0/mlflow/")
    assert result.stderr.endswith("Connection refused\"))\n") and result.stderr.count("\n") == 1
    assert "MLFLOW_TRACKING_URI" not in os.environ


# ---------------------------------------------------------------- what the stack file says


def test_what_cannot_be_promoted_by_the_stack_file_is_refused(project_copy, monkeypatch, cli, tty):
    with_mlflow_shadow(project_copy)
    with_package_shadow(project_copy)
    monkeypatch.chdir(project_copy)
    refused = {
        ("nope", "churn"): "stacks/Pulumi.nope.yaml: no such stack file; stacks in this project: dev, prod, shared, "
                           "staging",
        ("prod", "chrun"): "emlops promote: stack 'prod' has no model 'chrun'; did you mean 'churn'? models: churn, "
                           "fraud, doc-scoring",
        ("prod", "fraud"): "emlops promote: model 'fraud' of stack 'prod' has no shadow test (shadow.challenger), so "
                           "no challenger to promote",
        ("dev", "churn", "--no-report-reason", WHY): "emlops promote: --no-report-reason is for a challenger in a model "
                                                     "package group; churn's is models:/churn@challenger",
        ("prod", "churn", "--mlflow-uri", "sqlite:///mlflow.db"): "emlops promote: --mlflow-uri is for an MLflow "
                                                                  "challenger; churn's is the newest package pending "
                                                                  "approval in model package group 'churn'",
        ("prod", "churn", "--no-report-reason", "fine"): "emlops promote: --no-report-reason: say why the version may "
                                                         "be approved without an evaluation report, and who decided "
                                                         "(5 words or more)",
    }
    for args, message in refused.items():
        result = cli(*args, "--yes")
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", message + "\n"), args
    tty["on"] = False
    for stack in ("dev", "prod"):
        result = cli(stack, "churn")
        assert (result.exit_code, result.stdout) == (2, "")
        assert result.stderr == ("emlops promote: no terminal to confirm the promotion on (stdin is not a TTY); review "
                                 "it in a terminal or with --dry-run, or promote without asking with --yes\n")
