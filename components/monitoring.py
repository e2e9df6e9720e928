"""ModelMonitor: scheduled data- and model-quality monitoring of one SageMaker endpoint (or of the inputs a batch
transform job captured), with alarms.

A SageMaker data-quality job definition runs AWS's Model Monitor analyzer (its image from the SageMaker
SDK's catalogue) over the endpoint's captured data on a schedule, compares it with a baseline
(statistics and constraints from a baselining job) and writes reports under `monitoring/<name>/` of
the reports bucket. The jobs run in private subnets with network isolation, under a role that can read
only the capture prefix and the baseline, write only its reports, and publish only the analyzer's
metrics (monitoring_role.py). Drift alarms and run-outcome events notify an encrypted SNS topic
(monitoring_alarms.py, alerts.py).

With ground truth (an S3 prefix of labels) and a problem type, a model-quality job (pulumi-aws-native's,
model_quality.py: pulumi_aws has none) merges the captured predictions with the labels on the same
schedule, publishes the problem type's metrics, and one of them gets an alarm.

A batch transform's inputs are monitored the same way, for data quality only: the job definition reads what
the transform job captured (`batch_transform_input`, CSV or JSON Lines) and the analyzer publishes its metrics
under the schedule alone (`MonitorContext.batch_input_format`).

Its settings (`MonitoringSettings`) and context (`MonitorContext`) are in monitoring_args.py.
"""

from __future__ import annotations

import re
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.resources_operations import EVENT_RULE
from emlops.catalog.resources_sagemaker import (DATA_QUALITY_JOB_DEFINITION, MODEL_BIAS_JOB_DEFINITION,
                                                MODEL_EXPLAINABILITY_JOB_DEFINITION, MODEL_QUALITY_JOB_DEFINITION,
                                                MONITORING_SCHEDULE)
from emlops.components.alerts import notification_topic, subscription_protocol
from emlops.components.clarify_args import clarify_image_uri
from emlops.components.clarify_monitoring import BIAS, EXPLAINABILITY, clarify_logical_name, clarify_monitors
from emlops.components.aws_context import aws_context
from emlops.components.iam import role_names
from emlops.components.images import monitor_image_uri
from emlops.components.locations import parse_s3
from emlops.components.model_quality import monitor_quality_job
from emlops.components.monitoring_alarms import OUTCOMES, drift_alarms, outcome_rule_name, quality_alarm, run_outcome_rules
from emlops.components.monitoring_args import (MonitorContext, MonitoringSettings, PRODUCTION_NEEDS_BASELINE,
                                               schedule_interval_seconds)
from emlops.components.monitoring_role import monitoring_role, monitoring_role_name
from emlops.components.naming import DerivedName, auto_named, room
from emlops.components.network_access import https_only_security_group
from emlops.components.options import child, type_token
from emlops.components.outputs import concat

__all__ = ["ModelMonitor", "MonitorContext", "MonitoringSettings"]

_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
LOCAL_INPUT, LOCAL_OUTPUT = "/opt/ml/processing/input/endpoint", "/opt/ml/processing/output"
LOCAL_BATCH_INPUT = "/opt/ml/processing/input/batch"


def check_monitor_name(name: str, settings: MonitoringSettings) -> None:
    """SageMaker's name pattern, leaving room for the longest name the monitor derives (its role's, or with
    model quality its violations rule's, each with Pulumi's 8-character suffix)."""
    longest = room(name, derived_names(name, settings))
    if not _SAGEMAKER_NAME.match(name) or len(name) > longest:
        raise ValueError(f"monitor name {name!r} must be at most {longest} ASCII letters, digits and '-', "
                         "starting and ending with a letter or digit")


def job_logical_name(name: str) -> str:
    return f"{name}-job"


def schedule_logical_name(name: str) -> str:
    return f"{name}-schedule"


def quality_job_logical_name(name: str) -> str:
    return f"{name}-quality-job"


def quality_logical_name(name: str) -> str:
    """The model-quality schedule's logical name, and the name its run-outcome rules start with."""
    return f"{name}-quality"


