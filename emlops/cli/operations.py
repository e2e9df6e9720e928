"""Operator commands on a deployed stack: `emlops retrain`, `emlops ingest`, `emlops approve` and `emlops promote`
(what they act on: targets.py; the approval itself: approval.py; the promotion of a shadow test's challenger:
promotion.py).

They call AWS with boto3 and the credentials of the environment (no role is assumed here), in the
stack's region, and refuse to act when those credentials are for another account than the stack's.
Names follow the platform: a model's retraining pipeline is `<environment>-<model>-retraining`,
its model package group is `<model>`, a dataset's data pipeline is `<environment>-<dataset>-data`.

`emlops retrain` (and `emlops ingest`) starts the pipeline and follows its steps. A status check AWS throttles is retried with a
growing pause (up to `MAX_THROTTLED` in a row), never taken for a failed pipeline. Whenever the command stops
following (its timeout, Ctrl-C, an AWS error, throttling that does not end), it says the execution keeps
running, with its ARN, and ends with `EXIT_STILL_RUNNING`; Ctrl-C while starting says whether an execution
started (looked up by its display name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from emlops.cli.targets import (
    EXIT_FAILURE,
    EXIT_STILL_RUNNING,
    OperationError,
    Runtime,
    Target,
    _aws_error,
    _caller_arn,
    _not_found,
    clean,
    is_throttled,
    resolve_dataset,
    resolve_target,
)

TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")
MAX_THROTTLED = 8  # throttled status checks in a row before the command stops following
MAX_BACKOFF_SECONDS = 300.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


@dataclass
class ExecutionState:
    status: str
    failure_reason: str
    steps: list[dict[str, Any]]


def read_execution(sagemaker: Any, execution_arn: str) -> ExecutionState:
    """One poll: the execution's status and its steps (oldest first)."""
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    return ExecutionState(described["PipelineExecutionStatus"], described.get("FailureReason") or "",
                          list_steps(sagemaker, execution_arn))


