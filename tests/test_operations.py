"""`emlops retrain` and `emlops approve` against moto (SageMaker, S3, STS in the prod stack's account).

moto 5.2.5 limits what these tests can take from it (each use of pytest-mock below works around one):
- a pipeline execution is `Succeeded` the moment it starts (never `Executing`, never `Failed`), so the
  polling, failure, throttling and timeout paths patch `emlops.cli.operations.read_execution` (the status
  source) only;
- `ListPipelineExecutionSteps` is not implemented (raises NotImplementedError), so the paths that use moto's
  own execution status patch `emlops.cli.operations.list_steps` only;
- a missing pipeline is a ValidationException "Could not find pipeline ..." (AWS: ResourceNotFound);
- moto cannot be interrupted mid-request, so Ctrl-C while starting patches `emlops.cli.operations.start_execution`
  (raising KeyboardInterrupt before or after moto started the execution).
The terminal is the Runtime's `interactive` (the `tty` fixture): CliRunner's stdin is never a TTY.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
import typer
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from emlops.cli import approval, operations, targets
from emlops.cli.operations import ExecutionState, Runtime, register

ACCOUNT, REGION = "333333333333", "eu-west-1"  # stacks/Pulumi.prod.yaml
PIPELINE = "prod-churn-retraining"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
# prod's package groups live in the shared registry (stacks/Pulumi.shared.yaml), where approvals happen
REGISTRY_ACCOUNT = "444444444444"
REGISTRY_CALLER = f"arn:aws:sts::{REGISTRY_ACCOUNT}:user/moto"
REPORT_URI = "s3://prod-churn-evaluation/churn/3/evaluation.json"
REPORT = {
    "version": 0.0,
    "binary_classification_metrics": {
        "accuracy": {"value": 0.9132, "standard_deviation": 0.0041},
        "auc": {"value": 0.95, "standard_deviation": 0.002},
        "recall": {"value": 0.81},
        "receiver_operating_characteristic_curve": {"false_positive_rates": [0, 1]},
    },
    "dataset": {"item_count": 5000},
}
runner = CliRunner()


class FakeClock:
    """Time that moves only when the command sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tty() -> dict[str, bool]:
    """Whether the commands see a terminal (set tty["on"] = False for CI, a pipe, cron)."""
    return {"on": True}


@pytest.fixture
def cli(clock, tty):
    app = typer.Typer()
    register(app, Runtime(sleep=clock.sleep, clock=lambda: clock.now,
                          now=lambda: datetime(2026, 11, 26, 18, 30, 5, tzinfo=timezone.utc),
                          interactive=lambda: tty["on"]))
    return lambda *args, input=None: runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})


@pytest.fixture
def aws(monkeypatch, project_copy: Path):
    """moto in the prod stack's account, fake credentials, run from a scratch project."""
    yield from moto_in(monkeypatch, project_copy, ACCOUNT)


@pytest.fixture
def registry_aws(monkeypatch, project_copy: Path):
    """moto in the shared registry's account (approvals), fake credentials, run from a scratch project."""
    yield from moto_in(monkeypatch, project_copy, REGISTRY_ACCOUNT)


def moto_in(monkeypatch, project_copy: Path, account: str):
    monkeypatch.chdir(project_copy)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(project_copy / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(project_copy / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
    with mock_aws():
        yield


def sagemaker():
    return boto3.client("sagemaker", region_name=REGION)


def create_pipeline(name: str = PIPELINE) -> None:
    # A minimal pipeline definition: test data for moto, which stores it without running it.
    definition = {"Version": "2020-12-01", "Parameters": [],
                  "Steps": [{"Name": "Train", "Type": "Training", "Arguments": {}}]}
    sagemaker().create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition),
                                RoleArn=f"arn:aws:iam::{ACCOUNT}:role/prod-churn-retraining")


def step(name: str, status: str, reason: str = "") -> dict:
    return {"StepName": name, "StepStatus": status, **({"FailureReason": reason} if reason else {})}


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


