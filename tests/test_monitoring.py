"""ModelMonitor: its settings (a stack file's `models[].monitoring`) and their checks, the checks of its context,
every child and its inputs, the role, and notifications."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from typing import Any, Callable, Optional

import pulumi
import pytest
from pydantic import BaseModel, ValidationError

from emlops.catalog.requests import to_api_request, validate_request
from emlops.components.alerts import AlertsSettings
from emlops.components.images import monitor_image_uri
from emlops.components.monitoring import ModelMonitor, MonitorContext, MonitoringSettings
from emlops.components.monitoring_args import (
    PRODUCTION_NEEDS_BASELINE,
    PRODUCTION_NEEDS_MONITORING,
    DriftBaseline,
    schedule_interval_seconds,
)
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from tests.conftest import (
    ACCOUNT, allow, api_problems, auto_name, concern_statements as statements, concerns, REGION, ROOT, run_components,
)

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:ModelMonitor"
ROLE_COMPONENT, KMS_COMPONENT = "emlops:index:ServiceRole", "emlops:index:KmsKey"
BUCKET_COMPONENT = "emlops:index:SecureBucket"
SG = "aws:ec2/securityGroup:SecurityGroup"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
KEY, ALIAS = "aws:kms/key:Key", "aws:kms/alias:Alias"
TOPIC, TOPIC_POLICY = "aws:sns/topic:Topic", "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE, TARGET = "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
CAPTURE_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/99999999-2222-4333-8444-555555555555"
VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
CAPTURE = "s3://ml-capture/datacapture/churn"
STATISTICS = "s3://ml-baselines/churn/statistics.json"
CONSTRAINTS = "s3://ml-baselines/churn/constraints.json"
BASELINE = {"statistics_s3_uri": STATISTICS, "constraints_s3_uri": CONSTRAINTS}
IMAGE = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
EXTERNAL_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ml-alerts"
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
SCHEDULE_HELP = ("must be one of SageMaker's monitoring schedules: hourly 'cron(0 * ? * * *)', daily "
                 "'cron(0 H ? * * *)' or every N hours 'cron(0 H/N ? * * *)' (H 0-23, N 1-24)")
S3_OBJECT_PATTERN = "must be an S3 object URI, s3://<bucket>/<key>"
S3_PREFIX_PATTERN = "must be an S3 URI, s3://<bucket>/[<prefix>]"
TAGS = {"team": "churn", "model-monitor": "churn"}


class FakeBucket:
    """Stands in for a SecureBucket in the context checks (which run before anything is registered)."""

    kms_key_arn = KEY_ARN


def settings(section: Optional[dict[str, Any]] = None) -> MonitoringSettings:
    """The settings of a stack file's `monitoring:` section."""
    return MonitoringSettings.model_validate(section or {})


def context(**changes: Any) -> MonitorContext:
    """A non-production monitor's context (what MlPlatform supplies), with `changes`."""
    return MonitorContext(**{"endpoint_name": "churn", "capture_s3_uri": CAPTURE, "reports_bucket": FakeBucket(),
                             "placement": Placement(VPC, SUBNETS), **changes})


def error_of(factory: Callable[[], Any]) -> str:
    """The message of the ValueError (not a settings ValidationError) `factory` raises."""
    with pytest.raises(ValueError) as caught:
        factory()
    assert type(caught.value) is ValueError
    return str(caught.value)


