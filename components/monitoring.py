"""ModelMonitor: scheduled data- and model-quality monitoring of one SageMaker endpoint, with alarms.

A SageMaker data-quality job definition runs AWS's Model Monitor analyzer (its image from the SageMaker
SDK's catalogue) over the endpoint's captured data on a schedule, compares it with a baseline
(statistics and constraints from a baselining job) and writes reports under `monitoring/<name>/` of
the reports bucket. The jobs run in private subnets with network isolation, under a role that can read
only the capture prefix and the baseline, write only its reports, and publish only the analyzer's
metrics. Drift alarms and run-outcome events notify an encrypted SNS topic (monitoring_alarms.py).

With ground truth (an S3 prefix of labels) and a problem type, a model-quality job (pulumi-aws-native's,
model_quality.py: pulumi_aws has none) merges the captured predictions with the labels on the same
schedule, publishes the problem type's metrics, and one of them gets an alarm.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.aws import api_enum, partition_of
from emlops.components.aws_context import aws_context
from emlops.components.endpoint_args import is_unknown
from emlops.components.model_quality import check_model_quality, monitor_quality_job
from emlops.components.monitoring_alarms import (
    check_unique_tokens,
    drift_alarms,
    monitoring_role,
    notification_topic,
    parse_s3,
    quality_alarm,
    run_outcome_rules,
    subscription_protocol,
)
from emlops.components.network_access import https_only_security_group
from emlops.components.settings import check_security_group_ids
from emlops.components.options import child, merge_tags, type_token
from emlops.components.storage import SecureBucket

__all__ = ["ModelMonitor", "ModelMonitorArgs", "monitor_image_uri"]

HOURLY = "cron(0 * ? * * *)"
DAILY = "cron(0 0 ? * * *)"
# SageMaker's monitoring schedules accept only these (MonitoringScheduleConfig.ScheduleConfig docs):
# hourly `cron(0 * ? * * *)`, daily `cron(0 H ? * * *)` and every N hours `cron(0 H/N ? * * *)`.
# `NOW` (one run) also needs a data-analysis window, which pulumi_aws cannot set.
_SCHEDULE = re.compile(r"^cron\(0 (?P<hour>\*|[01]?[0-9]|2[0-3])(/(?P<every>[01]?[0-9]|2[0-4]))? \? \* \* \*\)$")
SCHEDULE_HELP = ("must be one of SageMaker's monitoring schedules: hourly 'cron(0 * ? * * *)', daily "
                 "'cron(0 H ? * * *)' or every N hours 'cron(0 H/N ? * * *)' (H 0-23, N 1-24)")
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_FEATURE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
# The longest child with an auto-named SageMaker name is "<name>-schedule" plus Pulumi's 8-character suffix.
MAX_MONITOR_NAME = 63 - len("-schedule") - 8


@functools.lru_cache(maxsize=1)
def processing_instance_types() -> tuple[str, ...]:
    """SageMaker's own list of processing instance types (botocore's `ProcessingInstanceType`)."""
    return api_enum("sagemaker", "ProcessingInstanceType")


def check_instance_type(instance_type: str) -> None:
    allowed = processing_instance_types()
    if instance_type not in allowed:
        import difflib

        close = difflib.get_close_matches(instance_type, allowed, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"{instance_type!r} is not a SageMaker processing instance type; {hint}"
                         "see ProcessingInstanceType in the SageMaker API")


def schedule_interval_seconds(expression: str) -> int:
    """Seconds between two runs of a monitoring schedule; ValueError if SageMaker would reject it."""
    match = _SCHEDULE.match(expression)
    if not match or match["every"] in ("0", "00"):
        raise ValueError(f"schedule_expression {expression!r} {SCHEDULE_HELP}")
    if match["hour"] == "*":
        return 3600
    return int(match["every"]) * 3600 if match["every"] else 86400


def check_monitor_name(name: str) -> None:
    if not _SAGEMAKER_NAME.match(name) or len(name) > MAX_MONITOR_NAME:
        raise ValueError(f"monitor name {name!r} must be at most {MAX_MONITOR_NAME} ASCII letters, digits and '-', "
                         "starting and ending with a letter or digit")


@dataclass
class ModelMonitorArgs:
    """Arguments of a `ModelMonitor`: scheduled data-quality monitoring of one endpoint."""

    endpoint_name: pulumi.Input[str]
    """The monitored endpoint (it must capture its input)."""
    capture_s3_uri: pulumi.Input[str]
    """The endpoint's data capture destination, `s3://<bucket>/<prefix>` (read-only for the monitor)."""
    reports_bucket: "SecureBucket"
    """Bucket the reports go to, under `monitoring/<name>/`."""
    vpc_id: Optional[pulumi.Input[str]]
    """VPC of `subnet_ids`; the job's security group (no ingress) is created in it (None: MlPlatform fills in
    its network's, with `subnet_ids`; ModelMonitor checks both are there before creating anything)."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets the monitoring jobs run in."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the jobs, e.g. the platform's one no-inbound group for its SageMaker workloads.
    Default: one is created in `vpc_id` (no inbound rule, HTTPS out only)."""
    production: bool = False
    """Production monitors run hourly and require a baseline. Default: false."""
    require_baseline: Optional[bool] = None
    """Refuse to monitor without baseline statistics and constraints. Default: `production`."""
    baseline_statistics_s3_uri: Optional[str] = None
    """`statistics.json` of the baseline job. Default: none (the analyzer only profiles the data)."""
    baseline_constraints_s3_uri: Optional[str] = None
    """`constraints.json` of the baseline job. Default: none (no violations are checked)."""
    baseline_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the baseline objects. Default: any key, only through S3, only for the baseline buckets."""
    capture_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the captured data. Default: any key, only through S3, only for the capture bucket."""
    schedule_expression: Optional[str] = None
    """When the job runs. Default: hourly `cron(0 * ? * * *)` in production, daily `cron(0 0 ? * * *)` otherwise."""
    instance_type: str = "ml.m5.xlarge"
    """Processing instance type. Default: ml.m5.xlarge."""
    instance_count: int = 1
    """Processing instances (1-100). Default: 1."""
    volume_size_gb: int = 20
    """Volume of each instance (1-16384 GB). Default: 20."""
    max_runtime_seconds: int = 3600
    """Longest a run may take; at most the schedule's interval (and 86400). Default: 3600."""
    volume_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the instances' volumes. Default: the reports bucket's key."""
    output_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key the reports are written with. Default: the reports bucket's key."""
    notification_topic_arn: Optional[pulumi.Input[str]] = None
    """Topic alarms and events notify (its policy must let cloudwatch and events publish). Default: a
    KMS-encrypted topic is created for this monitor."""
    topic_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the created topic (its policy must let cloudwatch.amazonaws.com and events.amazonaws.com use it).
    Default: a key is created for the topic."""
    subscriptions: Sequence[str] = ()
    """E-mail addresses and https:// URLs subscribed to the created topic. Default: none."""
    drift_features: Sequence[str] = ()
    """Features whose `feature_baseline_drift_<feature>` metric gets an alarm. Default: none."""
    drift_threshold: float = 0.1
    """Baseline drift (distance, 0-1 exclusive of 0) that trips a drift alarm. Default: 0.1."""
    ground_truth_s3_uri: Optional[str] = None
    """Where ground-truth labels are uploaded, `s3://<bucket>/<prefix>` (read-only for the monitor). With
    `problem_type`, a model-quality job compares them with the captured predictions on the same schedule.
    Default: none (data quality only)."""
    problem_type: Optional[str] = None
    """`BinaryClassification`, `MulticlassClassification` or `Regression` (SageMaker's MonitoringProblemType).
    Default: none."""
    inference_attribute: Optional[str] = None
    """Index (CSV) or JSONPath (JSON) of the prediction in the captured response; required for
    MulticlassClassification and Regression. Default: none."""
    probability_attribute: Optional[str] = None
    """Index or JSONPath of the probability in the captured response; required for BinaryClassification.
    Default: none."""
    probability_threshold_attribute: Optional[float] = None
    """Probability (0-1 exclusive) from which a binary prediction is positive; required for
    BinaryClassification. Default: none."""
    model_quality_metric: Optional[str] = None
    """Model-quality metric with an alarm. Default: auc (binary), accuracy (multiclass), rmse (regression)."""
    model_quality_threshold: Optional[float] = None
    """Value that trips the model-quality alarm: below it for scores (auc, f1, accuracy, r2, ...), above it
    for errors (rmse, mae, mse, false_positive_rate, false_negative_rate). Required for model quality."""
    model_quality_baseline_constraints_s3_uri: Optional[str] = None
    """`constraints.json` of a model-quality baselining job. Default: none (the alarm is the only check)."""
    ground_truth_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the ground-truth objects. Default: any key, only through S3, only for the ground-truth bucket."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of the monitoring role. Default: none."""
    region: Optional[str] = None
    """Region of the analyzer image. Default: the region of the component's provider."""
    protect: bool = False
    """Protect the topic and its key and retain them on delete. Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""

    def check_network(self) -> None:
        if not self.vpc_id or not self.subnet_ids or isinstance(self.subnet_ids, str):
            raise ValueError("monitoring jobs run in private subnets: give vpc_id and subnet_ids (a list)")

    def __post_init__(self) -> None:
        if isinstance(self.capture_s3_uri, str):
            parse_s3(self.capture_s3_uri, "capture_s3_uri", prefix=True)
        if self.vpc_id is not None or self.subnet_ids:  # neither: a platform fills in its network later
            self.check_network()
        check_security_group_ids(self.security_group_ids)
        if self.require_baseline is None:
            self.require_baseline = self.production
        given = [u for u in (self.baseline_statistics_s3_uri, self.baseline_constraints_s3_uri) if u]
        if len(given) == 1:
            raise ValueError("give both baseline_statistics_s3_uri and baseline_constraints_s3_uri, or neither")
        if self.require_baseline and not given:
            who = "a production monitor needs" if self.production else "require_baseline is set: this monitor needs"
            raise ValueError(f"{who} a baseline: give baseline_statistics_s3_uri and baseline_constraints_s3_uri "
                             "(from a baselining job)")
        for label in ("baseline_statistics_s3_uri", "baseline_constraints_s3_uri"):
            # an offline preview cannot look up a package's drift-check baselines: they stay unknown
            if getattr(self, label) and not is_unknown(getattr(self, label)):
                parse_s3(getattr(self, label), label)
        if self.schedule_expression is None:
            self.schedule_expression = HOURLY if self.production else DAILY
        interval = schedule_interval_seconds(self.schedule_expression)
        check_instance_type(self.instance_type)
        bounds = {"instance_count": (1, 100), "volume_size_gb": (1, 16384), "max_runtime_seconds": (1, 86400)}
        for label, (low, high) in bounds.items():
            if not low <= getattr(self, label) <= high:
                raise ValueError(f"{label} ({getattr(self, label)}) must be {low}-{high}")
        if self.max_runtime_seconds > interval:
            raise ValueError(f"max_runtime_seconds ({self.max_runtime_seconds}) is longer than the schedule's "
                             f"interval ({interval} s); a run must end before the next one starts")
        self._check_notifications()
        self._check_model_quality()

    def _check_model_quality(self) -> None:
        if (self.ground_truth_s3_uri is None) != (self.problem_type is None):
            raise ValueError("model-quality monitoring needs both ground_truth_s3_uri and problem_type, or neither")
        if self.ground_truth_s3_uri is None:
            given = [label for label in ("inference_attribute", "probability_attribute",
                                         "probability_threshold_attribute", "model_quality_metric",
                                         "model_quality_threshold", "model_quality_baseline_constraints_s3_uri",
                                         "ground_truth_kms_key_arn") if getattr(self, label) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only for model-quality monitoring; give ground_truth_s3_uri "
                                 "and problem_type, or drop them")
            return
        parse_s3(self.ground_truth_s3_uri, "ground_truth_s3_uri", prefix=True)
        if self.model_quality_baseline_constraints_s3_uri:
            parse_s3(self.model_quality_baseline_constraints_s3_uri, "model_quality_baseline_constraints_s3_uri")
        self.model_quality_metric = check_model_quality(
            self.problem_type, self.inference_attribute, self.probability_attribute,
            self.probability_threshold_attribute, self.model_quality_metric, self.model_quality_threshold)

    @property
    def model_quality(self) -> bool:
        """Whether the monitor also runs model-quality jobs."""
        return self.ground_truth_s3_uri is not None

    def _check_notifications(self) -> None:
        if isinstance(self.subscriptions, str):
            raise ValueError(f"subscriptions must be a list, e.g. [{self.subscriptions!r}]")
        for endpoint in self.subscriptions:
            subscription_protocol(endpoint)
        if len(set(self.subscriptions)) != len(self.subscriptions):
            raise ValueError(f"subscriptions must be unique; got {', '.join(self.subscriptions)}")
        if self.notification_topic_arn is not None and (self.subscriptions or self.topic_kms_key_arn is not None):
            raise ValueError("subscriptions and topic_kms_key_arn apply only to the topic this monitor creates; "
                             "drop them or drop notification_topic_arn")
        for feature in self.drift_features:
            if not _FEATURE.match(feature):
                raise ValueError(f"drift feature {feature!r} must be 1-128 letters, digits, '_', '.' or '-'")
        if len(set(self.drift_features)) != len(self.drift_features):
            raise ValueError(f"drift_features must be unique; got {', '.join(self.drift_features)}")
        check_unique_tokens(self.drift_features)
        if not 0 < self.drift_threshold <= 1:
            raise ValueError(f"drift_threshold ({self.drift_threshold}) must be above 0 and at most 1")

    @property
    def interval_seconds(self) -> int:
        return schedule_interval_seconds(self.schedule_expression)


@functools.lru_cache(maxsize=1)
def _monitor_catalogue() -> dict:
    # The SDK's own catalogue file, read without importing the SDK: importing sagemaker.core's
    # image_uris costs ~190 MB and seconds, which a stack with dozens of monitors must not pay.
    # A test checks this answers exactly what `image_uris.retrieve("model-monitor", region)` does.
    spec = importlib.util.find_spec("sagemaker")
    path = Path(spec.submodule_search_locations[0]) / "core" / "image_uri_config" / "model-monitor.json"
    return json.loads(path.read_text())["versions"][""]


def monitor_image_uri(region: str) -> str:
    """The Model Monitor analyzer image of `region`, from the SageMaker SDK's image catalogue."""
    catalogue = _monitor_catalogue()
    registries = catalogue["registries"]
    if region not in registries:
        raise ValueError(f"no SageMaker Model Monitor image in {region}: Unsupported region: {region}. "
                         f"Supported region(s): {', '.join(registries)}.")
    return f"{registries[region]}.dkr.ecr.{region}.{partition_of(region).dns_suffix}/{catalogue['repository']}"


