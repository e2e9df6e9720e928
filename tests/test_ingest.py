"""`emlops ingest STACK DATASET` against moto (SageMaker and STS in the prod stack's account), as `emlops retrain` is
tested (tests/test_operations.py says what moto cannot do and which call each patch stands in for)."""

from __future__ import annotations

from emlops.cli import operations
from emlops.cli.operations import ExecutionState
from tests.test_operations import (ACCOUNT, REGION, aws, cli, clock, create_pipeline, lines, sagemaker,  # noqa: F401
                                   step, tty)

PIPELINE = "prod-customers-data"


def test_ingest_starts_the_data_pipeline_and_reports_success(aws, cli, clock, mocker):
    create_pipeline(PIPELINE)
    mocker.patch.object(operations, "list_steps", return_value=[
        step("Claim", "Succeeded"), step("HasBatch", "Succeeded"), step("Validate", "Succeeded"),
        step("Gate", "Succeeded"), step("IsValid", "Succeeded"), step("Transform", "Succeeded"),
        step("Ingest", "Succeeded")])
    result = cli("ingest", "prod", "customers", "--poll-seconds", "5")
    assert result.exit_code == 0, result.stderr
    [summary] = sagemaker().list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    arn = summary["PipelineExecutionArn"]
    assert lines(result.stdout) == [
        f"Started {PIPELINE} execution emlops-20261126-183005", f"  {arn}",
        "  step Claim: Succeeded", "  step HasBatch: Succeeded", "  step Validate: Succeeded", "  step Gate: Succeeded",
        "  step IsValid: Succeeded", "  step Transform: Succeeded", "  step Ingest: Succeeded",
        f"{PIPELINE} execution emlops-20261126-183005 Succeeded"]
    described = sagemaker().describe_pipeline_execution(PipelineExecutionArn=arn)
    assert (described["PipelineExecutionDisplayName"], described["PipelineExecutionDescription"]) == (
        "emlops-20261126-183005", "started with emlops ingest")
    assert clock.sleeps == []


def test_a_quarantined_batch_fails_the_command_with_the_gates_reason(aws, cli, mocker):
    create_pipeline(PIPELINE)
    reason = ("The batch failed validation: 2 violations (tenure_months: data_type_check); quarantined at "
              "s3://prod-datasets/data-pipelines/customers/quarantine/x1/")
    mocker.patch.object(operations, "read_execution", side_effect=[
        ExecutionState("Executing", "", [step("Validate", "Executing")]),
        ExecutionState("Failed", "", [step("Validate", "Succeeded"), step("Gate", "Succeeded"),
                                      step("ValidationFailed", "Failed", reason)])])
    result = cli("ingest", "prod", "customers")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops ingest: {PIPELINE} execution emlops-20261126-183005 Failed: "
                             f"step ValidationFailed: {reason}\n")


def test_ingest_no_wait_starts_and_returns(aws, cli, mocker):
    create_pipeline(PIPELINE)
    read = mocker.patch.object(operations, "read_execution")
    result = cli("ingest", "prod", "customers", "--no-wait")
    assert result.exit_code == 0, result.stderr
    [summary] = sagemaker().list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    assert lines(result.stdout) == [f"Started {PIPELINE} execution emlops-20261126-183005",
                                    f"  {summary['PipelineExecutionArn']}"]
    read.assert_not_called()


def test_ingest_before_the_stack_is_deployed(aws, cli):
    result = cli("ingest", "prod", "customers")
    assert result.exit_code == 1
    assert result.stderr == (f"emlops ingest: pipeline '{PIPELINE}' does not exist in {ACCOUNT}/{REGION} yet; "
                             "deploy the stack first\n")


def test_ingest_unknown_dataset_suggests_a_close_name(aws, cli):
    result = cli("ingest", "prod", "customer")
    assert result.exit_code == 2
    assert result.stderr == ("emlops ingest: stack 'prod' has no data pipeline 'customer'; did you mean 'customers'? "
                             "data pipelines: customers\n")
    result = cli("ingest", "shared", "customers")
    assert result.stderr == "emlops ingest: stack 'shared' has no data pipeline 'customers'; data pipelines: none\n"


def test_ingest_refuses_credentials_of_another_account(aws, cli, monkeypatch):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    result = cli("ingest", "prod", "customers")
    assert result.exit_code == 1
    assert result.stderr == ("emlops ingest: the AWS credentials are for account 111111111111 but stack 'prod' "
                             f"is in {ACCOUNT}; use credentials for {ACCOUNT}\n")