def settings_error(raw: Any, model: type[BaseModel] = MonitoringSettings) -> str:
    """`<key path>: <message>` of the one error validating `raw` as `model` finds."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    [error] = caught.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg'].removeprefix('Value error, ')}"


# -- settings (a stack file's monitoring section) -------------------------------------------------------

def test_monitoring_settings_defaults():
    assert MonitoringSettings().model_dump() == {
        "enabled": None, "schedule": None, "instance_type": "ml.m5.xlarge", "instance_count": 1,
        "volume_size_gb": 20, "max_runtime_minutes": 60, "baseline": None, "drift_features": [],
        "drift_threshold": 0.1, "model_quality": None, "bias": None, "explainability": None}
    assert AlertsSettings().subscriptions == []
    assert (MonitoringSettings().is_enabled(True), MonitoringSettings().is_enabled(False),
            settings({"enabled": False}).is_enabled(True)) == (True, False, False)


def test_the_stack_file_embeds_the_monitoring_settings():
    from emlops.program.config_models import ModelConfig

    assert ModelConfig.model_fields["monitoring"].annotation is MonitoringSettings
    section = {"baseline": BASELINE, "model_quality": {
        "ground_truth_s3_uri": "s3://ml-ground-truth/churn", "problem_type": "BinaryClassification",
        "probability_attribute": "0", "probability_threshold": 0.5, "metric": "f1", "threshold": 0.75,
        "baseline_constraints_s3_uri": "s3://ml-baselines/churn/quality/constraints.json"}}
    monitoring = settings(section)
    assert monitoring.baseline.model_dump() == BASELINE
    assert monitoring.model_quality.model_dump() == {**section["model_quality"], "inference_attribute": None}


@pytest.mark.parametrize("section, raw, message", [
    *[(MonitoringSettings, {"schedule": cron}, f"schedule: {cron!r} {SCHEDULE_HELP}") for cron in (
        "cron(0 19 ? * MON-FRI *)", "cron(30 * ? * * *)", "cron(0 0/12 ? * MON *)", "rate(1 hour)", "NOW",
        "cron(0 * * * ? *)")],
    # outside the cron grammar itself: the field and its range (components/schedules.py)
    (MonitoringSettings, {"schedule": "cron(0 24 ? * * *)"}, "schedule: 'cron(0 24 ? * * *)': hours '24' is outside 0-23"),
    (MonitoringSettings, {"schedule": "cron(0 0/0 ? * * *)"},
     "schedule: 'cron(0 0/0 ? * * *)': hours '0/0' has increment '0'; increments are 1-24"),
    (MonitoringSettings, {"schedule": "cron(0 0/25 ? * * *)"},
     "schedule: 'cron(0 0/25 ? * * *)': hours '0/25' has increment '25'; increments are 1-24"),
    (MonitoringSettings, {"schedule": "cron(0 * * * * *)"},
     "schedule: 'cron(0 * * * * *)': exactly one of day-of-month and day-of-week must be '?'"),
    (MonitoringSettings, {"instance_type": "ml.m5.huge"},
     "instance_type: 'ml.m5.huge' is not a SageMaker processing instance type; did you mean 'ml.m5.large'?"),
    (MonitoringSettings, {"instance_type": "ml.inf2.xlarge"},
     "instance_type: 'ml.inf2.xlarge' is not a SageMaker processing instance type; did you mean 'ml.p2.xlarge'?"),
    *[(MonitoringSettings, {label: value}, f"{label}: Input should be {bound}")
      for label, low, high in (("instance_count", 1, 100), ("volume_size_gb", 1, 16384),
                               ("max_runtime_minutes", 1, 1440))
      for value, bound in ((low - 1, f"greater than or equal to {low}"), (high + 1, f"less than or equal to {high}"))],
    (MonitoringSettings, {"drift_features": ["age group"]},
     "drift_features: drift feature 'age group' must be 1-128 letters, digits, '_', '.' or '-'"),
    (MonitoringSettings, {"drift_features": ["age", "age"]}, "drift_features: must be unique; got age, age"),
    (MonitoringSettings, {"drift_features": ["tenure_months", "tenure.months"]},
     "drift_features: tenure_months, tenure.months collide in resource names; rename one"),
    (MonitoringSettings, {"drift_threshold": 0}, "drift_threshold: Input should be greater than 0"),
    (MonitoringSettings, {"drift_threshold": 1.5}, "drift_threshold: Input should be less than or equal to 1"),
    (MonitoringSettings, {"baseline": {"statistics_s3_uri": STATISTICS}},
     "baseline.constraints_s3_uri: Field required"),
    *[(MonitoringSettings, {"baseline": {**BASELINE, "statistics_s3_uri": uri}},
       f"baseline.statistics_s3_uri: {S3_OBJECT_PATTERN}")
      for uri in ("ml-baselines/statistics.json", "s3://ml-baselines/churn/", "s3://Bad_Bucket/x.json")],
    (MonitoringSettings, {"baseline": {**BASELINE, "constraints_s3_uri": "ml-baselines/constraints.json"}},
     f"baseline.constraints_s3_uri: {S3_OBJECT_PATTERN}"),
    (MonitoringSettings, {"ground_truth": "s3://b/gt/"}, "ground_truth: Extra inputs are not permitted"),
    (AlertsSettings, {"email": ["https://hooks.example.com/x"]},
     "email: 'https://hooks.example.com/x' is not an e-mail address"),
    (AlertsSettings, {"https": ["ml-oncall@example.com"]}, "https: 'ml-oncall@example.com' is not an https:// URL"),
    (AlertsSettings, {"https": ["http://hooks.example.com/x"]},
     "https: 'http://hooks.example.com/x' is not an https:// URL"),
    (AlertsSettings, {"email": ["oncall"]}, "email: 'oncall' is not an e-mail address"),
    (AlertsSettings, {"email": ["a@example"]}, "email: 'a@example' is not an e-mail address"),
    (AlertsSettings, {"email": ["a@example.com", "a@example.com"]},
     "email: must be unique; got a@example.com, a@example.com"),
])
def test_settings_reject_with_one_line(section, raw, message):
    assert settings_error(raw, section) == message


@pytest.mark.parametrize("section, production, schedule, interval", [
    ({}, False, "cron(0 0 ? * * *)", 86400),
    ({}, True, "cron(0 * ? * * *)", 3600),
    ({"schedule": "cron(0 17/12 ? * * *)"}, False, "cron(0 17/12 ? * * *)", 43200),
    ({"schedule": "cron(0 0/24 ? * * *)"}, False, "cron(0 0/24 ? * * *)", 86400),
    ({"schedule": "cron(0 9 ? * * *)"}, True, "cron(0 9 ? * * *)", 86400),
])
def test_schedule_defaults_to_hourly_in_production_and_daily_otherwise(section, production, schedule, interval):
    expression = settings(section).schedule_expression(production)
    assert (expression, schedule_interval_seconds(expression)) == (schedule, interval)


@pytest.mark.parametrize("section, captures, production, problem", [
    ({}, True, False, None),
    ({}, False, False, None),
    ({"enabled": False}, True, False, None),
    ({"baseline": BASELINE}, True, True, None),
    ({}, True, True, ("baseline", PRODUCTION_NEEDS_BASELINE)),
    ({"enabled": False}, True, True, ("enabled", PRODUCTION_NEEDS_MONITORING)),
    ({"enabled": True}, False, False, ("enabled", "monitoring reads captured data; enable data_capture")),
    ({"baseline": BASELINE, "max_runtime_minutes": 61}, True, True,
     ("max_runtime_minutes", "61 minutes is longer than the schedule's interval (60 minutes)")),
    ({"max_runtime_minutes": 61, "schedule": "cron(0 0/2 ? * * *)"}, True, False, None),
    ({"max_runtime_minutes": 121, "schedule": "cron(0 0/2 ? * * *)"}, True, False,
     ("max_runtime_minutes", "121 minutes is longer than the schedule's interval (120 minutes)")),
])
def test_settings_problem_for_the_platform_validator(section, captures, production, problem):
    assert settings(section).problem(captures, production) == problem
    assert PRODUCTION_NEEDS_BASELINE == ("production monitors need a baseline: add statistics_s3_uri and "
                                         "constraints_s3_uri from a baselining job (models served from a model "
                                         "package may use the package's drift-check baselines instead)")
    assert PRODUCTION_NEEDS_MONITORING == "production endpoints are monitored; remove enabled: false"


def test_a_production_model_from_a_package_may_take_the_packages_baselines():
    assert settings().problem(True, True, package_source=True) is None
    assert settings().problem(True, True, package_source=False) == ("baseline", PRODUCTION_NEEDS_BASELINE)


# -- context (checked against the settings before anything is created) -----------------------------------

@pytest.mark.parametrize("name", ["churn_1", "", "-churn", "churn-", "a" * 42])
def test_monitor_name_is_checked_before_anything_is_created(name):
    assert error_of(lambda: ModelMonitor(name, settings(), context())) == (
        f"monitor name {name!r} must be at most 41 ASCII letters, digits and '-', starting and ending with a "
        "letter or digit")


@pytest.mark.parametrize("section, changes, message", [
    ({}, {"capture_s3_uri": "https://ml-capture/datacapture"},
     "capture_s3_uri 'https://ml-capture/datacapture' is not an s3://<bucket>[/<prefix>] URI"),
    ({}, {"alarm_topic_arn": EXTERNAL_TOPIC, "subscriptions": ["a@example.com"]},
     "subscriptions apply only to the topic this monitor creates; drop them or drop alarm_topic_arn"),
    *[({}, {"subscriptions": [endpoint]}, f"subscription {endpoint!r} must be an e-mail address or an https:// URL")
      for endpoint in ("oncall", "http://hooks.example.com/x", "a@example")],
    ({}, {"production": True}, PRODUCTION_NEEDS_BASELINE),
    ({"baseline": BASELINE, "max_runtime_minutes": 61}, {"production": True},
     "max_runtime_minutes (61) is longer than the schedule's interval (60 minutes); a run must end before the next "
     "one starts"),
    ({"schedule": "cron(0 0/2 ? * * *)", "max_runtime_minutes": 121}, {},
     "max_runtime_minutes (121) is longer than the schedule's interval (120 minutes); a run must end before the "
     "next one starts"),
    ({}, {"endpoint_name": None}, "give endpoint_name (an endpoint's traffic) or batch_input_format (a batch "
     "transform's captured data), not both or neither"),
    ({}, {"batch_input_format": "csv"}, "give endpoint_name (an endpoint's traffic) or batch_input_format (a batch "
     "transform's captured data), not both or neither"),
    ({"model_quality": {"ground_truth_s3_uri": "s3://ml-ground-truth/churn", "problem_type": "Regression",
                        "inference_attribute": "0", "threshold": 3.0}},
     {"endpoint_name": None, "batch_input_format": "csv"},
     "model_quality monitors an endpoint's predictions against ground truth; a batch transform's inputs are "
     "monitored for data quality only: drop model_quality"),
])
def test_the_context_is_checked_before_anything_is_created(section, changes, message):
    assert error_of(lambda: ModelMonitor("churn", settings(section), context(**changes))) == message


@pytest.mark.parametrize("vpc_id, subnet_ids", [("", SUBNETS), (VPC, []), (VPC, SUBNETS[0])])
def test_monitoring_jobs_run_in_private_subnets(vpc_id, subnet_ids):
    assert error_of(lambda: Placement(vpc_id, subnet_ids)) == "a placement needs vpc_id and a list of subnet_ids"


def test_reports_bucket_without_a_key_needs_explicit_keys():
    def program() -> None:
        logs = SecureBucket("logs", SecureBucketArgs(sse_algorithm="AES256", receives_access_logs=True))
        ModelMonitor("churn", settings(), context(reports_bucket=logs))
    assert error_of(lambda: run_components(program)) == (
        "the reports bucket has no KMS key: give volume_kms_key_arn and output_kms_key_arn")


def test_analyzer_image_is_what_the_sdk_retrieves_for_every_region():
    from sagemaker.core import image_uris

    from emlops.components.images import _monitor_catalogue

    for region in _monitor_catalogue()["registries"]:
        assert monitor_image_uri(region) == image_uris.retrieve(framework="model-monitor", region=region), region


def test_analyzer_image_comes_from_the_sdk_catalogue_and_costs_nothing_until_used():
    assert monitor_image_uri("eu-west-1") == IMAGE
    assert monitor_image_uri("us-east-1") == "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    from emlops.components.images import _monitor_catalogue

    assert error_of(lambda: monitor_image_uri("xx-nowhere-1")) == (
        "no SageMaker Model Monitor image in xx-nowhere-1: Unsupported region: xx-nowhere-1. Supported region(s): "
        f"{', '.join(_monitor_catalogue()['registries'])}.")
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, emlops.components.monitoring, emlops.program.config_models; "
                               "print(any(m.startswith('sagemaker') for m in sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"


# -- a production monitor with everything -------------------------------------------------------------

FULL = {"baseline": BASELINE, "drift_features": ["age", "tenure_months"], "drift_threshold": 0.2,
        "instance_type": "ml.m5.large", "instance_count": 2, "volume_size_gb": 50, "max_runtime_minutes": 30}


@functools.cache
def full_plan(protect: bool = True) -> Plan:
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        monitor = ModelMonitor("churn", settings(FULL), context(
            reports_bucket=reports, production=True,
            subscriptions=["ml-oncall@example.com", "https://hooks.example.com/ml"],
            governance=Governance({"team": "churn"}, protect=protect)))
        pulumi.export("monitor", {"scheduleName": monitor.schedule_name, "scheduleArn": monitor.schedule_arn,
                                  "jobDefinitionName": monitor.job_definition_name, "topicArn": monitor.topic_arn,
                                  "reportsS3Uri": monitor.reports_s3_uri, "alarmNames": monitor.alarm_names})
    return run_components(program)


POLICIES = ("read-capture", "read-baseline", "write-reports", "volume-key", "pull-image", "logs", "vpc-access",
            "metrics")


def test_monitor_children_are_named_after_it():
    plan = full_plan()
    component = plan.get("churn", COMPONENT)
    assert component.parent == plan.get("emlops-test", STACK).urn
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (SG, "churn-sg"), (ROLE_COMPONENT, "churn-execution"), (JOB, "churn-job"), (SCHEDULE, "churn-schedule"),
        (KMS_COMPONENT, "churn-topic-key"), (TOPIC, "churn-topic"), (TOPIC_POLICY, "churn-topic-policy"),
        (SUBSCRIPTION, "churn-email-0"), (SUBSCRIPTION, "churn-https-1"),
        (ALARM, "churn-drift-age"), (ALARM, "churn-drift-tenure-months"),
        (RULE, "churn-failed"), (TARGET, "churn-failed-notify"), (RULE, "churn-violations"),
        (TARGET, "churn-violations-notify")]
    assert [(r.type, r.name) for r in plan.children(plan.get("churn-execution", ROLE_COMPONENT).urn)] == [
        (ROLE, "churn-execution-role"), (ROLE_POLICY, "churn-execution-permissions")]
    # one inline policy for the role, its concerns in order
    assert list(dict.fromkeys(sid.rstrip("0123456789") for sid in concerns(plan, "churn-execution"))) == [
        "".join(part.capitalize() for part in p.split("-")) for p in POLICIES]
    assert {t: n for t, n in plan.type_counts().items() if not t.startswith("aws:s3/")} == {
        STACK: 1, BUCKET_COMPONENT: 1, COMPONENT: 1, SG: 1, ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 1, JOB: 1,
        SCHEDULE: 1, KMS_COMPONENT: 1, KEY: 1, ALIAS: 1, TOPIC: 1, TOPIC_POLICY: 1, SUBSCRIPTION: 2, ALARM: 2,
        RULE: 2, TARGET: 2}


def test_job_definition_runs_the_analyzer_in_the_vpc_with_isolation_and_kms():
    plan = full_plan()
    job, sg = plan.get("churn-job"), plan.get("churn-sg")
    reports = plan.get("reports-bucket").inputs["bucket"]
    assert sg.inputs == {
        "name": auto_name(sg), "vpcId": VPC, "ingress": [], "revokeRulesOnDelete": True, "tags": TAGS,
        "description": "Model monitor churn: no inbound; HTTPS out to VPC endpoints only",
        "egress": [{"description": "HTTPS to the VPC endpoints and the S3 gateway (private subnets, no internet route)",
                    "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]}
    security_group_id = job.inputs["networkConfig"]["vpcConfig"]["securityGroupIds"][0]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", security_group_id)
    assert job.inputs == {
        "name": auto_name(job), "tags": TAGS,
        "dataQualityAppSpecification": {"imageUri": IMAGE, "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        "dataQualityBaselineConfig": {"statisticsResource": {"s3Uri": STATISTICS},
                                      "constraintsResource": {"s3Uri": CONSTRAINTS}},
        "dataQualityJobInput": {"endpointInput": {
            "endpointName": "churn", "localPath": "/opt/ml/processing/input/endpoint", "s3InputMode": "File",
            "s3DataDistributionType": "FullyReplicated"}},
        "dataQualityJobOutputConfig": {"kmsKeyId": KEY_ARN, "monitoringOutputs": {"s3Output": {
            "s3Uri": f"s3://{reports}/monitoring/churn", "localPath": "/opt/ml/processing/output",
            "s3UploadMode": "EndOfJob"}}},
        "jobResources": {"clusterConfig": {"instanceCount": 2, "instanceType": "ml.m5.large", "volumeSizeInGb": 50,
                                           "volumeKmsKeyId": KEY_ARN}},
        "networkConfig": {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True,
                          "vpcConfig": {"subnets": SUBNETS, "securityGroupIds": [security_group_id]}},
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{plan.get('churn-execution-role').inputs['name']}",
        "stoppingCondition": {"maxRuntimeInSeconds": 1800},
    }
    # the reports prefix names the bucket; SageMaker checks the role when the definition is created
    assert set(job.dependencies) == {plan.get(n).urn for n in ("churn-sg", "churn-execution-role", "reports-bucket")} | {
        r.urn for r in plan.by_type(ROLE_POLICY)}


def test_job_definition_is_a_valid_create_request():
    inputs = copy.deepcopy(full_plan().get("churn-job").inputs)
    # pulumi_aws models the API's one-element MonitoringOutputs list as one block, which the request
    # translator does not wrap (yet): that is the only difference, and wrapping it makes a valid request.
    assert api_problems(full_plan().get("churn-job")) in ([], [
        "CreateDataQualityJobDefinition: DataQualityJobOutputConfig.MonitoringOutputs: expected list, got dict "
        f"{inputs['dataQualityJobOutputConfig']['monitoringOutputs']!r}"])
    output = inputs["dataQualityJobOutputConfig"]
    output["monitoringOutputs"] = [output["monitoringOutputs"]]
    assert validate_request(to_api_request(JOB, inputs)) == []


def test_schedule_runs_the_job_definition_hourly_in_production():
    plan = full_plan()
    schedule = plan.get("churn-schedule")
    assert schedule.inputs == {
        "name": auto_name(schedule), "tags": TAGS,
        "monitoringScheduleConfig": {"monitoringJobDefinitionName": plan.get("churn-job").inputs["name"],
                                     "monitoringType": "DataQuality",
                                     "scheduleConfig": {"scheduleExpression": "cron(0 * ? * * *)"}}}
    assert api_problems(schedule) == []


def test_role_reads_capture_and_baseline_writes_reports_and_publishes_only_analyzer_metrics():
    plan = full_plan()
    reports = plan.get("reports-bucket").inputs["bucket"]
    role = plan.get("churn-execution-role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]}, "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]
    assert role.inputs["description"] == "Runs the churn model monitor's jobs"
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/ProcessingJobs"
    use_key = ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
               "kms:ReEncryptTo"]
    expected = {
        "read-capture": [
            allow(["s3:ListBucket"], ["arn:aws:s3:::ml-capture"], {"StringLike": {"s3:prefix": ["datacapture/churn/*"]}}),
            allow(["s3:GetObject"], ["arn:aws:s3:::ml-capture/datacapture/churn/*"]),
            allow(["kms:Decrypt"], ["*"], {"StringEquals": VIA_S3, "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-capture", "arn:aws:s3:::ml-capture/*"]}})],
        "read-baseline": [
            allow(["s3:GetObject"], ["arn:aws:s3:::ml-baselines/churn/statistics.json",
                                     "arn:aws:s3:::ml-baselines/churn/constraints.json"]),
            allow(["kms:Decrypt"], ["*"], {"StringEquals": VIA_S3, "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-baselines", "arn:aws:s3:::ml-baselines/*"]}})],
        "write-reports": [
            allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"arn:aws:s3:::{reports}/monitoring/churn/*"]),
            allow(use_key, [KEY_ARN], {"StringEquals": VIA_S3})],
        "volume-key": [
            allow(use_key, [KEY_ARN]),
            allow(["kms:CreateGrant"], [KEY_ARN], {"Bool": {"kms:GrantIsForAWSResource": "true"}})],
        "pull-image": [
            allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                  ["arn:aws:ecr:eu-west-1:468650794304:repository/sagemaker-model-monitor-analyzer"]),
            allow(["ecr:GetAuthorizationToken"], ["*"])],
        "logs": [
            allow(["logs:CreateLogGroup"], [log_group]),
            allow(["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  [f"{log_group}:log-stream:*"])],
        "vpc-access": [
            allow(["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                   "ec2:DescribeSubnets", "ec2:DescribeVpcs"], ["*"]),
            allow(["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                   "ec2:DeleteNetworkInterfacePermission"], ["*"],
                  {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC}"}})],
        "metrics": [allow(["cloudwatch:PutMetricData"], ["*"], {"StringEquals": {"cloudwatch:namespace": NAMESPACE}})],
    }
    assert {p: statements(plan, f"churn-execution-{p}") for p in POLICIES} == expected


def test_topic_is_encrypted_and_only_this_accounts_alarms_and_rules_publish():
    plan = full_plan()
    topic = plan.get("churn-topic")
    key = plan.get("churn-topic-key-key")
    assert topic.inputs == {"name": auto_name(topic), "kmsMasterKeyId": topic.inputs["kmsMasterKeyId"], "tags": TAGS}
    assert re.fullmatch(rf"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}", topic.inputs["kmsMasterKeyId"])
    assert key.inputs["description"] == "Encrypts the notifications of the churn model monitor"
    key_users = json.loads(key.inputs["policy"])["Statement"][1]
    assert key_users == {
        "Sid": "ServicesUseKeyForThisAccount", "Effect": "Allow",
        "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        "Resource": ["*"], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic.inputs['name']}"
    policy = plan.get("churn-topic-policy")
    assert policy.inputs["arn"] == topic_arn
    this_account = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert json.loads(policy.inputs["policy"]) == {"Version": "2012-10-17", "Statement": [
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": ["sns:Publish"],
         "Resource": [topic_arn], "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "CloudWatchAlarmsOfThisAccount", "Effect": "Allow",
         "Principal": {"Service": ["cloudwatch.amazonaws.com"]}, "Action": ["sns:Publish"], "Resource": [topic_arn],
         "Condition": this_account},
        {"Sid": "EventBridgeRulesOfThisAccount", "Effect": "Allow",
         "Principal": {"Service": ["events.amazonaws.com"]}, "Action": ["sns:Publish"], "Resource": [topic_arn],
         "Condition": this_account}]}
    assert [s.inputs for s in plan.by_type(SUBSCRIPTION)] == [
        {"topic": topic_arn, "protocol": "email", "endpoint": "ml-oncall@example.com"},
        {"topic": topic_arn, "protocol": "https", "endpoint": "https://hooks.example.com/ml"}]


def test_drift_alarms_and_run_outcome_rules_notify_the_topic():
    plan = full_plan()
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{plan.get('churn-topic').inputs['name']}"
    schedule_name = plan.get("churn-schedule").inputs["name"]
    for feature, token in (("age", "age"), ("tenure_months", "tenure-months")):
        alarm = plan.get(f"churn-drift-{token}")
        assert alarm.inputs == {
            "name": auto_name(alarm), "tags": TAGS,
            "alarmDescription": f"churn: baseline drift of feature {feature} above 0.2",
            "namespace": NAMESPACE, "metricName": f"feature_baseline_drift_{feature}",
            "dimensions": {"Endpoint": "churn", "MonitoringSchedule": schedule_name},
            "statistic": "Maximum", "period": 3600, "evaluationPeriods": 1,
            "comparisonOperator": "GreaterThanThreshold", "threshold": 0.2, "treatMissingData": "notBreaching",
            "alarmActions": [topic_arn], "okActions": [topic_arn]}
    schedule_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{schedule_name}"
    outcomes = {"failed": ("a monitoring run failed or was stopped", {"ProcessingJobStatus": ["Failed", "Stopped"]}),
                "violations": ("a monitoring run found constraint violations", {
                    "ProcessingJobStatus": ["Completed"], "ExitMessage": [{"prefix": "CompletedWithViolations"}]})}
    for suffix, (what, detail) in outcomes.items():
        rule = plan.get(f"churn-{suffix}")
        assert {**rule.inputs, "eventPattern": json.loads(rule.inputs["eventPattern"])} == {
            "name": auto_name(rule), "description": f"churn: {what}", "tags": TAGS, "eventPattern": {
                "source": ["aws.sagemaker"], "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {"MonitoringScheduleArn": [schedule_arn], **detail}}}
        assert plan.get(f"churn-{suffix}-notify").inputs == {"rule": rule.inputs["name"], "arn": topic_arn}


def test_outputs_name_the_schedule_job_topic_reports_and_alarms():
    plan = full_plan()
    name = lambda n: plan.get(n).inputs["name"]  # noqa: E731
    assert plan.outputs["monitor"] == {
        "scheduleName": name("churn-schedule"),
        "scheduleArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{name('churn-schedule')}",
        "jobDefinitionName": name("churn-job"),
        "topicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name('churn-topic')}",
        "reportsS3Uri": f"s3://{plan.get('reports-bucket').inputs['bucket']}/monitoring/churn",
        "alarmNames": [name("churn-drift-age"), name("churn-drift-tenure-months")]}


@pytest.mark.parametrize("protect", [True, False])
def test_protect_keeps_the_topic_and_its_key_and_nothing_else(protect):
    plan = full_plan(protect)
    protected = {(r.name, r.protect, r.retain_on_delete) for r in plan.resources if r.protect or r.retain_on_delete}
    assert protected == ({("churn-topic", True, True), ("churn-topic-key-key", True, True)} if protect else set())


# -- variations --------------------------------------------------------------------------------------

def plan_with(section: Optional[dict[str, Any]] = None, **changes: Any) -> Plan:
    """A monitor with the settings of `section` and a context with `changes`."""
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        ModelMonitor("churn", settings(section), context(reports_bucket=reports, **changes))
    return run_components(program)


def test_an_existing_topic_gets_the_notifications_and_no_topic_is_created():
    plan = plan_with({"drift_features": ["age"]}, alarm_topic_arn=EXTERNAL_TOPIC)
    component = plan.get("churn", COMPONENT)
    assert [r.name for r in plan.children(component.urn)] == [
        "churn-sg", "churn-execution", "churn-job", "churn-schedule", "churn-drift-age", "churn-failed",
        "churn-failed-notify", "churn-violations", "churn-violations-notify"]
    assert plan.get("churn-drift-age").inputs["alarmActions"] == [EXTERNAL_TOPIC]
    assert [t.inputs["arn"] for t in plan.by_type(TARGET)] == [EXTERNAL_TOPIC, EXTERNAL_TOPIC]


@pytest.mark.parametrize("dataset_format, expected", [("csv", {"csv": {"header": False}}),
                                                     ("json", {"json": {"line": True}})])
def test_a_batch_transforms_captured_inputs_are_monitored_by_schedule_alone(dataset_format, expected):
    capture = "s3://ml-inference/datacapture/churn-scoring"
    plan = plan_with({"baseline": BASELINE, "drift_features": ["age"]}, endpoint_name=None,
                     batch_input_format=dataset_format, capture_s3_uri=capture, alarm_topic_arn=EXTERNAL_TOPIC)
    job = plan.get("churn-job", JOB)
    assert job.inputs["dataQualityJobInput"] == {"batchTransformInput": {
        "dataCapturedDestinationS3Uri": capture, "datasetFormat": expected, "localPath": "/opt/ml/processing/input/batch",
        "s3DataDistributionType": "FullyReplicated", "s3InputMode": "File"}}
    assert api_problems(job) == []
    # the analyzer publishes a batch transform's metrics under the schedule alone
    schedule = plan.get("churn-schedule", SCHEDULE).inputs["name"]
    alarm = plan.get("churn-drift-age", ALARM)
    assert (alarm.inputs["namespace"], alarm.inputs["dimensions"]) == (
        "aws/sagemaker/ModelMonitoring/data-metrics", {"MonitoringSchedule": schedule})
    assert statements(plan, "churn-execution-metrics")[0]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "aws/sagemaker/ModelMonitoring/data-metrics"}}
    assert statements(plan, "churn-execution-read-capture")[:2] == [
        allow(["s3:ListBucket"], ["arn:aws:s3:::ml-inference"],
              {"StringLike": {"s3:prefix": ["datacapture/churn-scoring/*"]}}),
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-inference/datacapture/churn-scoring/*"])]


def test_a_dev_monitor_without_baseline_only_profiles_daily():
    plan = plan_with(capture_kms_key_arn=CAPTURE_KEY, region="us-east-1")
    job = plan.get("churn-job")
    assert "dataQualityBaselineConfig" not in job.inputs
    assert job.inputs["dataQualityAppSpecification"]["imageUri"] == (
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer")
    assert plan.get("churn-schedule").inputs["monitoringScheduleConfig"]["scheduleConfig"] == {
        "scheduleExpression": "cron(0 0 ? * * *)"}
    assert "ReadBaseline" not in concerns(plan, "churn-execution")
    assert [r.name for r in plan.by_type(ROLE_POLICY)] == ["churn-execution-permissions"]
    assert statements(plan, "churn-execution-read-capture")[2] == allow(
        ["kms:DescribeKey", "kms:Decrypt"], [CAPTURE_KEY], {"StringEquals": VIA_S3})
    # the topic the monitor creates is encrypted with a key it creates for it
    topic = plan.get("churn-topic")
    assert re.fullmatch(rf"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}", topic.inputs["kmsMasterKeyId"])
    assert plan.get("churn-topic-key-key").urn in topic.dependencies
    assert (plan.type_counts()[KMS_COMPONENT], plan.type_counts()[TOPIC]) == (1, 1)
    assert api_problems(plan.get("churn-schedule")) == []



PACKAGE_STATISTICS = "s3://ml-registry/churn/v3/statistics.json"
PACKAGE_CONSTRAINTS = "s3://ml-registry/churn/v3/constraints.json"
GROUP = "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/churn"
UNKNOWN_STATISTICS = f"[unknown: {GROUP} drift-check statistics]"
UNKNOWN_CONSTRAINTS = f"[unknown: {GROUP} drift-check constraints]"


@pytest.mark.parametrize("section, package, baseline, read", [
    # a served package's drift-check baselines: read, and decrypted through S3, like a baseline of the settings
    ({}, DriftBaseline(PACKAGE_STATISTICS, PACKAGE_CONSTRAINTS), (PACKAGE_STATISTICS, PACKAGE_CONSTRAINTS), [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-registry/churn/v3/statistics.json",
                                 "arn:aws:s3:::ml-registry/churn/v3/constraints.json"]),
        allow(["kms:Decrypt"], ["*"], {"StringEquals": VIA_S3, "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-registry", "arn:aws:s3:::ml-registry/*"]}})]),
    # ones the offline preview could not look up are named as it shows them
    ({}, DriftBaseline(UNKNOWN_STATISTICS, UNKNOWN_CONSTRAINTS, known=False), (UNKNOWN_STATISTICS, UNKNOWN_CONSTRAINTS),
     [allow(["s3:GetObject"], [UNKNOWN_STATISTICS, UNKNOWN_CONSTRAINTS])]),
    # the settings' baseline wins over the package's
    ({"baseline": BASELINE}, DriftBaseline(PACKAGE_STATISTICS, PACKAGE_CONSTRAINTS), (STATISTICS, CONSTRAINTS), [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-baselines/churn/statistics.json",
                                 "arn:aws:s3:::ml-baselines/churn/constraints.json"]),
        allow(["kms:Decrypt"], ["*"], {"StringEquals": VIA_S3, "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-baselines", "arn:aws:s3:::ml-baselines/*"]}})]),
])
def test_a_production_monitor_may_use_the_served_packages_baselines(section, package, baseline, read):
    plan = plan_with(section, production=True, package_baseline=package)
    assert plan.get("churn-job").inputs["dataQualityBaselineConfig"] == {
        "statisticsResource": {"s3Uri": baseline[0]}, "constraintsResource": {"s3Uri": baseline[1]}}
    assert statements(plan, "churn-execution-read-baseline") == read
    assert plan.get("churn-schedule").inputs["monitoringScheduleConfig"]["scheduleConfig"] == {
        "scheduleExpression": "cron(0 * ? * * *)"}


def test_a_stack_files_sections_build_a_monitor():
    monitoring = settings({"schedule": "cron(0 0/6 ? * * *)", "instance_type": "ml.c5.xlarge", "instance_count": 2,
                           "max_runtime_minutes": 30, "baseline": BASELINE, "drift_features": ["age"]})
    alerts = AlertsSettings.model_validate({"email": ["ml-oncall@example.com"],
                                            "https": ["https://hooks.example.com/ml"]})
    assert alerts.subscriptions == ["ml-oncall@example.com", "https://hooks.example.com/ml"]

    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        ModelMonitor("prod-churn", monitoring, context(
            endpoint_name="prod-churn", reports_bucket=reports, production=True, capture_kms_key_arn=KEY_ARN,
            volume_kms_key_arn=KEY_ARN, output_kms_key_arn=KEY_ARN, subscriptions=alerts.subscriptions,
            governance=Governance({"owner": "ml"}, protect=True)))
    plan = run_components(program)
    job = plan.get("prod-churn-job").inputs
    assert (job["jobResources"], job["stoppingCondition"], job["dataQualityBaselineConfig"]) == (
        {"clusterConfig": {"instanceCount": 2, "instanceType": "ml.c5.xlarge", "volumeSizeInGb": 20,
                           "volumeKmsKeyId": KEY_ARN}},
        {"maxRuntimeInSeconds": 1800},
        {"statisticsResource": {"s3Uri": STATISTICS}, "constraintsResource": {"s3Uri": CONSTRAINTS}})
    assert job["tags"] == {"owner": "ml", "model-monitor": "prod-churn"}
    assert plan.get("prod-churn-schedule").inputs["monitoringScheduleConfig"]["scheduleConfig"] == {
        "scheduleExpression": "cron(0 0/6 ? * * *)"}
    assert plan.get("prod-churn-drift-age").inputs["period"] == 21600
    assert statements(plan, "prod-churn-execution-read-capture")[2] == allow(
        ["kms:DescribeKey", "kms:Decrypt"], [KEY_ARN], {"StringEquals": VIA_S3})
    assert [(s.inputs["protocol"], s.inputs["endpoint"]) for s in plan.by_type(SUBSCRIPTION)] == [
        ("email", "ml-oncall@example.com"), ("https", "https://hooks.example.com/ml")]
    assert {r.name for r in plan.resources if r.protect} == {"prod-churn-topic", "prod-churn-topic-key-key"}


# -- model quality -----------------------------------------------------------------------------------

MQ_JOB = "aws-native:sagemaker:ModelQualityJobDefinition"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
GROUND_TRUTH = "s3://ml-ground-truth/churn"
QUALITY_CONSTRAINTS = "s3://ml-baselines/churn/quality/constraints.json"
DROP = object()  # a key left out of the section
# `model_quality:` sections of a stack file
QUALITY: dict[str, Any] = {"ground_truth_s3_uri": GROUND_TRUTH, "problem_type": "BinaryClassification",
                           "probability_attribute": "0", "probability_threshold": 0.5, "threshold": 0.8}
MULTICLASS: dict[str, Any] = {"ground_truth_s3_uri": GROUND_TRUTH, "problem_type": "MulticlassClassification",
                              "inference_attribute": "$.label", "threshold": 0.8}
REGRESSION = {**MULTICLASS, "problem_type": "Regression", "inference_attribute": "0", "threshold": 12.5}
BINARY_METRICS = ("auc, f1, f0_5, f2, accuracy, precision, recall, true_positive_rate, true_negative_rate, "
                  "false_positive_rate, false_negative_rate")
NEEDS_PROBABILITY = ("model_quality: BinaryClassification needs probability_attribute and probability_threshold "
                     "(where the captured response holds the probability, and the probability from which it is "
                     "positive)")


def without_dropped(section: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in section.items() if value is not DROP}


@pytest.mark.parametrize("section, message", [
    *[({**QUALITY, key: DROP}, f"model_quality.{key}: Field required")
      for key in ("ground_truth_s3_uri", "problem_type", "threshold")],
    ({**QUALITY, "problem_type": "Binary"},
     "model_quality.problem_type: 'Binary' is not one of BinaryClassification, MulticlassClassification, Regression"),
    *[({**QUALITY, key: DROP}, NEEDS_PROBABILITY) for key in ("probability_attribute", "probability_threshold")],
    *[({**section, "inference_attribute": DROP},
       f"model_quality: {section['problem_type']} needs inference_attribute (where the captured response holds the "
       "prediction)") for section in (MULTICLASS, REGRESSION)],
    ({**MULTICLASS, "probability_threshold": 0.5},
     "model_quality: probability_threshold applies only to BinaryClassification; drop it for MulticlassClassification"),
    ({**REGRESSION, "probability_attribute": "1"},
     "model_quality: probability_attribute applies only to classification; drop it for Regression"),
    ({**QUALITY, "probability_threshold": 0}, "model_quality.probability_threshold: Input should be greater than 0"),
    ({**QUALITY, "probability_threshold": 1}, "model_quality.probability_threshold: Input should be less than 1"),
    ({**QUALITY, "metric": "rmse"},
     f"model_quality: metric 'rmse' is not published for BinaryClassification; use one of {BINARY_METRICS}"),
    ({**MULTICLASS, "metric": "f1"},
     "model_quality: metric 'f1' is not published for MulticlassClassification; use one of accuracy, weighted_f1, "
     "weighted_f0_5, weighted_f2, weighted_precision, weighted_recall"),
    *[({**QUALITY, "threshold": value},
       f"model_quality: threshold ({shown}) must be between 0 and 1, exclusive, for auc")
      for value, shown in ((0, "0.0"), (1.2, "1.2"), (2, "2.0"))],
    ({**QUALITY, "metric": "false_positive_rate", "threshold": 1},
     "model_quality: threshold (1.0) must be between 0 and 1, exclusive, for false_positive_rate"),
    ({**REGRESSION, "threshold": 0}, "model_quality: threshold (0.0) must be above 0 for rmse"),
    ({**REGRESSION, "metric": "r2", "threshold": 1}, "model_quality: threshold (1.0) must be below 1 for r2"),
    ({**QUALITY, "inference_attribute": ""},
     "model_quality.inference_attribute: String should have at least 1 character"),
    ({**QUALITY, "ground_truth": GROUND_TRUTH}, "model_quality.ground_truth: Extra inputs are not permitted"),
    *[({**QUALITY, "ground_truth_s3_uri": uri}, f"model_quality.ground_truth_s3_uri: {S3_PREFIX_PATTERN}")
      for uri in ("https://ml-ground-truth/churn", "ml-ground-truth/churn", "s3://Bad_Bucket/churn",
                  "s3://ml-ground-truth")],
    ({**QUALITY, "baseline_constraints_s3_uri": "s3://ml-baselines/churn/"},
     f"model_quality.baseline_constraints_s3_uri: {S3_OBJECT_PATTERN}"),
])
def test_model_quality_settings_reject_with_one_line(section, message):
    assert settings_error({"model_quality": without_dropped(section)}) == message


@pytest.mark.parametrize("section, metric", [(QUALITY, "auc"), (MULTICLASS, "accuracy"), (REGRESSION, "rmse"),
                                             ({**REGRESSION, "metric": "r2", "threshold": -1}, "r2")])
def test_the_alarm_metric_defaults_by_problem_type(section, metric):
    quality = settings({"model_quality": section}).model_quality
    assert (quality.metric, quality.alarm_metric) == (section.get("metric"), metric)
    assert settings().model_quality is None


@functools.cache
def quality_plan(name: str = "churn", ground_truth_kms_key_arn: Optional[str] = None, **changes: Any) -> Plan:
    """A production monitor with `QUALITY` (and its baseline constraints) as its model-quality section, `changes`
    made to that section (DROP: left out)."""
    section = without_dropped({**QUALITY, "baseline_constraints_s3_uri": QUALITY_CONSTRAINTS, **changes})

    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        monitor = ModelMonitor(name, settings({
            "baseline": BASELINE, "drift_features": ["age"], "instance_type": "ml.m5.large", "instance_count": 2,
            "volume_size_gb": 50, "max_runtime_minutes": 30, "model_quality": section,
        }), context(reports_bucket=reports, production=True, ground_truth_kms_key_arn=ground_truth_kms_key_arn,
                    governance=Governance({"team": "churn"})))
        pulumi.export("monitor", {"jobArn": monitor.quality_job_definition.job_definition_arn,
                                  "jobName": monitor.quality_job_definition.job_definition_name,
                                  "scheduleName": monitor.quality_schedule.name, "alarmNames": monitor.alarm_names})
    return run_components(program)


def test_model_quality_adds_a_job_definition_schedule_alarm_and_rules():
    plan = quality_plan()
    component = plan.get("churn", COMPONENT)
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (SG, "churn-sg"), (ROLE_COMPONENT, "churn-execution"), (JOB, "churn-job"), (SCHEDULE, "churn-schedule"),
        (MQ_JOB, "churn-quality-job"), (SCHEDULE, "churn-quality"),
        (KMS_COMPONENT, "churn-topic-key"), (TOPIC, "churn-topic"), (TOPIC_POLICY, "churn-topic-policy"),
        (ALARM, "churn-drift-age"), (ALARM, "churn-quality-auc"),
        (RULE, "churn-failed"), (TARGET, "churn-failed-notify"), (RULE, "churn-violations"),
        (TARGET, "churn-violations-notify"), (RULE, "churn-quality-failed"), (TARGET, "churn-quality-failed-notify"),
        (RULE, "churn-quality-violations"), (TARGET, "churn-quality-violations-notify")]
    assert [r.name for r in plan.children(plan.get("churn-execution", ROLE_COMPONENT).urn)] == [
        "churn-execution-role", "churn-execution-permissions"]
    assert "ReadGroundTruth" in concerns(plan, "churn-execution")
    protected = {r.name for r in plan.resources if r.protect or r.retain_on_delete}
    assert protected == set()


def test_model_quality_job_definition_compares_captured_predictions_with_the_ground_truth():
    plan = quality_plan()
    job, data_job = plan.get("churn-quality-job"), plan.get("churn-job")
    reports = plan.get("reports-bucket").inputs["bucket"]
    name = plan.outputs["monitor"]["jobName"]
    assert job.inputs == {
        "jobDefinitionName": name, "roleArn": data_job.inputs["roleArn"],
        # Cloud Control takes tags as key/value pairs
        "tags": [{"key": key, "value": value} for key, value in TAGS.items()],
        "modelQualityAppSpecification": {"imageUri": IMAGE, "problemType": "BinaryClassification",
                                         "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        "modelQualityBaselineConfig": {"constraintsResource": {"s3Uri": QUALITY_CONSTRAINTS}},
        "modelQualityJobInput": {
            "endpointInput": {"endpointName": "churn", "localPath": "/opt/ml/processing/input/endpoint",
                              "s3InputMode": "File", "s3DataDistributionType": "FullyReplicated",
                              "probabilityAttribute": "0", "probabilityThresholdAttribute": 0.5},
            "groundTruthS3Input": {"s3Uri": GROUND_TRUTH}},
        "modelQualityJobOutputConfig": {"kmsKeyId": KEY_ARN, "monitoringOutputs": [{"s3Output": {
            "s3Uri": f"s3://{reports}/monitoring/churn/model-quality", "localPath": "/opt/ml/processing/output",
            "s3UploadMode": "EndOfJob"}}]},
        # the same instances, network and time limit as the data-quality job
        "jobResources": data_job.inputs["jobResources"],
        "networkConfig": data_job.inputs["networkConfig"],
        "stoppingCondition": {"maxRuntimeInSeconds": 1800},
    }
    assert set(job.dependencies) == set(data_job.dependencies)
    assert api_problems(job) == []
    assert re.fullmatch(r"churn-quality-job-[0-9a-f]{7}", name)
    assert plan.outputs["monitor"]["jobArn"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/{name}")


def test_model_quality_schedule_runs_it_on_the_same_schedule():
    plan = quality_plan()
    schedule = plan.get("churn-quality")
    assert schedule.inputs == {
        "name": auto_name(schedule), "tags": TAGS,
        "monitoringScheduleConfig": {"monitoringJobDefinitionName": plan.outputs["monitor"]["jobName"],
                                     "monitoringType": "ModelQuality",
                                     "scheduleConfig": {"scheduleExpression": "cron(0 * ? * * *)"}}}
    assert schedule.dependencies == [plan.get("churn-quality-job").urn]
    assert plan.outputs["monitor"]["scheduleName"] == schedule.inputs["name"]
    assert api_problems(schedule) == []


def test_model_quality_alarm_and_run_outcomes_notify_the_topic():
    plan = quality_plan()
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:{plan.get('churn-topic').inputs['name']}"
    schedule_name = plan.get("churn-quality").inputs["name"]
    alarm = plan.get("churn-quality-auc")
    assert alarm.inputs == {
        "name": auto_name(alarm), "tags": TAGS,
        "alarmDescription": "churn: model quality auc below 0.8 (BinaryClassification)",
        "namespace": MODEL_NAMESPACE, "metricName": "auc",
        "dimensions": {"Endpoint": "churn", "MonitoringSchedule": schedule_name},
        "statistic": "Minimum", "period": 3600, "evaluationPeriods": 1, "comparisonOperator": "LessThanThreshold",
        "threshold": 0.8, "treatMissingData": "notBreaching", "alarmActions": [topic_arn], "okActions": [topic_arn]}
    assert plan.outputs["monitor"]["alarmNames"] == [plan.get("churn-drift-age").inputs["name"], alarm.inputs["name"]]
    schedule_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{schedule_name}"
    for suffix, what in (("failed", "a monitoring run failed or was stopped"),
                         ("violations", "a monitoring run found constraint violations")):
        rule = plan.get(f"churn-quality-{suffix}")
        pattern = json.loads(rule.inputs["eventPattern"])
        assert rule.inputs["description"] == f"churn-quality: {what}"
        assert pattern["detail"]["MonitoringScheduleArn"] == [schedule_arn]
        assert plan.get(f"churn-quality-{suffix}-notify").inputs == {"rule": rule.inputs["name"], "arn": topic_arn}


@pytest.mark.parametrize("config, metric, description, statistic, operator, threshold", [
    (MULTICLASS, "accuracy", "accuracy below 0.8 (MulticlassClassification)", "Minimum", "LessThanThreshold", 0.8),
    (REGRESSION, "rmse", "rmse above 12.5 (Regression)", "Maximum", "GreaterThanThreshold", 12.5),
    ({**REGRESSION, "metric": "r2", "threshold": 0.6}, "r2",
     "r2 below 0.6 (Regression)", "Minimum", "LessThanThreshold", 0.6),
    ({**QUALITY, "metric": "false_negative_rate", "threshold": 0.1}, "false-negative-rate",
     "false_negative_rate above 0.1 (BinaryClassification)", "Maximum", "GreaterThanThreshold", 0.1),
])
def test_scores_alarm_below_and_errors_above_their_threshold(config, metric, description, statistic, operator,
                                                             threshold):
    plan = quality_plan(**{k: DROP for k in QUALITY if k not in config}, **config)
    alarm = plan.get(f"churn-quality-{metric}").inputs
    assert (alarm["alarmDescription"], alarm["metricName"], alarm["statistic"], alarm["comparisonOperator"],
            alarm["threshold"]) == (f"churn: model quality {description}", metric.replace("-", "_"), statistic,
                                    operator, threshold)
    endpoint_input = plan.get("churn-quality-job").inputs["modelQualityJobInput"]["endpointInput"]
    attributes = {k: v for k, v in endpoint_input.items() if k.endswith("Attribute")}
    assert attributes == {k: v for k, v in (("inferenceAttribute", config.get("inference_attribute")),
                                            ("probabilityAttribute", config.get("probability_attribute")),
                                            ("probabilityThresholdAttribute",
                                             config.get("probability_threshold"))) if v is not None}


def test_the_role_reads_the_ground_truth_and_the_quality_baseline_and_publishes_model_metrics():
    plan = quality_plan()
    assert statements(plan, "churn-execution-read-ground-truth") == [
        allow(["s3:ListBucket"], ["arn:aws:s3:::ml-ground-truth"], {"StringLike": {"s3:prefix": ["churn/*"]}}),
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-ground-truth/churn/*"]),
        allow(["kms:Decrypt"], ["*"], {"StringEquals": VIA_S3, "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-ground-truth", "arn:aws:s3:::ml-ground-truth/*"]}})]
    assert statements(plan, "churn-execution-read-baseline")[0] == allow(["s3:GetObject"], [
        "arn:aws:s3:::ml-baselines/churn/statistics.json", "arn:aws:s3:::ml-baselines/churn/constraints.json",
        "arn:aws:s3:::ml-baselines/churn/quality/constraints.json"])
    assert statements(plan, "churn-execution-metrics") == [allow(["cloudwatch:PutMetricData"], ["*"], {
        "StringEquals": {"cloudwatch:namespace": [NAMESPACE, MODEL_NAMESPACE]}})]
    # the reports of both jobs are under the monitor's prefix, which the role already writes
    reports = plan.get("reports-bucket").inputs["bucket"]
    assert statements(plan, "churn-execution-write-reports")[0]["Resource"] == [
        f"arn:aws:s3:::{reports}/monitoring/churn/*"]


def test_a_ground_truth_key_and_a_whole_bucket_narrow_the_read():
    plan = quality_plan(ground_truth_s3_uri="s3://ml-ground-truth/", ground_truth_kms_key_arn=CAPTURE_KEY,
                        baseline_constraints_s3_uri=DROP)
    assert statements(plan, "churn-execution-read-ground-truth") == [
        allow(["s3:ListBucket"], ["arn:aws:s3:::ml-ground-truth"], {"StringLike": {"s3:prefix": ["*"]}}),
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-ground-truth/*"]),
        allow(["kms:DescribeKey", "kms:Decrypt"], [CAPTURE_KEY], {"StringEquals": VIA_S3})]
    assert "modelQualityBaselineConfig" not in plan.get("churn-quality-job").inputs
    assert len(statements(plan, "churn-execution-read-baseline")[0]["Resource"]) == 2


def test_the_longest_monitor_name_still_fits_aws_names():
    # with model quality, the longest name a monitor derives is its violations rule's: EventBridge allows 64
    name = "a" * 37
    plan = quality_plan(name)
    assert len(plan.get(f"{name}-quality-violations").inputs["name"]) == 64
    assert len(plan.get(f"{name}-quality").inputs["name"]) == 53
    assert re.fullmatch(r"a{37}-quality-job-[0-9a-f]{7}", plan.outputs["monitor"]["jobName"])
    from emlops.components.monitoring import check_monitor_name

    with pytest.raises(ValueError, match=r"^monitor name 'a{38}' must be at most 37 ASCII"):
        check_monitor_name("a" * 38, settings({"model_quality": QUALITY}))


def test_without_model_quality_nothing_changes():
    plan = full_plan()
    assert MQ_JOB not in plan.type_counts() and plan.type_counts()[SCHEDULE] == 1
    assert statements(plan, "churn-execution-metrics")[0]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": NAMESPACE}}


def prod_with(project_copy, old: str = "", new: str = ""):
    """Preview prod (which ships churn's model-quality section), with `old` replaced by `new`."""
    from emlops.offline.preview import preview_stack

    stack = project_copy / "stacks" / "Pulumi.prod.yaml"
    text = stack.read_text()
    assert text.count(old) == 1 or not old
    stack.write_text(text.replace(old, new) if old else text)
    return preview_stack("prod", start=project_copy)


def test_prod_with_model_quality_previews_and_every_request_is_valid(shipped_plan):
    plan = shipped_plan("prod")  # prod ships churn's model-quality section
    job = plan.get("prod-churn-monitor-quality-job", MQ_JOB)
    # through the stack's aws-native provider, set up like its AWS provider: region, account, deploy role, tags
    native, classic = plan.get(job.provider.rsplit("::", 1)[-1]), plan.get("aws-prod")
    assert (native.type, json.loads(native.inputs["allowedAccountIds"]), native.inputs["region"]) == (
        "pulumi:providers:aws-native", ["333333333333"], "eu-west-1")
    assert json.loads(native.inputs["assumeRole"]) == {
        "roleArn": "arn:aws:iam::333333333333:role/emlops-deploy", "sessionName": "emlops-prod"}
    assert json.loads(native.inputs["defaultTags"]) == json.loads(classic.inputs["defaultTags"])
    assert job.inputs["modelQualityJobInput"]["groundTruthS3Input"] == {"s3Uri": "s3://acme-ml-prod-ground-truth/churn/"}
    assert job.inputs["modelQualityJobInput"]["endpointInput"]["endpointName"] == "prod-churn"
    assert api_problems(job) == []
    alarm = plan.get("prod-churn-monitor-quality-auc").inputs
    assert (alarm["threshold"], alarm["comparisonOperator"]) == (0.75, "LessThanThreshold")
    # one alerts topic for the environment: the model-quality alarm publishes to it too
    topics = plan.by_type(TOPIC)
    assert [t.name for t in topics] == ["prod-alerts-topic", "prod-doc-scoring-async-success-topic"]
    assert alarm["alarmActions"] == [f"arn:aws:sns:eu-west-1:333333333333:{topics[0].inputs['name']}"]
    assert plan.get("prod-churn-monitor-quality").inputs["monitoringScheduleConfig"]["monitoringType"] == "ModelQuality"


def test_a_bad_model_quality_section_names_the_stack_file_and_key(project_copy):
    from emlops.offline.preview import PreviewError

    with pytest.raises(PreviewError) as caught:
        prod_with(project_copy, "            probability_threshold: 0.5\n            threshold: 0.75\n",
                  "            threshold: 0.75\n")
    assert str(caught.value) == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[0].monitoring.model_quality: BinaryClassification needs "
        "probability_attribute and probability_threshold (where the captured response holds the probability, and "
        "the probability from which it is positive)")