def derived_names(name: str, settings: MonitoringSettings) -> list[DerivedName]:
    """The physical names a ModelMonitor called `name` gives its children (naming.py): job definitions,
    schedules, the execution role and the run-outcome rules."""
    names = [auto_named(DATA_QUALITY_JOB_DEFINITION.token, job_logical_name(name)),
             auto_named(MONITORING_SCHEDULE.token, schedule_logical_name(name)),
             *role_names(monitoring_role_name(name)),
             *[auto_named(EVENT_RULE.token, outcome_rule_name(name, outcome)) for outcome in OUTCOMES]]
    if settings.model_quality is not None:
        quality = quality_logical_name(name)
        names += [auto_named(MODEL_QUALITY_JOB_DEFINITION.token, quality_job_logical_name(name)),
                  auto_named(MONITORING_SCHEDULE.token, quality),
                  *[auto_named(EVENT_RULE.token, outcome_rule_name(quality, outcome)) for outcome in OUTCOMES]]
    for kind, job_type, wanted in ((BIAS, MODEL_BIAS_JOB_DEFINITION, settings.bias),
                                   (EXPLAINABILITY, MODEL_EXPLAINABILITY_JOB_DEFINITION, settings.explainability)):
        if wanted is not None:
            base = clarify_logical_name(name, kind)
            names += [auto_named(job_type.token, f"{base}-job"), auto_named(MONITORING_SCHEDULE.token, base),
                      *[auto_named(EVENT_RULE.token, outcome_rule_name(base, outcome)) for outcome in OUTCOMES]]
    return names