# ---------------------------------------------------------------- retrain

def test_moto_runs_no_pipeline_and_lists_no_steps(aws):
    create_pipeline()
    arn = sagemaker().start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    assert sagemaker().describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Succeeded"
    with pytest.raises(NotImplementedError):
        operations.list_steps(sagemaker(), arn)


def test_retrain_starts_the_pipeline_and_reports_success(aws, cli, clock, mocker):
    create_pipeline()
    mocker.patch.object(operations, "list_steps", return_value=[step("Preprocess", "Succeeded"),
                                                                 step("Train", "Succeeded")])
    result = cli("retrain", "prod", "churn", "--poll-seconds", "5")
    assert result.exit_code == 0, result.stderr
    arn = sagemaker().list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"][0][
        "PipelineExecutionArn"]
    assert lines(result.stdout) == [
        f"Started {PIPELINE} execution emlops-20261126-183005",
        f"  {arn}",
        "  step Preprocess: Succeeded",
        "  step Train: Succeeded",
        f"{PIPELINE} execution emlops-20261126-183005 Succeeded",
    ]
    assert result.stderr == ""
    described = sagemaker().describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionDisplayName"] == "emlops-20261126-183005"
    assert clock.sleeps == []  # terminal at the first poll


def test_retrain_prints_each_step_status_change_once_while_polling(aws, cli, clock, mocker):
    create_pipeline()
    states = [
        ExecutionState("Executing", "", [step("Preprocess", "Executing")]),
        ExecutionState("Executing", "", [step("Preprocess", "Executing")]),
        ExecutionState("Executing", "", [step("Preprocess", "Succeeded"), step("Train", "Starting")]),
        ExecutionState("Succeeded", "", [step("Preprocess", "Succeeded"), step("Train", "Succeeded")]),
    ]
    read = mocker.patch.object(operations, "read_execution", side_effect=states)
    result = cli("retrain", "prod", "churn", "--poll-seconds", "5")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout)[2:] == [
        "  step Preprocess: Executing",
        "  step Preprocess: Succeeded",
        "  step Train: Starting",
        "  step Train: Succeeded",
        f"{PIPELINE} execution emlops-20261126-183005 Succeeded",
    ]
    assert read.call_count == 4 and clock.sleeps == [5.0, 5.0, 5.0]


def test_retrain_fails_with_the_failure_reason(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "read_execution", side_effect=[
        ExecutionState("Executing", "", [step("Train", "Executing")]),
        ExecutionState("Failed", "", [step("Train", "Failed", "AlgorithmError: out of memory")]),
    ])
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert lines(result.stdout)[2:] == ["  step Train: Executing", "  step Train: Failed (AlgorithmError: out of memory)"]
    assert result.stderr == (f"emlops retrain: {PIPELINE} execution emlops-20261126-183005 Failed: "
                             "step Train: AlgorithmError: out of memory\n")


def test_retrain_stopped_execution_uses_the_execution_failure_reason(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "read_execution",
                        return_value=ExecutionState("Stopped", "Stopped by user", []))
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert result.stderr == f"emlops retrain: {PIPELINE} execution emlops-20261126-183005 Stopped: Stopped by user\n"


def test_retrain_stops_following_after_the_timeout(aws, cli, clock, mocker):
    create_pipeline()
    mocker.patch.object(operations, "read_execution", return_value=ExecutionState("Executing", "", []))
    result = cli("retrain", "prod", "churn", "--poll-seconds", "60", "--timeout-minutes", "3")
    assert result.exit_code == 3
    arn = lines(result.stdout)[1].strip()
    assert result.stderr == (f"emlops retrain: stopped following {PIPELINE} execution emlops-20261126-183005 "
                             f"(still Executing after 3m 00s); it keeps running in SageMaker: {arn}\n")
    assert clock.sleeps == [60.0, 60.0, 60.0]


def throttled(code: str = "ThrottlingException", operation: str = "DescribePipelineExecution") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, operation)


