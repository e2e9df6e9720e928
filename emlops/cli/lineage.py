"""`emlops lineage STACK MODEL [--version N] [--offline]`: which data produced a model version.

With credentials for the stack's account: the version (`--version N`, or the newest Approved one: the version a
package-sourced deploy serves) of the model's package group in the stack's registry (the shared stack's, by ARN,
when the stack uses one), and what it recorded when its retraining registered it (`CustomerMetadataProperties`,
components/retraining_definition.py `lineage_metadata`): the pipeline execution and when it started, and the
feature groups it read then with its label, or the datasets prefix it read, whose object versions current at that
time the versioned bucket still holds (listed). `--offline`: what the stack configures, from its offline preview
(emlops/review/lineage.py), with no credentials.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Optional

import typer
from rich.console import Console

from emlops.cli.targets import (EXIT_INPUT, OperationError, Target, _aws_error, _caller_arn,
                                _load_platform, _not_found, clean, registry_target, resolve_target)

EXECUTION, STARTED = "emlops:pipeline-execution", "emlops:trained-at"
FEATURE_GROUPS, LABEL, DATASET = "emlops:feature-groups", "emlops:label", "emlops:dataset"
MAX_OBJECTS = 20  # object versions listed (the rest counted)


def package_arn(registry: Target, version: int) -> str:
    return (f"arn:{registry.partition}:sagemaker:{registry.region}:{registry.account_id}:model-package/"
            f"{registry.model.lower()}/{version}")


def group_arn(registry: Target) -> str:
    return (f"arn:{registry.partition}:sagemaker:{registry.region}:{registry.account_id}:model-package-group/"
            f"{registry.model.lower()}")


def _package(sagemaker: Any, registry: Target, version: Optional[int]) -> dict[str, Any]:
    if version is not None:
        return sagemaker.describe_model_package(ModelPackageName=package_arn(registry, version))
    summaries = sagemaker.list_model_packages(ModelPackageGroupName=group_arn(registry), ModelApprovalStatus="Approved",
                                              SortBy="CreationTime", SortOrder="Descending", MaxResults=1)
    found = summaries.get("ModelPackageSummaryList") or []
    if not found:
        raise OperationError(f"model package group {registry.model!r} has no Approved version in "
                             f"{registry.where}; give --version N")
    return sagemaker.describe_model_package(ModelPackageName=found[0]["ModelPackageArn"])


def _object_versions(s3: Any, uri: str, at: datetime) -> list[str]:
    """The object versions under URI that were current at AT (deleted since or not), one line each."""
    from emlops.components.locations import parse_s3

    bucket, prefix = parse_s3(uri, "emlops:dataset", prefix=True)
    current: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
            if entry["LastModified"] <= at and (entry["Key"] not in current or
                                                entry["LastModified"] > current[entry["Key"]]["LastModified"]):
                current[entry["Key"]] = entry
    objects = sorted((key, entry) for key, entry in current.items() if "Size" in entry)  # delete markers have none
    lines = [f"    s3://{bucket}/{clean(key)} version {clean(entry['VersionId'])}" for key, entry in objects[:MAX_OBJECTS]]
    if len(objects) > MAX_OBJECTS:
        lines.append(f"    ... and {len(objects) - MAX_OBJECTS} more")
    return lines or ["    (no object was there then)"]


def registered_lineage(stack: Target, registry: Target, version: Optional[int]) -> list[str]:
    """What a registered version of STACK's model recorded about its training data (credentials of STACK's
    account)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        session = boto3.session.Session()
        _caller_arn(session, stack)
        sagemaker = session.client("sagemaker", region_name=stack.region)
        try:
            package = _package(sagemaker, registry, version)
        except ClientError as exc:
            if _not_found(exc):
                what = f"version {version}" if version is not None else "group"
                raise OperationError(f"model package {what} of {registry.model!r} does not exist in "
                                     f"{registry.where}") from None
            raise
        metadata = package.get("CustomerMetadataProperties") or {}
        lines = [f"{stack.model} version {package.get('ModelPackageVersion')} ({clean(package.get('ModelApprovalStatus'))}"
                 f"): {clean(package['ModelPackageArn'])}"]
        if EXECUTION not in metadata:
            return lines + ["  no lineage recorded: this version was not registered by the platform's retraining"]
        started = clean(metadata.get(STARTED, "?"))
        lines.append(f"  trained by: {clean(metadata[EXECUTION])} (started {started})")
        if FEATURE_GROUPS in metadata:
            lines.append(f"  training set: feature groups {clean(metadata[FEATURE_GROUPS]).replace(',', ', ')} "
                         f"(label {clean(metadata.get(LABEL, '?'))}), their offline stores as of {started}")
        elif DATASET in metadata:
            lines.append(f"  training set: {clean(metadata[DATASET])}, the object versions current at {started}:")
            try:
                at = datetime.fromisoformat(started.replace("Z", "+00:00"))
            except ValueError:
                return lines + [f"    (the start time {started!r} is not a timestamp; the versions cannot be told)"]
            lines += _object_versions(session.client("s3", region_name=stack.region), metadata[DATASET], at)
        return lines
    except (ClientError, BotoCoreError) as exc:
        raise _aws_error(exc) from None


def register(app: typer.Typer, run: Callable[[str, Callable[[], None]], None]) -> None:
    """Add `lineage` to APP (RUN turns an OperationError into its one line and exit code)."""

    @app.command("lineage")
    def lineage_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        model: str = typer.Argument(..., help="One of the stack's models."),
        version: Optional[int] = typer.Option(None, "--version", min=1, help="This version of the model's package "
                                              "group. Default: the newest Approved one (what a deploy serves)."),
        offline: bool = typer.Option(False, "--offline", help="Say what the stack configures (its offline preview), "
                                     "with no credentials."),
    ) -> None:
        """Which data produced MODEL's version in STACK: the pipeline execution that trained it and the feature
        groups (point in time) or dataset object versions it read.

        Exit codes: 0 answered; 1 AWS errors or no such version; 2 bad input.
        """
        console = Console(highlight=False, soft_wrap=True)

        def action() -> None:
            target = resolve_target(stack, model)
            if offline:
                if version is not None:
                    raise OperationError("--version needs the registry (credentials); drop --offline", EXIT_INPUT)
                from emlops.cli.process import one_preview_process
                from emlops.offline.preview import PreviewError, preview_stack
                from emlops.review.lineage import configured_lineage

                one_preview_process(stack)
                try:
                    plan = preview_stack(stack).plan
                except PreviewError as exc:
                    raise OperationError(str(exc), exc.exit_code, prefixed=False) from None
                lines = configured_lineage(plan, target.environment, model)
            else:
                lines = registered_lineage(target, registry_target(stack, _load_platform(stack), model), version)
            for line in lines:
                console.print(line, markup=False)

        run("lineage", action)


__all__ = ["register", "registered_lineage"]