class ModelMonitor(pulumi.ComponentResource):
    """A data-quality job definition and its monitoring schedule for one endpoint (and, with ground truth, a
    model-quality one), with role, network, alarms, run-outcome events and (by default) an encrypted SNS topic."""

    job_definition: aws.sagemaker.DataQualityJobDefinition
    schedule: aws.sagemaker.MonitoringSchedule
    quality_job_definition: Optional[pulumi.CustomResource]  # aws-native's ModelQualityJobDefinition
    quality_schedule: Optional[aws.sagemaker.MonitoringSchedule]
    quality_schedule_arn: Optional[pulumi.Output[str]]
    clarify: list  # the Clarify monitors (clarify_monitoring.ClarifyMonitor): bias, explainability
    clarify_schedule_arns: list[pulumi.Output[str]]
    schedule_name: pulumi.Output[str]
    schedule_arn: pulumi.Output[str]
    job_definition_name: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    reports_s3_uri: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, settings: MonitoringSettings, context: MonitorContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        interval = _check(name, settings, context)
        super().__init__(type_token("ModelMonitor"), name, None, opts)
        governance = context.governance.with_tags({"model-monitor": name})
        tags = dict(governance.tags)
        prefix = f"monitoring/{name}/"
        reports = context.reports_bucket
        self.reports_s3_uri = concat("s3://", reports.bucket_name, "/", prefix.rstrip("/"))
        volume_key = context.volume_kms_key_arn or reports.kms_key_arn
        output_key = context.output_kms_key_arn or reports.kms_key_arn
        image_uri = pulumi.Output.from_input(context.region or aws_context(self).region).apply(monitor_image_uri)

        security_group_ids = list(context.placement.security_group_ids) or [
            https_only_security_group(self, name, context.placement.vpc_id, "Model monitor", tags).id]
        clarify = settings.bias is not None or settings.explainability is not None
        clarify_image = pulumi.Output.from_input(context.region or aws_context(self).region).apply(
            clarify_image_uri) if clarify else None
        role, policies = monitoring_role(self, name, settings, context, prefix, image_uri, volume_key, output_key,
                                         tags, clarify_image)

        endpoint_input = {"endpoint_name": context.endpoint_name, "local_path": LOCAL_INPUT, "s3_input_mode": "File",
                          "s3_data_distribution_type": "FullyReplicated"}
        job_input = {"endpoint_input": endpoint_input}
        if context.batch_input_format is not None:
            job_input = {"batch_transform_input": {
                "data_captured_destination_s3_uri": context.capture_s3_uri, "local_path": LOCAL_BATCH_INPUT,
                "dataset_format": {"csv": {"header": False}} if context.batch_input_format == "csv"
                else {"json": {"line": True}},
                "s3_input_mode": "File", "s3_data_distribution_type": "FullyReplicated"}}
        # What both job definitions share: instances, network, time limit, role.
        shared = dict(
            job_resources={"cluster_config": {
                "instance_count": settings.instance_count, "instance_type": settings.instance_type,
                "volume_size_in_gb": settings.volume_size_gb, "volume_kms_key_id": volume_key}},
            network_config={
                "enable_network_isolation": True,
                "enable_inter_container_traffic_encryption": True,
                "vpc_config": {"subnets": list(context.placement.subnet_ids), "security_group_ids": security_group_ids}},
            stopping_condition={"max_runtime_in_seconds": settings.max_runtime_minutes * 60},
            role_arn=role.arn)

        baseline = context.baseline(settings)
        self.job_definition = aws.sagemaker.DataQualityJobDefinition(
            job_logical_name(name),
            data_quality_app_specification={
                "image_uri": image_uri,
                "environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            data_quality_baseline_config=None if baseline is None else {
                "statistics_resource": {"s3_uri": baseline.statistics_s3_uri},
                "constraints_resource": {"s3_uri": baseline.constraints_s3_uri}},
            data_quality_job_input=job_input,
            data_quality_job_output_config={
                "kms_key_id": output_key,
                "monitoring_outputs": {"s3_output": {
                    "s3_uri": self.reports_s3_uri, "local_path": LOCAL_OUTPUT, "s3_upload_mode": "EndOfJob",
                }},
            },
            **shared,
            tags=tags,
            # SageMaker checks the role when a definition is created: wait for its policies.
            opts=child(self, depends_on=policies),
        )
        expression = settings.schedule_expression(context.production)
        self.schedule = self._schedule(schedule_logical_name(name), self.job_definition.name, "DataQuality", expression, tags)
        self.schedule_name = self.schedule.name
        self.schedule_arn = self.schedule.arn
        self.job_definition_name = self.job_definition.name

        quality = settings.model_quality
        self.quality_job_definition = self.quality_schedule = None
        if quality is not None:
            self.quality_job_definition = monitor_quality_job(
                quality_job_logical_name(name), quality, endpoint_input=endpoint_input, image_uri=image_uri,
                output_key=output_key, reports_s3_uri=concat(self.reports_s3_uri, "/model-quality"),
                tags=tags, **shared, opts=child(self, depends_on=policies))
            self.quality_schedule = self._schedule(quality_logical_name(name), self.quality_job_definition.job_definition_name,
                                                   "ModelQuality", expression, tags)

        self.topic_arn = pulumi.Output.from_input(
            context.alarm_topic_arn if context.alarm_topic_arn is not None
            else notification_topic(self, name, governance, purpose=f"the {name} model monitor",
                                    subscriptions=context.subscriptions))
        endpoint_name = context.endpoint_name
        alarms = drift_alarms(self, name, settings, endpoint_name, self.schedule_name, interval, self.topic_arn, tags)
        if self.quality_schedule is not None:
            alarms.append(quality_alarm(self, name, quality, endpoint_name, self.quality_schedule.name, interval,
                                        self.topic_arn, tags))
        run_outcome_rules(self, name, self.schedule_arn, self.topic_arn, tags)
        if self.quality_schedule is not None:
            run_outcome_rules(self, quality_logical_name(name), self.quality_schedule.arn, self.topic_arn, tags)
        self.clarify = clarify_monitors(
            self, name, settings.bias, settings.explainability, endpoint_input=endpoint_input,
            endpoint_name=endpoint_name, model_name=context.model_name, image_uri=clarify_image,
            reports_bucket=reports.bucket_name, prefix=prefix, output_key=output_key, expression=expression,
            interval_seconds=interval, topic_arn=self.topic_arn, tags=tags, depends_on=policies, **shared)
        alarms += [alarm for monitor in self.clarify for alarm in monitor.alarms]
        self.quality_schedule_arn = self.quality_schedule.arn if self.quality_schedule is not None else None
        self.clarify_schedule_arns = [monitor.schedule.arn for monitor in self.clarify]
        self.alarm_names = [alarm.name for alarm in alarms]
        self.register_outputs({
            "scheduleName": self.schedule_name,
            "scheduleArn": self.schedule_arn,
            "jobDefinitionName": self.job_definition_name,
            "topicArn": self.topic_arn,
            "reportsS3Uri": self.reports_s3_uri,
            "alarmNames": self.alarm_names,
            **({"qualityScheduleName": self.quality_schedule.name,
                "qualityJobDefinitionName": self.quality_job_definition.job_definition_name}
               if self.quality_schedule else {}),
            **({"clarifyScheduleNames": [monitor.schedule.name for monitor in self.clarify]} if self.clarify else {}),
        })

    def _schedule(self, child_name: str, job_definition_name: pulumi.Output[str], monitoring_type: str,
                  expression: str, tags: dict) -> aws.sagemaker.MonitoringSchedule:
        return aws.sagemaker.MonitoringSchedule(
            child_name,
            monitoring_schedule_config={
                "monitoring_job_definition_name": job_definition_name,
                "monitoring_type": monitoring_type,
                "schedule_config": {"schedule_expression": expression},
            },
            tags=tags,
            opts=child(self),
        )