def test_retrain_keeps_following_through_throttled_status_checks(aws, cli, clock, mocker):
    create_pipeline()
    read = mocker.patch.object(operations, "read_execution", side_effect=[
        ExecutionState("Executing", "", [step("Train", "Executing")]),
        throttled(), throttled("TooManyRequestsException", "ListPipelineExecutionSteps"),
        ExecutionState("Succeeded", "", [step("Train", "Succeeded")]),
    ])
    result = cli("retrain", "prod", "churn", "--poll-seconds", "5")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert lines(result.stdout)[2:] == ["  step Train: Executing", "  step Train: Succeeded",
                                        f"{PIPELINE} execution emlops-20261126-183005 Succeeded"]
    assert read.call_count == 4
    assert clock.sleeps == [5.0, 5.0, 10.0]  # the poll, then a pause that doubles while throttled


def test_retrain_stops_following_when_throttling_does_not_end(aws, cli, clock, mocker):
    create_pipeline()
    mocker.patch.object(operations, "read_execution", side_effect=throttled())
    result = cli("retrain", "prod", "churn", "--poll-seconds", "30")
    assert result.exit_code == 3
    arn = lines(result.stdout)[1].strip()
    assert result.stderr == (f"emlops retrain: stopped following {PIPELINE} execution emlops-20261126-183005 "
                             "(9 status checks in a row throttled: DescribePipelineExecution failed: "
                             f"ThrottlingException: Rate exceeded); it keeps running in SageMaker: {arn}\n")
    assert clock.sleeps == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0, 300.0, 300.0]


def test_retrain_stops_following_on_an_aws_error_and_says_the_execution_keeps_running(aws, cli, mocker):
    create_pipeline()
    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized\nto describe"}},
                         "DescribePipelineExecution")
    mocker.patch.object(operations, "read_execution", side_effect=denied)
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 3
    arn = lines(result.stdout)[1].strip()
    assert result.stderr == (f"emlops retrain: stopped following {PIPELINE} execution emlops-20261126-183005 "
                             "(access denied calling DescribePipelineExecution: AccessDeniedException: not authorized "
                             f"to describe); it keeps running in SageMaker: {arn}\n")


def test_a_failed_step_reason_from_aws_is_printed_on_one_line(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "read_execution", return_value=ExecutionState(
        "Failed", "", [step("Train\x1b[2J", "Failed", "AlgorithmError:\nout of memory\x1b[0m")]))
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert lines(result.stdout)[2:] == ["  step Train: Failed (AlgorithmError: out of memory)"]
    assert result.stderr == (f"emlops retrain: {PIPELINE} execution emlops-20261126-183005 Failed: "
                             "step Train: AlgorithmError: out of memory\n")


def test_ctrl_c_before_the_start_request_says_nothing_started(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "_caller_arn", side_effect=KeyboardInterrupt)
    result = cli("retrain", "prod", "churn")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"emlops retrain: interrupted before starting {PIPELINE}; no execution started\n"


def test_ctrl_c_during_the_start_before_sagemaker_started_it(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "start_execution", side_effect=KeyboardInterrupt)
    result = cli("retrain", "prod", "churn")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"emlops retrain: interrupted while starting {PIPELINE}; no execution started\n"
    assert sagemaker().list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"] == []


def test_ctrl_c_during_the_start_after_sagemaker_started_it(aws, cli, mocker):
    create_pipeline()
    real = operations.start_execution

    def started_then_interrupted(client, name, display, command):  # SageMaker started it; its answer never arrived
        real(client, name, display, command)
        raise KeyboardInterrupt

    mocker.patch.object(operations, "start_execution", side_effect=started_then_interrupted)
    result = cli("retrain", "prod", "churn")
    [summary] = sagemaker().list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert (result.exit_code, result.stdout) == (3, "")
    assert result.stderr == (f"emlops retrain: interrupted while starting {PIPELINE}; execution "
                             "emlops-20261126-183005 started and keeps running in SageMaker: "
                             f"{summary['PipelineExecutionArn']}\n")