LOCAL_INPUT, LOCAL_OUTPUT = "/opt/ml/processing/input/endpoint", "/opt/ml/processing/output"


class ModelMonitor(pulumi.ComponentResource):
    """A data-quality job definition and its monitoring schedule for one endpoint (and, with ground truth, a
    model-quality one), with role, network, alarms, run-outcome events and (by default) an encrypted SNS topic."""

    job_definition: aws.sagemaker.DataQualityJobDefinition
    schedule: aws.sagemaker.MonitoringSchedule
    quality_job_definition: Optional[pulumi.CustomResource]  # aws-native's ModelQualityJobDefinition
    quality_schedule: Optional[aws.sagemaker.MonitoringSchedule]
    schedule_name: pulumi.Output[str]
    schedule_arn: pulumi.Output[str]
    job_definition_name: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    reports_s3_uri: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: ModelMonitorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_monitor_name(name)
        args.check_network()
        if args.reports_bucket.kms_key_arn is None and None in (args.volume_kms_key_arn, args.output_kms_key_arn):
            raise ValueError("the reports bucket has no KMS key: give volume_kms_key_arn and output_kms_key_arn")
        super().__init__(type_token("ModelMonitor"), name, None, opts)
        tags = merge_tags(args.tags, {"model-monitor": name})
        context = aws_context(self)
        prefix = f"monitoring/{name}/"
        self.reports_s3_uri = pulumi.Output.concat("s3://", args.reports_bucket.bucket_name, "/", prefix.rstrip("/"))
        volume_key = args.volume_kms_key_arn or args.reports_bucket.kms_key_arn
        output_key = args.output_kms_key_arn or args.reports_bucket.kms_key_arn
        image_uri = pulumi.Output.from_input(args.region or context.region).apply(monitor_image_uri)

        security_group_ids = list(args.security_group_ids) or [
            https_only_security_group(self, name, args.vpc_id, "Model monitor", tags).id]
        role, policies = monitoring_role(self, name, args, prefix, image_uri, volume_key, output_key, tags)

        endpoint_input = {"endpoint_name": args.endpoint_name, "local_path": LOCAL_INPUT, "s3_input_mode": "File",
                          "s3_data_distribution_type": "FullyReplicated"}
        # What both job definitions share: instances, network, time limit, role.
        shared = dict(
            job_resources={"cluster_config": {
                "instance_count": args.instance_count, "instance_type": args.instance_type,
                "volume_size_in_gb": args.volume_size_gb, "volume_kms_key_id": volume_key}},
            network_config={
                "enable_network_isolation": True,
                "enable_inter_container_traffic_encryption": True,
                "vpc_config": {"subnets": list(args.subnet_ids), "security_group_ids": security_group_ids}},
            stopping_condition={"max_runtime_in_seconds": args.max_runtime_seconds},
            role_arn=role.arn)

        baseline = None
        if args.baseline_statistics_s3_uri:
            baseline = {"statistics_resource": {"s3_uri": args.baseline_statistics_s3_uri},
                        "constraints_resource": {"s3_uri": args.baseline_constraints_s3_uri}}
        self.job_definition = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-job",
            data_quality_app_specification={
                "image_uri": image_uri,
                "environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            data_quality_baseline_config=baseline,
            data_quality_job_input={"endpoint_input": endpoint_input},
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
        self.schedule = self._schedule(f"{name}-schedule", self.job_definition.name, "DataQuality", args, tags)
        self.schedule_name = self.schedule.name
        self.schedule_arn = self.schedule.arn
        self.job_definition_name = self.job_definition.name

        self.quality_job_definition = self.quality_schedule = None
        if args.model_quality:
            self.quality_job_definition = monitor_quality_job(
                f"{name}-quality-job", args, endpoint_input=endpoint_input, image_uri=image_uri,
                output_key=output_key, reports_s3_uri=pulumi.Output.concat(self.reports_s3_uri, "/model-quality"),
                tags=tags, **shared, opts=child(self, depends_on=policies))
            self.quality_schedule = self._schedule(f"{name}-quality", self.quality_job_definition.job_definition_name,
                                                   "ModelQuality", args, tags)

        self.topic_arn = pulumi.Output.from_input(
            args.notification_topic_arn if args.notification_topic_arn is not None
            else notification_topic(self, name, args, tags))
        alarms = drift_alarms(self, name, args, self.schedule_name, self.topic_arn, tags)
        if self.quality_schedule is not None:
            alarms.append(quality_alarm(self, name, args, self.quality_schedule.name, self.topic_arn, tags))
        run_outcome_rules(self, name, self.schedule_arn, self.topic_arn, tags)
        if self.quality_schedule is not None:
            run_outcome_rules(self, f"{name}-quality", self.quality_schedule.arn, self.topic_arn, tags)
        self.alarm_names = [alarm.name for alarm in alarms]
        self.register_outputs({
            "scheduleName": self.schedule_name,
            "scheduleArn": self.schedule_arn,
            "jobDefinitionName": self.job_definition_name,
            "topicArn": self.topic_arn,
            "reportsS3Uri": self.reports_s3_uri,
            "alarmNames": self.alarm_names,
            **({"qualityScheduleName": self.quality_schedule.name,
                "qualityJobDefinitionName": self.quality_job_definition.job_definition_name} if self.quality_schedule else {}),
        })

    def _schedule(self, child_name: str, job_definition_name: pulumi.Output[str], monitoring_type: str,
                  args: ModelMonitorArgs, tags: dict) -> aws.sagemaker.MonitoringSchedule:
        return aws.sagemaker.MonitoringSchedule(
            child_name,
            monitoring_schedule_config={
                "monitoring_job_definition_name": job_definition_name,
                "monitoring_type": monitoring_type,
                "schedule_config": {"schedule_expression": args.schedule_expression},
            },
            tags=tags,
            opts=child(self),
        )
