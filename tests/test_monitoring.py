"""ModelMonitor: argument checks, every child and its inputs, the role, notifications, and the config section."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from typing import Any, Callable

import pulumi
import pytest
from pydantic import ValidationError

from emlops.components.monitoring import ModelMonitor, ModelMonitorArgs, monitor_image_uri
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.catalog.requests import to_api_request, validate_request
from emlops.offline.plan import Plan
from emlops.program.config_monitoring import (
    PRODUCTION_NEEDS_BASELINE,
    PRODUCTION_NEEDS_MONITORING,
    AlertsConfig,
    MonitoringConfig,
    monitor_args,
    monitoring_problem,
)
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
IMAGE = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
EXTERNAL_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ml-alerts"
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
SCHEDULE_HELP = ("must be one of SageMaker's monitoring schedules: hourly 'cron(0 * ? * * *)', daily "
                 "'cron(0 H ? * * *)' or every N hours 'cron(0 H/N ? * * *)' (H 0-23, N 1-24)")
TAGS = {"team": "churn", "model-monitor": "churn"}


class FakeBucket:
    """Stands in for a SecureBucket in argument checks (which run before anything is registered)."""

    kms_key_arn = KEY_ARN


BASE: dict[str, Any] = dict(endpoint_name="churn", capture_s3_uri=CAPTURE, reports_bucket=FakeBucket(), vpc_id=VPC,
                            subnet_ids=SUBNETS)
PROD: dict[str, Any] = dict(BASE, production=True, baseline_statistics_s3_uri=STATISTICS,
                            baseline_constraints_s3_uri=CONSTRAINTS)


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


# -- arguments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("base, changes, message", [
    *[(BASE, {"schedule_expression": cron}, f"schedule_expression {cron!r} {SCHEDULE_HELP}") for cron in (
        "cron(0 19 ? * MON-FRI *)", "cron(30 * ? * * *)", "cron(0 24 ? * * *)", "cron(0 0/0 ? * * *)",
        "cron(0 0/25 ? * * *)", "rate(1 hour)", "NOW", "cron(0 * * * ? *)")],
    (BASE, {"instance_type": "ml.m5.huge"},
     "'ml.m5.huge' is not a SageMaker processing instance type; did you mean 'ml.m5.large'? "
     "see ProcessingInstanceType in the SageMaker API"),
    (BASE, {"instance_type": "ml.inf2.xlarge"},
     "'ml.inf2.xlarge' is not a SageMaker processing instance type; did you mean 'ml.p2.xlarge'? "
     "see ProcessingInstanceType in the SageMaker API"),
    (dict(BASE, production=True), {},
     "a production monitor needs a baseline: give baseline_statistics_s3_uri and baseline_constraints_s3_uri "
     "(from a baselining job)"),
    (BASE, {"require_baseline": True},
     "require_baseline is set: this monitor needs a baseline: give baseline_statistics_s3_uri and "
     "baseline_constraints_s3_uri (from a baselining job)"),
    (PROD, {"baseline_constraints_s3_uri": None},
     "give both baseline_statistics_s3_uri and baseline_constraints_s3_uri, or neither"),
    (PROD, {"baseline_statistics_s3_uri": "s3://ml-baselines/churn/"},
     "baseline_statistics_s3_uri 's3://ml-baselines/churn/' is not an s3://<bucket>/<key> object URI"),
    (PROD, {"baseline_constraints_s3_uri": "ml-baselines/constraints.json"},
     "baseline_constraints_s3_uri 'ml-baselines/constraints.json' is not an s3://<bucket>/<key> object URI"),
    (BASE, {"capture_s3_uri": "https://ml-capture/datacapture"},
     "capture_s3_uri 'https://ml-capture/datacapture' is not an s3://<bucket>[/<prefix>] URI"),
    (BASE, {"vpc_id": ""}, "monitoring jobs run in private subnets: give vpc_id and subnet_ids (a list)"),
    (BASE, {"subnet_ids": []}, "monitoring jobs run in private subnets: give vpc_id and subnet_ids (a list)"),
    (BASE, {"subnet_ids": SUBNETS[0]}, "monitoring jobs run in private subnets: give vpc_id and subnet_ids (a list)"),
    *[(BASE, {label: value}, f"{label} ({value}) must be {low}-{high}")
      for label, (low, high) in {"instance_count": (1, 100), "volume_size_gb": (1, 16384),
                                 "max_runtime_seconds": (1, 86400)}.items() for value in (low - 1, high + 1)],
    (dict(BASE, production=True, require_baseline=False), {"max_runtime_seconds": 3601},
     "max_runtime_seconds (3601) is longer than the schedule's interval (3600 s); a run must end before the next "
     "one starts"),
    (BASE, {"schedule_expression": "cron(0 0/2 ? * * *)", "max_runtime_seconds": 7201},
     "max_runtime_seconds (7201) is longer than the schedule's interval (7200 s); a run must end before the next "
     "one starts"),
    (BASE, {"subscriptions": ["oncall"]}, "subscription 'oncall' must be an e-mail address or an https:// URL"),
    (BASE, {"subscriptions": ["http://hooks.example.com/x"]},
     "subscription 'http://hooks.example.com/x' must be an e-mail address or an https:// URL"),
    (BASE, {"subscriptions": ["a@example"]}, "subscription 'a@example' must be an e-mail address or an https:// URL"),
    (BASE, {"subscriptions": "a@example.com"}, "subscriptions must be a list, e.g. ['a@example.com']"),
    (BASE, {"subscriptions": ["a@example.com", "a@example.com"]},
     "subscriptions must be unique; got a@example.com, a@example.com"),
    (BASE, {"notification_topic_arn": EXTERNAL_TOPIC, "subscriptions": ["a@example.com"]},
     "subscriptions and topic_kms_key_arn apply only to the topic this monitor creates; drop them or drop "
     "notification_topic_arn"),
    (BASE, {"notification_topic_arn": EXTERNAL_TOPIC, "topic_kms_key_arn": KEY_ARN},
     "subscriptions and topic_kms_key_arn apply only to the topic this monitor creates; drop them or drop "
     "notification_topic_arn"),
    (BASE, {"drift_features": ["age group"]}, "drift feature 'age group' must be 1-128 letters, digits, '_', '.' or '-'"),
    (BASE, {"drift_features": ["age", "age"]}, "drift_features must be unique; got age, age"),
    (BASE, {"drift_features": ["tenure_months", "tenure.months"]},
     "drift_features tenure_months, tenure.months collide in resource names; rename one"),
    (BASE, {"drift_threshold": 0}, "drift_threshold (0) must be above 0 and at most 1"),
    (BASE, {"drift_threshold": 1.5}, "drift_threshold (1.5) must be above 0 and at most 1"),
])
def test_monitor_args_reject_with_a_message(base, changes, message):
    assert error_of(lambda: ModelMonitorArgs(**{**base, **changes})) == message


@pytest.mark.parametrize("changes, schedule, interval, require_baseline", [
    ({}, "cron(0 0 ? * * *)", 86400, False),
    (dict(production=True, baseline_statistics_s3_uri=STATISTICS, baseline_constraints_s3_uri=CONSTRAINTS),
     "cron(0 * ? * * *)", 3600, True),
    ({"schedule_expression": "cron(0 17/12 ? * * *)"}, "cron(0 17/12 ? * * *)", 43200, False),
    ({"schedule_expression": "cron(0 0/24 ? * * *)"}, "cron(0 0/24 ? * * *)", 86400, False),
    ({"schedule_expression": "cron(0 9 ? * * *)"}, "cron(0 9 ? * * *)", 86400, False),
])
def test_schedule_defaults_to_hourly_in_production_and_daily_otherwise(changes, schedule, interval, require_baseline):
    args = ModelMonitorArgs(**{**BASE, **changes})
    assert (args.schedule_expression, args.interval_seconds, args.require_baseline) == (
        schedule, interval, require_baseline)


def test_a_production_monitor_may_opt_out_of_the_baseline_explicitly():
    args = ModelMonitorArgs(**BASE, production=True, require_baseline=False)
    assert (args.schedule_expression, args.baseline_statistics_s3_uri) == ("cron(0 * ? * * *)", None)


@pytest.mark.parametrize("name", ["churn_1", "", "-churn", "churn-", "a" * 47])
def test_monitor_name_is_checked_before_anything_is_created(name):
    assert error_of(lambda: ModelMonitor(name, ModelMonitorArgs(**BASE))) == (
        f"monitor name {name!r} must be at most 46 ASCII letters, digits and '-', starting and ending with a "
        "letter or digit")


def test_reports_bucket_without_a_key_needs_explicit_keys():
    def program() -> None:
        logs = SecureBucket("logs", SecureBucketArgs(sse_algorithm="AES256", receives_access_logs=True))
        ModelMonitor("churn", ModelMonitorArgs(**{**BASE, "reports_bucket": logs}))
    assert error_of(lambda: run_components(program)) == (
        "the reports bucket has no KMS key: give volume_kms_key_arn and output_kms_key_arn")


def test_analyzer_image_is_what_the_sdk_retrieves_for_every_region():
    from sagemaker.core import image_uris

    from emlops.components.monitoring import _monitor_catalogue

    for region in _monitor_catalogue()["registries"]:
        assert monitor_image_uri(region) == image_uris.retrieve(framework="model-monitor", region=region), region


def test_analyzer_image_comes_from_the_sdk_catalogue_and_costs_nothing_until_used():
    assert monitor_image_uri("eu-west-1") == IMAGE
    assert monitor_image_uri("us-east-1") == "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    assert error_of(lambda: monitor_image_uri("xx-nowhere-1")).startswith(
        "no SageMaker Model Monitor image in xx-nowhere-1: Unsupported region: xx-nowhere-1. Supported region(s): ")
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, components.monitoring, infra.config_monitoring; "
                               "print(any(m.startswith('sagemaker') for m in sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"


# -- a production monitor with everything -------------------------------------------------------------

@functools.cache
def full_plan(protect: bool = True) -> Plan:
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        monitor = ModelMonitor("churn", ModelMonitorArgs(**{
            **PROD, "reports_bucket": reports, "subscriptions": ["ml-oncall@example.com", "https://hooks.example.com/ml"],
            "drift_features": ["age", "tenure_months"], "drift_threshold": 0.2, "instance_type": "ml.m5.large",
            "instance_count": 2, "volume_size_gb": 50, "max_runtime_seconds": 1800, "protect": protect,
            "tags": {"team": "churn"}}))
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

def plan_with(**changes: Any) -> Plan:
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        ModelMonitor("churn", ModelMonitorArgs(**{**BASE, "reports_bucket": reports, **changes}))
    return run_components(program)


def test_an_existing_topic_gets_the_notifications_and_no_topic_is_created():
    plan = plan_with(notification_topic_arn=EXTERNAL_TOPIC, drift_features=["age"])
    component = plan.get("churn", COMPONENT)
    assert [r.name for r in plan.children(component.urn)] == [
        "churn-sg", "churn-execution", "churn-job", "churn-schedule", "churn-drift-age", "churn-failed",
        "churn-failed-notify", "churn-violations", "churn-violations-notify"]
    assert plan.get("churn-drift-age").inputs["alarmActions"] == [EXTERNAL_TOPIC]
    assert [t.inputs["arn"] for t in plan.by_type(TARGET)] == [EXTERNAL_TOPIC, EXTERNAL_TOPIC]


def test_a_dev_monitor_without_baseline_only_profiles_daily():
    plan = plan_with(capture_kms_key_arn=CAPTURE_KEY, topic_kms_key_arn=KEY_ARN, region="us-east-1")
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
    assert plan.get("churn-topic").inputs["kmsMasterKeyId"] == KEY_ARN
    assert KMS_COMPONENT not in plan.type_counts() and plan.type_counts()[TOPIC] == 1
    assert api_problems(plan.get("churn-schedule")) == []


# -- config ------------------------------------------------------------------------------------------

def config_error(model: type, raw: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    error = caught.value.errors()[0]
    return f"{'.'.join(map(str, error['loc']))}: {error['msg'].removeprefix('Value error, ')}"


def test_monitoring_config_defaults():
    assert MonitoringConfig().model_dump() == {
        "enabled": None, "schedule": None, "instance_type": "ml.m5.xlarge", "instance_count": 1,
        "volume_size_gb": 20, "max_runtime_minutes": 60, "baseline": None, "drift_features": [],
        "drift_threshold": 0.1, "model_quality": None}
    assert AlertsConfig().subscriptions == []
    assert (MonitoringConfig().is_enabled(True), MonitoringConfig().is_enabled(False),
            MonitoringConfig(enabled=False).is_enabled(True)) == (True, False, False)


@pytest.mark.parametrize("section, raw, message", [
    (MonitoringConfig, {"schedule": "cron(0 19 ? * MON-FRI *)"}, f"schedule: 'cron(0 19 ? * MON-FRI *)' {SCHEDULE_HELP}"),
    (MonitoringConfig, {"instance_type": "ml.m5.huge"},
     "instance_type: 'ml.m5.huge' is not a SageMaker processing instance type; did you mean 'ml.m5.large'? "
     "see ProcessingInstanceType in the SageMaker API"),
    (MonitoringConfig, {"instance_count": 0}, "instance_count: Input should be greater than or equal to 1"),
    (MonitoringConfig, {"drift_threshold": 0}, "drift_threshold: Input should be greater than 0"),
    (MonitoringConfig, {"drift_threshold": 1.5}, "drift_threshold: Input should be less than or equal to 1"),
    (MonitoringConfig, {"max_runtime_minutes": 1441}, "max_runtime_minutes: Input should be less than or equal to 1440"),
    (MonitoringConfig, {"baseline": {"statistics_s3_uri": STATISTICS}},
     "baseline.constraints_s3_uri: Field required"),
    (MonitoringConfig, {"ground_truth": "s3://b/gt/"}, "ground_truth: Extra inputs are not permitted"),
    (AlertsConfig, {"email": ["https://hooks.example.com/x"]},
     "email: 'https://hooks.example.com/x' is not an e-mail address"),
    (AlertsConfig, {"https": ["ml-oncall@example.com"]}, "https: 'ml-oncall@example.com' is not an https:// URL"),
    (AlertsConfig, {"https": ["http://hooks.example.com/x"]},
     "https: 'http://hooks.example.com/x' is not an https:// URL"),
    (AlertsConfig, {"email": ["oncall"]}, "email: 'oncall' is not an e-mail address"),
    (AlertsConfig, {"email": ["a@example.com", "a@example.com"]}, "email: must be unique; got a@example.com, a@example.com"),
])
def test_config_sections_reject_with_one_line(section, raw, message):
    assert config_error(section, raw) == message


@pytest.mark.parametrize("uri", ["ml-baselines/statistics.json", "s3://ml-baselines/churn/", "s3://Bad_Bucket/x.json"])
def test_baseline_uris_are_s3_objects(uri):
    raw = {"baseline": {"statistics_s3_uri": uri, "constraints_s3_uri": CONSTRAINTS}}
    assert config_error(MonitoringConfig, raw).startswith("baseline.statistics_s3_uri: String should match pattern")


BASELINE = {"statistics_s3_uri": STATISTICS, "constraints_s3_uri": CONSTRAINTS}


@pytest.mark.parametrize("raw, captures, production, problem", [
    ({}, True, False, None),
    ({}, False, False, None),
    ({"baseline": BASELINE}, True, True, None),
    ({}, True, True, ("models[0].monitoring.baseline", PRODUCTION_NEEDS_BASELINE)),
    ({"enabled": False}, True, True, ("models[0].monitoring.enabled", PRODUCTION_NEEDS_MONITORING)),
    ({"enabled": True}, False, False,
     ("models[0].monitoring.enabled", "monitoring reads captured data; enable data_capture")),
    ({"baseline": BASELINE, "max_runtime_minutes": 61}, True, True,
     ("models[0].monitoring.max_runtime_minutes", "61 minutes is longer than the schedule's interval (60 minutes)")),
    ({"max_runtime_minutes": 61, "schedule": "cron(0 0/2 ? * * *)"}, True, False, None),
])
def test_monitoring_problem_for_the_platform_validator(raw, captures, production, problem):
    assert monitoring_problem("models[0]", MonitoringConfig(**raw), captures, production) == problem
    assert PRODUCTION_NEEDS_BASELINE == ("production monitors need a baseline: add statistics_s3_uri and "
                                         "constraints_s3_uri from a baselining job (models served from a model "
                                         "package may use the package's drift-check baselines instead)")


def test_a_production_model_from_a_package_may_take_the_packages_baselines():
    assert monitoring_problem("models[0]", MonitoringConfig(), True, True, package_source=True) is None


def test_monitor_args_maps_the_sections_and_builds_a_monitor():
    monitoring = MonitoringConfig(schedule="cron(0 0/6 ? * * *)", instance_type="ml.c5.xlarge", instance_count=2,
                                  max_runtime_minutes=30, baseline=BASELINE, drift_features=["age"])
    alerts = AlertsConfig(email=["ml-oncall@example.com"], https=["https://hooks.example.com/ml"])

    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        args = monitor_args(monitoring, alerts, endpoint_name="prod-churn", capture_s3_uri=CAPTURE,
                            reports_bucket=reports, vpc_id=VPC, subnet_ids=SUBNETS, production=True,
                            kms_key_arn=KEY_ARN, tags={"owner": "ml"})
        assert (args.schedule_expression, args.instance_type, args.instance_count, args.max_runtime_seconds,
                args.baseline_statistics_s3_uri, args.baseline_constraints_s3_uri, args.subscriptions,
                args.drift_features, args.protect, args.capture_kms_key_arn, args.volume_kms_key_arn,
                args.output_kms_key_arn, args.require_baseline) == (
            "cron(0 0/6 ? * * *)", "ml.c5.xlarge", 2, 1800, STATISTICS, CONSTRAINTS,
            ["ml-oncall@example.com", "https://hooks.example.com/ml"], ["age"], True, KEY_ARN, KEY_ARN, KEY_ARN, True)
        shared = monitor_args(monitoring, alerts, endpoint_name="prod-churn", capture_s3_uri=CAPTURE,
                              reports_bucket=reports, vpc_id=VPC, subnet_ids=SUBNETS, production=True,
                              notification_topic_arn=EXTERNAL_TOPIC)
        assert shared.subscriptions == [] and shared.notification_topic_arn == EXTERNAL_TOPIC
        ModelMonitor("prod-churn", args)
    plan = run_components(program)
    assert plan.get("prod-churn-drift-age").inputs["period"] == 21600
    assert len(plan.by_type(SUBSCRIPTION)) == 2
    assert {r.name for r in plan.resources if r.protect} == {"prod-churn-topic", "prod-churn-topic-key-key"}


def test_a_production_config_without_baseline_fails_at_the_arguments_too():
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        monitor_args(MonitoringConfig(), AlertsConfig(), endpoint_name="prod-churn", capture_s3_uri=CAPTURE,
                     reports_bucket=reports, vpc_id=VPC, subnet_ids=SUBNETS, production=True)
    assert error_of(lambda: run_components(program)) == (
        "a production monitor needs a baseline: give baseline_statistics_s3_uri and baseline_constraints_s3_uri "
        "(from a baselining job)")


# -- model quality -----------------------------------------------------------------------------------

MQ_JOB = "aws-native:sagemaker:ModelQualityJobDefinition"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
GROUND_TRUTH = "s3://ml-ground-truth/churn"
QUALITY_CONSTRAINTS = "s3://ml-baselines/churn/quality/constraints.json"
QUALITY: dict[str, Any] = dict(ground_truth_s3_uri=GROUND_TRUTH, problem_type="BinaryClassification",
                               probability_attribute="0", probability_threshold_attribute=0.5,
                               model_quality_threshold=0.8)
BINARY_METRICS = ("auc, f1, f0_5, f2, accuracy, precision, recall, true_positive_rate, true_negative_rate, "
                  "false_positive_rate, false_negative_rate")
MULTICLASS = dict(QUALITY, problem_type="MulticlassClassification", probability_attribute=None,
                  probability_threshold_attribute=None, inference_attribute="$.label")
REGRESSION = dict(MULTICLASS, problem_type="Regression", inference_attribute="0", model_quality_threshold=12.5)


@pytest.mark.parametrize("changes, message", [
    ({"ground_truth_s3_uri": GROUND_TRUTH},
     "model-quality monitoring needs both ground_truth_s3_uri and problem_type, or neither"),
    ({"problem_type": "Regression"}, "model-quality monitoring needs both ground_truth_s3_uri and problem_type, or neither"),
    ({"inference_attribute": "0"},
     "inference_attribute: only for model-quality monitoring; give ground_truth_s3_uri and problem_type, or drop them"),
    ({"model_quality_metric": "auc", "model_quality_threshold": 0.8, "ground_truth_kms_key_arn": KEY_ARN},
     "model_quality_metric, model_quality_threshold, ground_truth_kms_key_arn: only for model-quality monitoring; "
     "give ground_truth_s3_uri and problem_type, or drop them"),
    ({**QUALITY, "ground_truth_s3_uri": "https://ml-ground-truth/churn"},
     "ground_truth_s3_uri 'https://ml-ground-truth/churn' is not an s3://<bucket>[/<prefix>] URI"),
    ({**QUALITY, "model_quality_baseline_constraints_s3_uri": "s3://ml-baselines/churn/"},
     "model_quality_baseline_constraints_s3_uri 's3://ml-baselines/churn/' is not an s3://<bucket>/<key> object URI"),
    ({**QUALITY, "problem_type": "Binary"},
     "problem_type 'Binary' must be one of BinaryClassification, MulticlassClassification, Regression "
     "(SageMaker's MonitoringProblemType)"),
    *[({**QUALITY, label: None},
       "BinaryClassification needs probability_attribute and probability_threshold_attribute (where the captured "
       "response holds the probability, and the probability from which it is positive)")
      for label in ("probability_attribute", "probability_threshold_attribute")],
    *[({**config, "inference_attribute": None},
       f"{config['problem_type']} needs inference_attribute (where the captured response holds the prediction)")
      for config in (MULTICLASS, REGRESSION)],
    ({**MULTICLASS, "probability_threshold_attribute": 0.5},
     "probability_threshold_attribute applies only to BinaryClassification; drop it for MulticlassClassification"),
    ({**REGRESSION, "probability_attribute": "1"},
     "probability_attribute applies only to classification; drop it for Regression"),
    *[({**QUALITY, "probability_threshold_attribute": value},
       f"probability_threshold_attribute ({value}) must be between 0 and 1, exclusive") for value in (0, 1.0)],
    ({**QUALITY, "model_quality_metric": "rmse"},
     f"model_quality_metric 'rmse' is not published for BinaryClassification; use one of {BINARY_METRICS}"),
    ({**MULTICLASS, "model_quality_metric": "f1"},
     "model_quality_metric 'f1' is not published for MulticlassClassification; use one of accuracy, weighted_f1, "
     "weighted_f0_5, weighted_f2, weighted_precision, weighted_recall"),
    ({**QUALITY, "model_quality_threshold": None},
     "model_quality_threshold is required: the alarm fires when auc goes below it"),
    ({**REGRESSION, "model_quality_threshold": None},
     "model_quality_threshold is required: the alarm fires when rmse goes above it"),
    *[({**QUALITY, "model_quality_threshold": value},
       f"model_quality_threshold ({value}) must be between 0 and 1, exclusive, for auc") for value in (0, 1.2)],
    ({**QUALITY, "model_quality_metric": "false_positive_rate", "model_quality_threshold": 1},
     "model_quality_threshold (1) must be between 0 and 1, exclusive, for false_positive_rate"),
    ({**REGRESSION, "model_quality_threshold": 0}, "model_quality_threshold (0) must be above 0 for rmse"),
    ({**REGRESSION, "model_quality_metric": "r2", "model_quality_threshold": 1},
     "model_quality_threshold (1) must be below 1 for r2"),
])
def test_model_quality_args_reject_with_a_message(changes, message):
    assert error_of(lambda: ModelMonitorArgs(**{**BASE, **changes})) == message


@pytest.mark.parametrize("config, metric", [(QUALITY, "auc"), (MULTICLASS, "accuracy"), (REGRESSION, "rmse"),
                                            ({**REGRESSION, "model_quality_metric": "r2", "model_quality_threshold": -1},
                                             "r2")])
def test_the_alarm_metric_defaults_by_problem_type(config, metric):
    args = ModelMonitorArgs(**BASE, **config)
    assert (args.model_quality, args.model_quality_metric) == (True, metric)
    assert ModelMonitorArgs(**BASE).model_quality is False


@functools.cache
def quality_plan(name: str = "churn", **changes: Any) -> Plan:
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        monitor = ModelMonitor(name, ModelMonitorArgs(**{
            **PROD, "reports_bucket": reports, "drift_features": ["age"], "instance_type": "ml.m5.large",
            "instance_count": 2, "volume_size_gb": 50, "max_runtime_seconds": 1800, "tags": {"team": "churn"},
            **QUALITY, "model_quality_baseline_constraints_s3_uri": QUALITY_CONSTRAINTS, **changes}))
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
    ({**REGRESSION, "model_quality_metric": "r2", "model_quality_threshold": 0.6}, "r2",
     "r2 below 0.6 (Regression)", "Minimum", "LessThanThreshold", 0.6),
    ({**QUALITY, "model_quality_metric": "false_negative_rate", "model_quality_threshold": 0.1}, "false-negative-rate",
     "false_negative_rate above 0.1 (BinaryClassification)", "Maximum", "GreaterThanThreshold", 0.1),
])
def test_scores_alarm_below_and_errors_above_their_threshold(config, metric, description, statistic, operator,
                                                             threshold):
    plan = quality_plan(**{k: None for k in QUALITY if k not in config}, **config)
    alarm = plan.get(f"churn-quality-{metric}").inputs
    assert (alarm["alarmDescription"], alarm["metricName"], alarm["statistic"], alarm["comparisonOperator"],
            alarm["threshold"]) == (f"churn: model quality {description}", metric.replace("-", "_"), statistic,
                                    operator, threshold)
    endpoint_input = plan.get("churn-quality-job").inputs["modelQualityJobInput"]["endpointInput"]
    attributes = {k: v for k, v in endpoint_input.items() if k.endswith("Attribute")}
    assert attributes == {k: v for k, v in (("inferenceAttribute", config.get("inference_attribute")),
                                            ("probabilityAttribute", config.get("probability_attribute")),
                                            ("probabilityThresholdAttribute",
                                             config.get("probability_threshold_attribute"))) if v is not None}


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
                        model_quality_baseline_constraints_s3_uri=None)
    assert statements(plan, "churn-execution-read-ground-truth") == [
        allow(["s3:ListBucket"], ["arn:aws:s3:::ml-ground-truth"], {"StringLike": {"s3:prefix": ["*"]}}),
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-ground-truth/*"]),
        allow(["kms:DescribeKey", "kms:Decrypt"], [CAPTURE_KEY], {"StringEquals": VIA_S3})]
    assert "modelQualityBaselineConfig" not in plan.get("churn-quality-job").inputs
    assert len(statements(plan, "churn-execution-read-baseline")[0]["Resource"]) == 2


def test_the_longest_monitor_name_still_fits_sagemakers_names():
    name = "a" * 46
    plan = quality_plan(name)
    assert len(plan.get(f"{name}-quality").inputs["name"]) == 62
    # the prefix is cut to fit (SageMaker allows the double hyphen)
    assert re.fullmatch(r"a{46}-quality--[0-9a-f]{7}", plan.outputs["monitor"]["jobName"])


def test_without_model_quality_nothing_changes():
    plan = full_plan()
    assert MQ_JOB not in plan.type_counts() and plan.type_counts()[SCHEDULE] == 1
    assert statements(plan, "churn-execution-metrics")[0]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": NAMESPACE}}


DROP = object()  # a key left out of the section
MODEL_QUALITY_CONFIG: dict[str, Any] = {
    "ground_truth_s3_uri": GROUND_TRUTH, "problem_type": "BinaryClassification", "probability_attribute": "0",
    "probability_threshold": 0.5, "threshold": 0.75}


@pytest.mark.parametrize("changes, message", [
    ({"problem_type": "Binary"},
     "model_quality.problem_type: 'Binary' is not one of BinaryClassification, MulticlassClassification, Regression"),
    ({"threshold": DROP}, "model_quality.threshold: Field required"),
    ({"probability_threshold": DROP},
     "model_quality: BinaryClassification needs probability_attribute and probability_threshold (where the "
     "captured response holds the probability, and the probability from which it is positive)"),
    ({"probability_threshold": 1}, "model_quality.probability_threshold: Input should be less than 1"),
    ({"metric": "rmse"}, f"model_quality: metric 'rmse' is not published for BinaryClassification; use one of "
                         f"{BINARY_METRICS}"),
    ({"threshold": 2}, "model_quality: threshold (2.0) must be between 0 and 1, exclusive, for auc"),
    ({"problem_type": "Regression", "probability_attribute": DROP, "probability_threshold": DROP},
     "model_quality: Regression needs inference_attribute (where the captured response holds the prediction)"),
    ({"problem_type": "MulticlassClassification", "inference_attribute": "0"},
     "model_quality: probability_threshold applies only to BinaryClassification; drop it for MulticlassClassification"),
    ({"inference_attribute": ""}, "model_quality.inference_attribute: String should have at least 1 character"),
    ({"ground_truth": GROUND_TRUTH}, "model_quality.ground_truth: Extra inputs are not permitted"),
])
def test_model_quality_config_rejects_with_one_line(changes, message):
    raw = {k: v for k, v in {**MODEL_QUALITY_CONFIG, **changes}.items() if v is not DROP}
    assert config_error(MonitoringConfig, {"model_quality": raw}) == message


@pytest.mark.parametrize("key, uri, kind", [
    ("ground_truth_s3_uri", "ml-ground-truth/churn", "String should match pattern"),
    ("ground_truth_s3_uri", "s3://Bad_Bucket/churn", "String should match pattern"),
    ("ground_truth_s3_uri", "s3://ml-ground-truth", "String should match pattern"),
    ("baseline_constraints_s3_uri", "s3://ml-baselines/churn/", "String should match pattern"),
])
def test_model_quality_config_uris_are_s3(key, uri, kind):
    raw = {"model_quality": {**MODEL_QUALITY_CONFIG, key: uri}}
    assert config_error(MonitoringConfig, raw).startswith(f"model_quality.{key}: {kind}")


def test_monitor_args_maps_the_model_quality_section():
    monitoring = MonitoringConfig(baseline=BASELINE, model_quality={
        **MODEL_QUALITY_CONFIG, "metric": "f1", "baseline_constraints_s3_uri": QUALITY_CONSTRAINTS})
    args = monitor_args(monitoring, AlertsConfig(), endpoint_name="prod-churn", capture_s3_uri=CAPTURE,
                        reports_bucket=FakeBucket(), vpc_id=VPC, subnet_ids=SUBNETS, production=True)
    assert (args.ground_truth_s3_uri, args.problem_type, args.inference_attribute, args.probability_attribute,
            args.probability_threshold_attribute, args.model_quality_metric, args.model_quality_threshold,
            args.model_quality_baseline_constraints_s3_uri) == (
        GROUND_TRUTH, "BinaryClassification", None, "0", 0.5, "f1", 0.75, QUALITY_CONSTRAINTS)
    plain = monitor_args(MonitoringConfig(baseline=BASELINE), AlertsConfig(), endpoint_name="prod-churn",
                         capture_s3_uri=CAPTURE, reports_bucket=FakeBucket(), vpc_id=VPC, subnet_ids=SUBNETS,
                         production=True)
    assert (plain.model_quality, plain.problem_type, plain.model_quality_threshold) == (False, None, None)


def prod_with(project_copy, old: str = "", new: str = ""):
    """Preview prod (which ships churn's model-quality section), with `old` replaced by `new`."""
    from emlops.offline.preview import preview_stack

    stack = project_copy / "stacks" / "Pulumi.prod.yaml"
    text = stack.read_text()
    assert text.count(old) == 1 or not old
    stack.write_text(text.replace(old, new) if old else text)
    return preview_stack("prod", start=project_copy)


def test_prod_with_model_quality_previews_and_every_request_is_valid(project_copy):
    plan = prod_with(project_copy).plan
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
    assert len(topics) == 1 and alarm["alarmActions"] == [
        f"arn:aws:sns:eu-west-1:333333333333:{topics[0].inputs['name']}"]
    assert plan.get("prod-churn-monitor-quality").inputs["monitoringScheduleConfig"]["monitoringType"] == "ModelQuality"


def test_a_bad_model_quality_section_names_the_stack_file_and_key(project_copy):
    from emlops.offline.preview import PreviewError

    with pytest.raises(PreviewError) as caught:
        prod_with(project_copy, "            probability_threshold: 0.5\n", "")
    assert str(caught.value) == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[0].monitoring.model_quality: BinaryClassification needs "
        "probability_attribute and probability_threshold (where the captured response holds the probability, and "
        "the probability from which it is positive)")