def list_steps(sagemaker: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's steps, oldest first."""
    steps: list[dict[str, Any]] = []
    for page in sagemaker.get_paginator("list_pipeline_execution_steps").paginate(
            PipelineExecutionArn=execution_arn, SortOrder="Ascending"):
        steps += page.get("PipelineExecutionSteps", [])
    return steps


def _failure_reason(state: ExecutionState) -> str:
    if state.failure_reason:
        return clean(state.failure_reason)
    for step in state.steps:
        if step.get("StepStatus") in ("Failed", "Stopped") and step.get("FailureReason"):
            return clean(f"step {step['StepName']}: {step['FailureReason']}")
    return "no failure reason given"


def still_running(label: str, arn: str, why: str) -> OperationError:
    """The command stops following LABEL; the execution itself goes on."""
    return OperationError(f"stopped following {label} ({why}); it keeps running in SageMaker: {arn}",
                          EXIT_STILL_RUNNING)


def _poll(sagemaker: Any, execution_arn: str, label: str, spinner: Any, runtime: Runtime,
          poll_seconds: float) -> ExecutionState:
    """One status check, retried with a growing pause while AWS throttles it (up to MAX_THROTTLED in a row)."""
    from botocore.exceptions import ClientError

    for throttled in range(MAX_THROTTLED + 1):
        try:
            return read_execution(sagemaker, execution_arn)
        except ClientError as exc:
            if not is_throttled(exc):
                raise
            if throttled == MAX_THROTTLED:
                raise still_running(label, execution_arn, f"{MAX_THROTTLED + 1} status checks in a row throttled: "
                                    f"{_aws_error(exc)}") from None
            pause = min(poll_seconds * 2 ** throttled, MAX_BACKOFF_SECONDS)
            spinner.update(f"{escape(label)}: status checks throttled, next in {_duration(pause)}")
            runtime.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def follow_execution(sagemaker: Any, execution_arn: str, label: str, console: Console, runtime: Runtime,
                     poll_seconds: float, timeout_seconds: float) -> ExecutionState:
    """Poll until a terminal status, printing each step's status change; OperationError on timeout."""
    started = runtime.clock()
    seen: dict[str, str] = {}
    with console.status(f"{escape(label)}: starting") as spinner:
        while True:
            state = _poll(sagemaker, execution_arn, label, spinner, runtime, poll_seconds)
            for step in state.steps:
                name, status = clean(step["StepName"]), clean(step.get("StepStatus", "Unknown"))
                if seen.get(name) != status:
                    seen[name] = status
                    reason = f" ({step['FailureReason']})" if status == "Failed" and step.get("FailureReason") else ""
                    console.print(f"  step {escape(name)}: {escape(status)}{escape(clean(reason))}")
            elapsed = runtime.clock() - started
            if state.status in TERMINAL_STATUSES:
                return state
            if elapsed >= timeout_seconds:
                raise still_running(label, execution_arn, f"still {clean(state.status)} after {_duration(elapsed)}")
            done = sum(1 for s in state.steps if s.get("StepStatus") == "Succeeded")
            spinner.update(f"{escape(label)}: {escape(clean(state.status))}, {done}/{len(state.steps)} steps done, "
                           f"{_duration(elapsed)}")
            runtime.sleep(poll_seconds)


def start_execution(sagemaker: Any, name: str, display: str, command: str = "retrain") -> str:
    """Start the pipeline; its ARN. botocore fills in an idempotency token, so its own retries start one at most."""
    return sagemaker.start_pipeline_execution(PipelineName=name, PipelineExecutionDisplayName=display,
                                              PipelineExecutionDescription=f"started with emlops {command}")[
        "PipelineExecutionArn"]


def started_execution(sagemaker: Any, name: str, display: str, since: Any) -> Optional[str]:
    """The ARN of the pipeline's execution named DISPLAY started after SINCE, if there is one."""
    for page in sagemaker.get_paginator("list_pipeline_executions").paginate(
            PipelineName=name, CreatedAfter=since, SortBy="CreationTime", SortOrder="Descending"):
        for summary in page.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionDisplayName") == display:
                return summary["PipelineExecutionArn"]
    return None


def _interrupted_start(sagemaker: Any, name: str, display: str, since: Any) -> OperationError:
    """Ctrl-C while the start request was out: whether SageMaker started the execution."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        arn = started_execution(sagemaker, name, display, since)
    except (ClientError, BotoCoreError, KeyboardInterrupt) as exc:
        why = "interrupted again" if isinstance(exc, KeyboardInterrupt) else str(_aws_error(exc))
        return OperationError(f"interrupted while starting {name}; whether execution {display} started is unknown "
                              f"({why}); look for it among the pipeline's executions in SageMaker")
    if arn is None:
        return OperationError(f"interrupted while starting {name}; no execution started")
    return OperationError(f"interrupted while starting {name}; execution {display} started and keeps running in "
                          f"SageMaker: {clean(arn)}", EXIT_STILL_RUNNING)


def retrain(target: Target, wait: bool, poll_seconds: float, timeout_minutes: float, console: Console,
            runtime: Runtime) -> None:
    from emlops.components.retraining_args import pipeline_name

    run_pipeline(target, pipeline_name(target.environment, target.model), "retrain", wait, poll_seconds,
                 timeout_minutes, console, runtime)


def ingest(target: Target, wait: bool, poll_seconds: float, timeout_minutes: float, console: Console,
           runtime: Runtime) -> None:
    from emlops.components.data_pipeline_args import pipeline_name

    run_pipeline(target, pipeline_name(target.environment, target.model), "ingest", wait, poll_seconds,
                 timeout_minutes, console, runtime)


def run_pipeline(target: Target, name: str, command: str, wait: bool, poll_seconds: float, timeout_minutes: float,
                 console: Console, runtime: Runtime) -> None:
    """Start the pipeline NAME in TARGET's account and region and follow it (see the module docstring)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    now = runtime.now()
    display = now.strftime("emlops-%Y%m%d-%H%M%S")
    try:
        try:
            session = boto3.session.Session()
            _caller_arn(session, target)
            sagemaker = session.client("sagemaker", region_name=target.region)
        except KeyboardInterrupt:
            raise OperationError(f"interrupted before starting {name}; no execution started") from None
        try:
            arn = clean(start_execution(sagemaker, name, display, command))
        except KeyboardInterrupt:
            raise _interrupted_start(sagemaker, name, display, now - timedelta(minutes=5)) from None
        except ClientError as exc:
            if _not_found(exc):
                raise OperationError(f"pipeline {name!r} does not exist in {target.where} yet; "
                                     "deploy the stack first") from None
            raise
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from None
    label = f"{name} execution {display}"
    console.print(f"Started {label}")
    console.print(f"  {arn}")
    if not wait:
        return
    try:
        state = follow_execution(sagemaker, arn, label, console, runtime, poll_seconds, timeout_minutes * 60)
    except KeyboardInterrupt:
        raise still_running(label, arn, "interrupted") from None
    except (ClientError, BotoCoreError) as exc:
        raise still_running(label, arn, str(_aws_error(exc))) from None
    if state.status != "Succeeded":
        raise OperationError(f"{label} {clean(state.status)}: {_failure_reason(state)}", EXIT_FAILURE)
    console.print(f"{label} Succeeded")


def register(app: typer.Typer, runtime: Optional[Runtime] = None) -> None:
    """Add `retrain`, `ingest`, `approve` and `promote` to APP (tests pass a Runtime whose sleep does not wait)."""
    runtime = runtime or Runtime()

    def run(command: str, action: Callable[[], None]) -> None:
        try:
            action()
        except OperationError as exc:
            message = clean(exc)  # one line, whatever AWS put in it
            typer.echo(f"emlops {command}: {message}" if exc.prefixed else message, err=True)
            raise typer.Exit(exc.exit_code)

    @app.command("retrain")
    def retrain_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        model: str = typer.Argument(..., help="One of the stack's models."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the execution until it ends."),
        poll_seconds: int = typer.Option(30, "--poll-seconds", min=1, help="Seconds between status checks."),
        timeout_minutes: int = typer.Option(180, "--timeout-minutes", min=1,
                                              help="Stop following (the execution keeps running) after this long."),
    ) -> None:
        """Start MODEL's retraining pipeline in STACK's account and follow it to the end.

        Exit codes: 0 succeeded (or started, with --no-wait); 1 failed, or not started; 2 bad input; 3 stopped
        following (timeout, Ctrl-C, AWS errors or throttling), the execution keeps running.
        """
        console = Console(highlight=False, soft_wrap=True)
        run("retrain", lambda: retrain(resolve_target(stack, model), wait, poll_seconds, timeout_minutes,
                                       console, runtime))

    @app.command("ingest")
    def ingest_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        dataset: str = typer.Argument(..., help="One of the stack's data_pipelines."),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the execution until it ends."),
        poll_seconds: int = typer.Option(30, "--poll-seconds", min=1, help="Seconds between status checks."),
        timeout_minutes: int = typer.Option(180, "--timeout-minutes", min=1,
                                              help="Stop following (the execution keeps running) after this long."),
    ) -> None:
        """Start DATASET's data pipeline in STACK's account (it claims what landed, validates, quarantines or
        ingests it) and follow it to the end.

        Exit codes: 0 succeeded (or started, with --no-wait); 1 failed (a quarantined batch among them), or not
        started; 2 bad input; 3 stopped following (timeout, Ctrl-C, AWS errors or throttling), the execution keeps
        running.
        """
        console = Console(highlight=False, soft_wrap=True)
        run("ingest", lambda: ingest(resolve_dataset(stack, dataset), wait, poll_seconds, timeout_minutes,
                                     console, runtime))

    from emlops.cli.lineage import register as register_lineage

    register_lineage(app, run)

    @app.command("approve")
    def approve_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        model: str = typer.Argument(..., help="One of the stack's models (its model package group), or a group of "
                                              "the registry stack; for a stack using the shared registry, approves "
                                              "in the shared stack."),
        version: Optional[int] = typer.Option(None, "--version", min=1,
                                              help="Approve this version. Default: the newest one pending approval."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed where no terminal "
                                 "can answer, e.g. in CI)."),
        no_report_reason: Optional[str] = typer.Option(
            None, "--no-report-reason", help="Approve a version that has no readable evaluation report, for this "
            "reason (why, and who decided), recorded in the approval's description."),
    ) -> None:
        """Show a model package's evaluation metrics and the model's card, and approve it for deployment."""
        from emlops.cli.approval import approve, declared_card

        console = Console(highlight=False, soft_wrap=True)
        run("approve", lambda: approve(resolve_target(stack, model, registry=True), version, yes, no_report_reason,
                                       console, runtime.interactive(),
                                       lambda prompt: typer.confirm(prompt, default=False),
                                       lambda line: typer.echo(f"emlops approve: {line}", err=True),
                                       card=declared_card(stack, model)))

    @app.command("promote")
    def promote_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        model: str = typer.Argument(..., help="One of the stack's models, with a shadow test (shadow.challenger)."),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation (needed where no terminal "
                                 "can answer, e.g. in CI)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Look everything up and check it, say what would "
                                     "change, change nothing."),
        mlflow_uri: Optional[str] = typer.Option(
            None, "--mlflow-uri", help="MLflow challenger: the tracking server to promote in. Default: the stack's "
            "registry.mlflow_tracking_uri. Credentials as MLflow reads them (MLFLOW_TRACKING_TOKEN, or "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)."),
        no_report_reason: Optional[str] = typer.Option(
            None, "--no-report-reason", help="Package challenger: promote a version that has no readable evaluation "
            "report, for this reason (why, and who decided), recorded in the approval's description."),
    ) -> None:
        """Make MODEL's shadow challenger the champion the next deploy of STACK serves, in the registry.

        MLflow source (models:/NAME@ALIAS): moves ALIAS to the challenger's version and tags that version with
        who promoted it, when and from what. Model package group source: approves the group's newest package
        pending approval (in the shared registry's stack when STACK uses one), after showing its evaluation
        metrics as approve does. No resource is changed: `pulumi up -s STACK` deploys the new champion.

        Exit codes: 0 promoted, nothing to promote (the challenger is the champion already), or --dry-run;
        1 not promoted (the registry's state, AWS or MLflow errors, or declined); 2 bad input.
        """
        from emlops.cli.promotion import promote

        console = Console(highlight=False, soft_wrap=True)
        run("promote", lambda: promote(stack, model, yes, dry_run, mlflow_uri, no_report_reason, console, runtime,
                                       lambda prompt: typer.confirm(prompt, default=False),
                                       lambda line: typer.echo(f"emlops promote: {line}", err=True)))