def _check(name: str, settings: MonitoringSettings, context: MonitorContext) -> int:
    """What the settings alone cannot know: the context fits them (before anything is created). Returns the
    schedule's interval in seconds."""
    check_monitor_name(name, settings)
    if (context.endpoint_name is None) == (context.batch_input_format is None):
        raise ValueError("give endpoint_name (an endpoint's traffic) or batch_input_format (a batch transform's "
                         "captured data), not both or neither")
    if context.batch_input_format is not None and settings.model_quality is not None:
        raise ValueError("model_quality monitors an endpoint's predictions against ground truth; a batch transform's "
                         "inputs are monitored for data quality only: drop model_quality")
    if isinstance(context.capture_s3_uri, str):
        parse_s3(context.capture_s3_uri, "capture_s3_uri", prefix=True)
    if context.reports_bucket.kms_key_arn is None and None in (context.volume_kms_key_arn, context.output_kms_key_arn):
        raise ValueError("the reports bucket has no KMS key: give volume_kms_key_arn and output_kms_key_arn")
    if context.alarm_topic_arn is not None and context.subscriptions:
        raise ValueError("subscriptions apply only to the topic this monitor creates; drop them or drop "
                         "alarm_topic_arn")
    if isinstance(context.subscriptions, str):
        raise ValueError(f"subscriptions must be a list, e.g. [{context.subscriptions!r}]")
    for endpoint in context.subscriptions:
        subscription_protocol(endpoint)
    if len(set(context.subscriptions)) != len(context.subscriptions):
        raise ValueError(f"subscriptions must be unique; got {', '.join(context.subscriptions)}")
    if context.batch_input_format is not None and (settings.bias or settings.explainability):
        raise ValueError("bias and explainability monitor an endpoint's predictions; a batch transform's inputs are "
                         "monitored for data quality only: drop bias and explainability")
    if settings.explainability is not None and context.model_name is None:
        raise ValueError("explainability monitoring makes shadow endpoints of the endpoint's model: give model_name")
    if context.ground_truth_kms_key_arn is not None and settings.model_quality is None:
        raise ValueError("ground_truth_kms_key_arn is only for model-quality monitoring; give model_quality or "
                         "drop it")
    if context.production and context.baseline(settings) is None:
        raise ValueError(PRODUCTION_NEEDS_BASELINE)
    interval = schedule_interval_seconds(settings.schedule_expression(context.production))
    if settings.max_runtime_minutes * 60 > interval:
        raise ValueError(f"max_runtime_minutes ({settings.max_runtime_minutes}) is longer than the schedule's "
                         f"interval ({interval // 60} minutes); a run must end before the next one starts")
    return interval