def test_ctrl_c_during_the_start_when_aws_cannot_say(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "start_execution", side_effect=KeyboardInterrupt)
    mocker.patch.object(operations, "started_execution", side_effect=throttled("ThrottlingException",
                                                                                "ListPipelineExecutions"))
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops retrain: interrupted while starting {PIPELINE}; whether execution "
                             "emlops-20261126-183005 started is unknown (ListPipelineExecutions failed: "
                             "ThrottlingException: Rate exceeded); look for it among the pipeline's executions in "
                             "SageMaker\n")


def test_retrain_no_wait_starts_and_returns(aws, cli, mocker):
    create_pipeline()
    read = mocker.patch.object(operations, "read_execution")
    result = cli("retrain", "prod", "churn", "--no-wait")
    assert result.exit_code == 0, result.stderr
    summaries = sagemaker().list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert lines(result.stdout) == [f"Started {PIPELINE} execution emlops-20261126-183005",
                                    f"  {summaries[0]['PipelineExecutionArn']}"]
    read.assert_not_called()


def test_retrain_missing_pipeline(aws, cli):
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (f"emlops retrain: pipeline '{PIPELINE}' does not exist in {ACCOUNT}/{REGION} yet; "
                             "deploy the stack first\n")


def test_retrain_unknown_model_suggests_a_close_name(aws, cli):
    result = cli("retrain", "prod", "chrun")
    assert result.exit_code == 2
    assert result.stderr == ("emlops retrain: stack 'prod' has no model 'chrun'; did you mean 'churn'? "
                             "models: churn, fraud, doc-scoring\n")
    result = cli("retrain", "prod", "xgboost")
    assert result.stderr == "emlops retrain: stack 'prod' has no model 'xgboost'; models: churn, fraud, doc-scoring\n"


def test_retrain_unknown_stack_prints_the_config_error(aws, cli):
    result = cli("retrain", "qa", "churn")
    assert result.exit_code == 2
    assert result.stderr == "stacks/Pulumi.qa.yaml: no such stack file; stacks in this project: dev, prod, shared, staging\n"


def test_retrain_refuses_credentials_of_another_account(aws, cli, monkeypatch):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert result.stderr == ("emlops retrain: the AWS credentials are for account 111111111111 but stack 'prod' "
                             f"is in {ACCOUNT}; use credentials for {ACCOUNT}\n")


def test_retrain_without_credentials(aws, cli, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 1
    assert result.stderr == ("emlops retrain: no AWS credentials found; set AWS_PROFILE or the AWS_* "
                             "credential variables\n")


def test_access_denied_is_one_short_line():
    exc = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::333333333333:"
                                 "assumed-role/dev/x is not authorized to perform: sagemaker:UpdateModelPackage"}},
                      "UpdateModelPackage")
    assert str(targets._aws_error(exc)) == (
        "access denied calling UpdateModelPackage: AccessDeniedException: User: arn:aws:sts::333333333333:"
        "assumed-role/dev/x is not authorized to perform: sagemaker:UpdateModelPackage")
    other = ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "ListModelPackages")
    assert str(targets._aws_error(other)) == "ListModelPackages failed: ThrottlingException: Rate exceeded"
    noisy = ClientError({"Error": {"Code": "ValidationException", "Message": "bad\n\x1b[31mvalue\x1b[0m\u202e"}},
                        "UpdateModelPackage")
    assert str(targets._aws_error(noisy)) == "UpdateModelPackage failed: ValidationException: bad value"


# ---------------------------------------------------------------- approve

def package_arn(version: int) -> str:
    return f"arn:aws:sagemaker:{REGION}:{REGISTRY_ACCOUNT}:model-package/churn/{version}"


