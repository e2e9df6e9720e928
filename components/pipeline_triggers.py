"""What starts a pipeline of the platform's and who hears that a run failed: the EventBridge rules that
`BatchTransform` and `DataPipeline` share.

A run starts on a schedule and/or when an object is created under a prefix of a bucket (S3 -> EventBridge), through
a role EventBridge assumes that may start exactly that pipeline; a failed run is announced on the alerts topic.
Children are named after the component: `<name>-schedule`, `<name>-new-data` (and their `-start` targets),
`<name>-events` (the role), `<name>-failed` (and its `-notify` target).
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement
from emlops.components.options import child
from emlops.components.settings import Governance

__all__ = ["FAILED", "NEW_DATA", "SCHEDULE", "events_role_name", "notify_failures", "start_rules", "starts"]

SCHEDULE, NEW_DATA, FAILED = "schedule", "new-data", "failed"


def events_role_name(name: str) -> str:
    """The ServiceRole EventBridge assumes to start the pipeline of the component called `name`."""
    return f"{name}-events"


def starts(schedule: Optional[str], on_new_data: bool) -> list[str]:
    """What starts a run, in the order the rules are made: the schedule, new objects."""
    return [start for start, on in ((SCHEDULE, schedule is not None), (NEW_DATA, on_new_data)) if on]


def start_rules(parent: pulumi.Resource, name: str, pipeline: aws.sagemaker.Pipeline, pipeline_name: str,
                governance: Governance, schedule: Optional[str], on_new_data: bool,
                bucket_name: pulumi.Input[str], prefix: str, verb: str) -> None:
    """The rules (and the role they start the pipeline as) that start a run on `schedule` and/or when an object is
    created under `prefix` of the bucket; `verb` says what a run does in their descriptions ("score", "ingest")."""
    kinds = starts(schedule, on_new_data)
    if not kinds:
        return
    tags = dict(governance.tags)
    events_role = ServiceRole(events_role_name(name), ServiceRoleArgs(
        services=["events.amazonaws.com"], description=f"Lets EventBridge start the {pipeline_name} pipeline",
        permissions_boundary_arn=governance.permissions_boundary_arn, path=governance.role_path, tags=tags),
        opts=child(parent))
    start_policy = events_role.add_policy("start-pipeline", [
        Statement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline.arn])])
    for start in kinds:
        if start == SCHEDULE:
            trigger = dict(schedule_expression=schedule, description=f"{name}: {verb} on the schedule {schedule}")
        else:
            trigger = dict(description=f"{name}: {verb} when an object lands under {prefix}",
                           event_pattern=pulumi.Output.from_input(bucket_name).apply(lambda bucket: json.dumps({
                               "source": ["aws.s3"], "detail-type": ["Object Created"],
                               "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}}})))
        rule = aws.cloudwatch.EventRule(f"{name}-{start}", tags=tags, opts=child(parent), **trigger)
        aws.cloudwatch.EventTarget(f"{name}-{start}-start", rule=rule.name, arn=pipeline.arn, role_arn=events_role.arn,
                                   sagemaker_pipeline_target={"pipeline_parameter_lists": []},
                                   opts=child(parent, depends_on=[start_policy]))


def notify_failures(parent: pulumi.Resource, name: str, pipeline: aws.sagemaker.Pipeline,
                    topic_arn: pulumi.Input[str], tags: dict, what: str) -> None:
    """A rule that sends every failed run of the pipeline to the alerts topic; `what` describes the failure."""
    rule = aws.cloudwatch.EventRule(
        f"{name}-{FAILED}", description=f"{name}: {what}", tags=tags,
        event_pattern=pipeline.arn.apply(lambda arn: json.dumps({
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
            "detail": {"pipelineArn": [arn], "currentPipelineExecutionStatus": ["Failed"]}})),
        opts=child(parent))
    aws.cloudwatch.EventTarget(f"{name}-{FAILED}-notify", rule=rule.name, arn=topic_arn, opts=child(parent))