def create_packages(*statuses: str, report: object = REPORT, uri: str = REPORT_URI, metrics: bool = True,
                    description: str = "churn retrained, run {number}", git_key: str = "git_sha") -> None:
    """Group 'churn' with one package per status (versions 1, 2, ...), each pointing at the evaluation report."""
    bucket, key = uri[5:].split("/", 1)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    if report is not None:
        s3.put_object(Bucket=bucket, Key=key, Body=report if isinstance(report, bytes) else json.dumps(report))
    sagemaker().create_model_package_group(ModelPackageGroupName="churn")
    for number, status in enumerate(statuses, start=1):
        extra = {"ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                                   "S3Uri": uri}}}} if metrics else {}
        sagemaker().create_model_package(
            ModelPackageGroupName="churn", ModelApprovalStatus=status,
            ModelPackageDescription=description.format(number=number),
            CustomerMetadataProperties={git_key: f"abc{number}\r\n{number}", "training_job": f"prod-churn-train-{number}"}
            if git_key != "git_sha" else {"git_sha": f"abc{number}", "training_job": f"prod-churn-train-{number}"},
            InferenceSpecification={"Containers": [{"Image": f"{REGISTRY_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn:{number}"}],
                                    "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            **extra)


def status_of(version: int) -> tuple[str, str | None]:
    package = sagemaker().describe_model_package(ModelPackageName=package_arn(version))
    return package["ModelApprovalStatus"], package.get("ApprovalDescription")


PACKAGE_REVIEW = [  # what approve (and promote) show of churn/3 after the first line, which has the creation time
    f"  {package_arn(3)}",
    "  churn retrained, run 3",
    f"Evaluation metrics ({REPORT_URI})",
    " metric                                 ┃  value ┃ std dev",
    "━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━━",
    " binary_classification_metrics.accuracy │ 0.9132 │  0.0041",
    " binary_classification_metrics.auc      │   0.95 │   0.002",
    " binary_classification_metrics.recall   │   0.81 │",
    " dataset.item_count                     │   5000 │",
    "Metadata",
    " key          ┃ value",
    "━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━",
    " git_sha      │ abc3",
    " training_job │ prod-churn-train-3",
]

# What approve shows of prod's churn card (stacks/Pulumi.prod.yaml) after the metrics, before it asks.
CHURN_CARD = [
    "Model card (stacks/Pulumi.prod.yaml, models[churn].model_card)",
    " field                 ┃ value",
    "━" * 23 + "╇" + "━" * 176,
    " intended uses         │ Scores active subscribers' risk of cancelling in the next 90 days for the retention "
    "campaigns; not for pricing, credit or any decision about an individual made without a",
    "                       │ person.",
    " risk rating           │ Medium",
    " risk explanation      │ A wrong score changes who is offered a retention discount; contract type, a proxy for "
    "age, is monitored for bias.",
    " owner                 │ churn-models@example.com",
    " business stakeholders │ retention-marketing@example.com, customer-success@example.com",
    " business problem      │ Keep subscribers who would otherwise cancel, at the lowest discount cost.",
    " evaluation notes      │ Each version is evaluated on the latest held-out month and registered only above AUC "
    "0.85; its evaluation report is shown to the approver by emlops approve.",
    " card status           │ Draft",
]


def test_approve_shows_the_metrics_of_the_newest_pending_package_and_approves_it(registry_aws, cli):
    create_packages("Approved", "PendingManualApproval", "PendingManualApproval")
    result = cli("approve", "prod", "churn", input="y\n")
    assert result.exit_code == 0, result.stderr
    out = lines(result.stdout)
    assert out[0].startswith("Model package churn/3 (PendingManualApproval, created ")
    assert out[1:] == [
        *PACKAGE_REVIEW,
        *CHURN_CARD,
        "Approve churn/3 in stack shared? [y/N]: y",
        f"Approved churn/3 as {REGISTRY_CALLER}",
    ]
    assert status_of(3) == ("Approved", f"approved with emlops by {REGISTRY_CALLER}")
    assert status_of(2) == ("PendingManualApproval", None)


def test_approve_a_given_version_with_yes(registry_aws, cli):
    create_packages("PendingManualApproval", "PendingManualApproval", "PendingManualApproval")
    result = cli("approve", "prod", "churn", "--version", "2", "--yes")
    assert result.exit_code == 0, result.stderr
    out = lines(result.stdout)
    assert out[0].startswith("Model package churn/2 (PendingManualApproval, created ")
    assert " binary_classification_metrics.accuracy │ 0.9132 │  0.0041" in out
    assert out[-1] == f"Approved churn/2 as {REGISTRY_CALLER}"
    assert not any(line.startswith("Approve churn") for line in out)  # no prompt under --yes
    assert [status_of(v)[0] for v in (1, 2, 3)] == ["PendingManualApproval", "Approved", "PendingManualApproval"]


def test_approve_warns_of_a_model_without_a_card(registry_aws, cli):
    create_packages("PendingManualApproval")
    result = cli("approve", "staging", "churn", "--yes")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ("emlops approve: warning: churn has no model card in stacks/Pulumi.staging.yaml "
                             "(models[].model_card)\n")
    assert not any(line.startswith("Model card") for line in lines(result.stdout))
    assert status_of(1)[0] == "Approved"


def test_approve_declined_changes_nothing(registry_aws, cli):
    create_packages("PendingManualApproval")
    result = cli("approve", "prod", "churn", input="n\n")
    assert result.exit_code == 1
    assert lines(result.stdout)[-1] == "Approve churn/1 in stack shared? [y/N]: n"
    assert result.stderr == "emlops approve: not approved; churn/1 stays PendingManualApproval\n"
    assert status_of(1) == ("PendingManualApproval", None)


def test_approve_with_no_pending_package(registry_aws, cli):
    create_packages("Approved", "Rejected")
    result = cli("approve", "prod", "churn", "--yes")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "emlops approve: model package group 'churn' has no package waiting for approval\n"


def test_approve_a_version_that_does_not_exist(registry_aws, cli):
    create_packages("PendingManualApproval")
    result = cli("approve", "prod", "churn", "--version", "9", "--yes")
    assert result.exit_code == 1
    assert result.stderr == "emlops approve: model package group 'churn' has no version 9\n"


@pytest.mark.parametrize("status", ["Approved", "Rejected"])
def test_approve_a_version_already_decided(registry_aws, cli, status):
    create_packages(status)
    result = cli("approve", "prod", "churn", "--version", "1", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops approve: model package churn/1 is {status}, not PendingManualApproval; "
                             "only packages waiting for approval can be approved\n")
    assert status_of(1)[0] == status


def test_approve_when_the_group_does_not_exist(registry_aws, cli):
    result = cli("approve", "prod", "fraud", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops approve: model package group 'fraud' does not exist in {REGISTRY_ACCOUNT}/{REGION} "
                             "yet; deploy the stack first\n")


def test_approve_unknown_model(registry_aws, cli):
    result = cli("approve", "prod", "frad", "--yes")
    assert result.exit_code == 2
    assert result.stderr == ("emlops approve: stack 'prod' has no model 'frad'; did you mean 'fraud'? "
                             "models: churn, fraud, doc-scoring\n")


NO_REPORT = [
    ({"metrics": False}, "model package churn/1 has no evaluation report (ModelMetrics.ModelQuality.Statistics)"),
    ({"report": None}, f"evaluation report of churn/1: cannot read {REPORT_URI}: NoSuchKey"),
    ({"report": b"{not json"}, f"evaluation report of churn/1: {REPORT_URI} is not valid JSON "
                               "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ({"report": {"version": 0.0}}, f"evaluation report of churn/1: {REPORT_URI} holds no metrics"),
]
NOT_WITHOUT_REPORT = ("emlops approve: not approving churn/1 without its evaluation report; if it may be approved "
                      "anyway, say why with --no-report-reason (recorded in the approval)\n")
WHY = "the evaluation job failed on a quota; metrics checked by hand in MLflow run 42 by J. Doe"


@pytest.mark.parametrize("kwargs, problem", NO_REPORT)
def test_approve_refuses_a_version_without_a_readable_report_unless_told_why(registry_aws, cli, kwargs, problem):
    create_packages("PendingManualApproval", **kwargs)
    for args, answer in ((["--yes"], None), ([], "y\n")):
        refused = cli("approve", "prod", "churn", *args, input=answer)
        assert refused.exit_code == 1
        assert refused.stderr == f"emlops approve: warning: {problem}\n" + NOT_WITHOUT_REPORT
        assert not any(line.startswith("Approve churn") for line in lines(refused.stdout))  # never asked
        assert status_of(1)[0] == "PendingManualApproval"

    approved = cli("approve", "prod", "churn", "--no-report-reason", WHY, input="y\n")
    assert approved.exit_code == 0, approved.stderr
    assert approved.stderr == f"emlops approve: warning: {problem}\n"
    assert not any(line.startswith("Evaluation metrics") for line in lines(approved.stdout))
    assert lines(approved.stdout)[-2:] == ["Approve churn/1 in stack shared? [y/N]: y",
                                           f"Approved churn/1 as {REGISTRY_CALLER}"]
    assert status_of(1) == ("Approved", f"approved with emlops by {REGISTRY_CALLER}; no evaluation report: {WHY}")


def test_a_reason_without_a_report_works_under_yes_and_is_recorded_on_one_line(registry_aws, cli):
    create_packages("PendingManualApproval", metrics=False)
    cut = WHY.index(" metrics")
    result = cli("approve", "prod", "churn", "--yes", "--no-report-reason", f"  {WHY[:cut]}\n\x1b[1m{WHY[cut:]}  ")
    assert result.exit_code == 0, result.stderr
    assert status_of(1) == ("Approved", f"approved with emlops by {REGISTRY_CALLER}; no evaluation report: {WHY}")


@pytest.mark.parametrize("reason, message", [
    ("metrics are fine", "--no-report-reason: say why the version may be approved without an evaluation report, "
                         "and who decided (5 words or more)"),
    ("because " * 200, "--no-report-reason: 1599 characters, but SageMaker keeps at most 1024 in an approval "
                       "description, which leaves 941 for the reason"),
])
def test_a_reason_that_says_too_little_or_does_not_fit_is_refused(registry_aws, cli, reason, message):
    create_packages("PendingManualApproval", metrics=False)
    result = cli("approve", "prod", "churn", "--yes", "--no-report-reason", reason)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == f"emlops approve: {message}"
    assert status_of(1)[0] == "PendingManualApproval"


def test_a_reason_for_a_version_that_has_a_report_is_refused(registry_aws, cli):
    create_packages("PendingManualApproval")
    result = cli("approve", "prod", "churn", "--yes", "--no-report-reason", WHY)
    assert result.exit_code == 2
    assert result.stderr == ("emlops approve: churn/1 has an evaluation report; --no-report-reason is only for a "
                             "version without one\n")
    assert status_of(1)[0] == "PendingManualApproval"


def test_approve_asks_only_on_a_terminal(registry_aws, cli, tty):
    create_packages("PendingManualApproval", "PendingManualApproval")
    tty["on"] = False
    refused = cli("approve", "prod", "churn", input="y\n")
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr == ("emlops approve: no terminal to confirm the approval on (stdin is not a TTY); review "
                              "the version in a terminal, or approve it without asking with --yes\n")
    assert [status_of(v)[0] for v in (1, 2)] == ["PendingManualApproval", "PendingManualApproval"]
    approved = cli("approve", "prod", "churn", "--yes")
    assert approved.exit_code == 0, approved.stderr
    assert lines(approved.stdout)[-1] == f"Approved churn/2 as {REGISTRY_CALLER}"


def test_approve_prints_what_aws_holds_without_control_characters(registry_aws, cli):
    """Descriptions, metric names and values, metadata: escape sequences and line breaks never reach the terminal."""
    report = {"binary_classification_metrics": {"accuracy\x1b[2J": {"value": "0.99\nALL CLEAR"}},
              "note\u202e": {"value": "\x1b]0;pwned\x07ok"}}
    create_packages("PendingManualApproval", report=report, git_key="git\x1b[31m_sha",
                    description="churn\x1b[8m retrained\nApproved churn/1 as root\x1b[0m")

    result = cli("approve", "prod", "churn", input="y\n")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert lines(out)[1:3] == [f"  {package_arn(1)}", "  churn retrained Approved churn/1 as root"]
    assert lines(out)[4:] == [
        " metric                                 ┃          value ┃ std dev",
        "━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━",
        " binary_classification_metrics.accuracy │ 0.99 ALL CLEAR │",
        " note                                   │             ok │",
        "Metadata",
        " key          ┃ value",
        "━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━",
        " git_sha      │ abc1  1",
        " training_job │ prod-churn-train-1",
        *CHURN_CARD,
        "Approve churn/1 in stack shared? [y/N]: y",
        f"Approved churn/1 as {REGISTRY_CALLER}",
    ]


def test_metric_rows_flatten_reports():
    report = {"regression_metrics": {"mse": {"value": 4.123456789, "standard_deviation": 0.5}},
              "confusion_matrix": {"0": {"0": 10, "1": 2}}, "version": 0.0, "curve": [1, 2]}
    assert approval.metric_rows(report) == [("regression_metrics.mse", "4.12346", "0.5"),
                                              ("confusion_matrix.0.0", "10", ""), ("confusion_matrix.0.1", "2", "")]
    assert approval.metric_rows([1, 2]) == []


def test_interrupting_the_follow_leaves_the_execution_running(aws, cli, mocker):
    create_pipeline()
    mocker.patch.object(operations, "read_execution", side_effect=KeyboardInterrupt)
    result = cli("retrain", "prod", "churn")
    assert result.exit_code == 3
    arn = lines(result.stdout)[1].strip()
    assert result.stderr == (f"emlops retrain: stopped following {PIPELINE} execution emlops-20261126-183005 "
                             f"(interrupted); it keeps running in SageMaker: {arn}\n")


@pytest.mark.parametrize("code, message, expected", [
    ("ResourceNotFound", "Pipeline 'arn:aws:sagemaker:eu-west-1:333333333333:pipeline/x' does not exist.", True),
    ("ValidationException", "ModelPackageGroup churn does not exist.", True),
    ("ValidationException", "Model package arn:aws:sagemaker:eu-west-1:333333333333:model-package/churn/9 not found",
     True),
    ("ValidationException", "1 validation error detected: Value 'x!' failed to satisfy constraint", False),
    ("AccessDeniedException", "not authorized", False),
])
def test_not_found_answers_of_aws_and_moto(code, message, expected):
    assert targets._not_found(ClientError({"Error": {"Code": code, "Message": message}}, "Describe")) is expected


def test_approving_a_model_of_an_environment_is_done_in_the_shared_registry(registry_aws, cli):
    """prod's groups are the shared registry's: `approve prod` and `approve shared` act on the same group."""
    create_packages("PendingManualApproval", "PendingManualApproval")
    result = cli("approve", "prod", "churn", "--version", "1", "--yes")
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout)[-1] == f"Approved churn/1 as {REGISTRY_CALLER}"
    result = cli("approve", "shared", "churn", "--version", "2", "--yes")
    assert result.exit_code == 0, result.stderr
    assert [status_of(v)[0] for v in (1, 2)] == ["Approved", "Approved"]


def test_approving_with_an_environments_credentials_is_refused(aws, cli):
    result = cli("approve", "prod", "churn", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops approve: the AWS credentials are for account {ACCOUNT} but stack 'shared' is "
                             f"in {REGISTRY_ACCOUNT}; use credentials for {REGISTRY_ACCOUNT}\n")
