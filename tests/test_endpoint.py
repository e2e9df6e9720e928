"""ModelEndpoint: argument checks, every child and its inputs, the execution role, and MlPlatform's models."""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import pulumi
import pytest

from emlops.components.endpoint import ModelEndpoint, ModelEndpointArgs, Variant
from emlops.components.platform import MlPlatform, MlPlatformArgs, PlatformModel
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from tests.conftest import (
    ACCOUNT, allow, api_problems, auto_name, concern_statements as statements, concerns, REGION, run_components,
)

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:ModelEndpoint"
ROLE_COMPONENT = "emlops:index:ServiceRole"
KMS_COMPONENT = "emlops:index:KmsKey"
BUCKET_COMPONENT = "emlops:index:SecureBucket"
SG = "aws:ec2/securityGroup:SecurityGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
SCHEDULE = "aws:appautoscaling/scheduledAction:ScheduledAction"
KEY, ALIAS = "aws:kms/key:Key", "aws:kms/alias:Alias"

IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
REPOSITORY = "arn:aws:ecr:eu-west-1:763104351884:repository/sagemaker-xgboost"
PREFIX = "s3://ml-artifacts/models/churn/3/"
TARBALL = "s3://ml-artifacts/models/fraud/model.tar.gz"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/fraud/4"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
DOWN, UP = "cron(0 19 ? * MON-FRI *)", "cron(0 7 ? * MON-FRI *)"
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
# without artifact_kms_key_arn: any key, but only through S3 and only for objects of the artifact's bucket
DECRYPT_ARTIFACTS = {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["*"], "Condition": {
    "StringEquals": VIA_S3,
    "StringLike": {"kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-artifacts", "arn:aws:s3:::ml-artifacts/*"]}}}
PREFIX_CONDITION = {"StringLike": {"s3:prefix": ["models/churn/3/*"]}}
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/churn"
PROVISIONED: dict[str, Any] = dict(model_data_prefix=PREFIX, image_uri=IMAGE, vpc_id=VPC, subnet_ids=SUBNETS,
                                   variants=[Variant("primary", "ml.m5.large")])
SERVERLESS: dict[str, Any] = dict(model_data_url=TARBALL, image_uri=IMAGE, serverless_memory_mb=2048,
                                  network_isolation=False)


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def capture_bucket() -> SecureBucket:
    return SecureBucket("capture", SecureBucketArgs(kms_key_arn=KEY_ARN))


# -- arguments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"name": "primary_1"}, "variant name 'primary_1' must be letters, digits and '-' (at most 63)"),
    ({"name": "a" * 64}, f"variant name {'a' * 64!r} must be letters, digits and '-' (at most 63)"),
    ({"initial_instance_count": 0}, "variant 'primary': initial_instance_count (0) must be at least 1"),
    ({"weight": 0}, "variant 'primary': weight (0) must be positive"),
])
def test_variant_rejects_with_a_message(changes, message):
    assert error_of(lambda: Variant(**{"name": "primary", "instance_type": "ml.m5.large", **changes})) == message


P, S = PROVISIONED, SERVERLESS
ONE_SOURCE = "give exactly one of model_data_url, model_data_prefix, model_package_arn"
EITHER = "give either variants or serverless_memory_mb"
NO_VPC = "provisioned variants run in private subnets: give vpc_id and subnet_ids"
THRESHOLDS = "latency_threshold_ms and error_5xx_threshold must be at least 1"
PAIR = "give both autoscaling_min and autoscaling_max, or neither"
ROLLOUT_BOUNDS = {"canary_percent": (1, 50), "linear_step_percent": (10, 50), "wait_seconds": (0, 3600),
                  "termination_wait_seconds": (0, 3600), "max_execution_timeout_seconds": (600, 28800)}


@pytest.mark.parametrize("base, changes, message", [
    (P, {"model_data_prefix": None}, ONE_SOURCE),
    (P, {"model_data_url": TARBALL}, ONE_SOURCE),
    (P, {"model_package_arn": PACKAGE}, ONE_SOURCE),
    (P, {"image_uri": None}, "image_uri is required unless model_package_arn is given"),
    (P, {"model_data_prefix": "ml-artifacts/m/"}, "'ml-artifacts/m/' is not an s3://<bucket>/<key> URI"),
    (S, {"model_data_url": "s3://ml-artifacts/"}, "'s3://ml-artifacts/' is not an s3://<bucket>/<key> URI"),
    (P, {"model_data_prefix": "s3://ml-artifacts/m"}, "model_data_prefix 's3://ml-artifacts/m' must end with '/'"),
    (P, {"serverless_memory_mb": 2048}, EITHER),
    (P, {"variants": []}, EITHER),
    (P, {"variants": [Variant("a", "ml.m5.large"), Variant("b", "ml.m5.large"), Variant("a", "ml.c5.large")]},
     "variant names must be unique; got a, b, a"),
    (S, {"serverless_memory_mb": 1000}, "serverless_memory_mb (1000) must be 1024-6144 in steps of 1024"),
    (S, {"serverless_memory_mb": 7168}, "serverless_memory_mb (7168) must be 1024-6144 in steps of 1024"),
    (S, {"serverless_max_concurrency": 0}, "serverless_max_concurrency (0) must be 1-200"),
    (S, {"serverless_max_concurrency": 201}, "serverless_max_concurrency (201) must be 1-200"),
    (S, {"network_isolation": True},
     "serverless endpoints do not support network isolation; set network_isolation=False"),
    (P, {"vpc_id": None}, NO_VPC),
    (P, {"subnet_ids": []}, NO_VPC),
    (P, {"data_capture_sampling_percentage": 101}, "data_capture_sampling_percentage (101) must be 0-100"),
    (P, {"data_capture_sampling_percentage": -1}, "data_capture_sampling_percentage (-1) must be 0-100"),
    (P, {"deployment_strategy": "blue_green"},
     "deployment_strategy 'blue_green' must be all_at_once, canary or linear"),
    *[(P, {label: value}, f"{label} ({value}) must be {low}-{high}")
      for label, (low, high) in ROLLOUT_BOUNDS.items() for value in (low - 1, high + 1)],
    (P, {"latency_threshold_ms": 0}, THRESHOLDS),
    (P, {"error_5xx_threshold": 0}, THRESHOLDS),
    (P, {"autoscaling_min": 1}, PAIR),
    (P, {"autoscaling_max": 4}, PAIR),
    (P, {"autoscaling_min": 3, "autoscaling_max": 2},
     "autoscaling_min (3) is larger than autoscaling_max (2); lower autoscaling_min or raise autoscaling_max"),
    (P, {"autoscaling_min": 0, "autoscaling_max": 2}, "autoscaling_min (0) must be at least 1"),
    (S, {"autoscaling_min": 1, "autoscaling_max": 2},
     "serverless endpoints scale by themselves; drop autoscaling_min/max"),
    (P, {"autoscaling_min": 1, "autoscaling_max": 2, "off_hours_scale_down_cron": DOWN},
     "give both off_hours_scale_down_cron and off_hours_scale_up_cron, or neither"),
    (P, {"off_hours_scale_down_cron": DOWN, "off_hours_scale_up_cron": UP},
     "off-hours scaling needs autoscaling_min and autoscaling_max"),
])
def test_endpoint_args_reject_with_a_message(base, changes, message):
    assert error_of(lambda: ModelEndpointArgs(**{**base, **changes})) == message


def test_serverless_endpoint_cannot_capture():
    program = lambda: ModelEndpointArgs(**SERVERLESS, data_capture_bucket=capture_bucket())  # noqa: E731
    assert error_of(lambda: run_components(program)) == (
        "serverless endpoints cannot capture data; drop data_capture_bucket")


@pytest.mark.parametrize("name", ["churn_1", "a" * 64, "", "-churn", "churn-", "modèle", "a" * 49])
def test_endpoint_name_is_checked_before_anything_is_created(name):
    # outside a Pulumi program, registering the component would fail: this error comes before any registration
    assert error_of(lambda: ModelEndpoint(name, ModelEndpointArgs(**SERVERLESS))) == (
        f"endpoint name {name!r} must be at most 48 ASCII letters, digits and '-', starting and ending with a "
        "letter or digit")


def test_the_longest_endpoint_name_leaves_room_for_auto_named_children():
    plan = run_components(lambda: ModelEndpoint("a" * 48, ModelEndpointArgs(**SERVERLESS)))
    assert len(plan.get("a" * 48 + "-config").inputs["name"]) == 63


def test_package_artifact_uri_is_checked_with_the_arguments():
    args = {**PROVISIONED, "model_data_prefix": None, "image_uri": None, "model_package_arn": PACKAGE}
    assert error_of(lambda: ModelEndpointArgs(**args, package_artifact_uri="https://x/m.tar.gz")) == (
        "'https://x/m.tar.gz' is not an s3://<bucket>/<key> URI")


def test_off_hours_ceiling_cannot_exceed_the_working_hours_ceiling():
    assert error_of(lambda: ModelEndpointArgs(
        **PROVISIONED, autoscaling_min=1, autoscaling_max=2, off_hours_scale_down_cron=DOWN,
        off_hours_scale_up_cron=UP, off_hours_max_instances=5)) == (
        "off_hours_max_instances (5) must be 1-2 (at most autoscaling_max: off hours scale down, never up)")


# -- a provisioned endpoint with everything ----------------------------------------------------------

VARIANTS = [("primary", "ml.m5.xlarge", 2, 1.0), ("challenger", "ml.c5.xlarge", 1, 0.25)]
TAGS = {"team": "churn", "model-endpoint": "churn"}


@functools.cache
def provisioned_plan() -> Plan:
    def program() -> None:
        bucket = capture_bucket()
        endpoint = ModelEndpoint("churn", ModelEndpointArgs(
            model_data_prefix=PREFIX, image_uri=IMAGE, environment={"MODEL_SERVER_WORKERS": "2"},
            variants=[Variant(*v) for v in VARIANTS], vpc_id=VPC, subnet_ids=SUBNETS, kms_key_arn=KEY_ARN,
            data_capture_bucket=bucket, data_capture_sampling_percentage=20,
            deployment_strategy="canary", canary_percent=20, wait_seconds=300, termination_wait_seconds=120,
            max_execution_timeout_seconds=1800, latency_threshold_ms=250, error_5xx_threshold=3,
            autoscaling_min=2, autoscaling_max=6, target_invocations_per_instance=200,
            scale_in_cooldown_seconds=600, scale_out_cooldown_seconds=120,
            off_hours_scale_down_cron=DOWN, off_hours_scale_up_cron=UP, off_hours_timezone="Europe/Dublin",
            tags={"team": "churn"},
        ))
        pulumi.export("captureUri", endpoint.data_capture_uri)
    return run_components(program)


def test_provisioned_endpoint_children_are_named_after_it():
    plan = provisioned_plan()
    component = plan.get("churn", COMPONENT)
    assert component.parent == plan.get("emlops-test", STACK).urn
    alarms = [(ALARM, f"churn-{v}-{kind}") for v, *_ in VARIANTS for kind in ("5xx", "latency")]
    scaling = [(kind, f"churn-{v}-{suffix}") for v, *_ in VARIANTS for kind, suffix in (
        (TARGET, "scaling"), (SCALING_POLICY, "invocations"), (SCHEDULE, "off-hours"), (SCHEDULE, "working-hours"))]
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (SG, "churn-sg"), (ROLE_COMPONENT, "churn-execution"), (MODEL, "churn-model"), (CONFIG, "churn-config"),
        *alarms, (ENDPOINT, "churn-endpoint"), *scaling]
    assert [(r.type, r.name) for r in plan.children(plan.get("churn-execution", ROLE_COMPONENT).urn)] == [
        (ROLE, "churn-execution-role"), (ROLE_POLICY, "churn-execution-permissions")]
    # one inline policy for the role, a Sid per concern
    assert concerns(plan, "churn-execution") == [
        "ReadArtifact", "ReadArtifact2", "ReadArtifact3", "PullImage", "PullImage2", "Logs", "Logs2",
        "VpcAccess", "VpcAccess2", "WriteCapture", "WriteCapture2"]
    # (the capture bucket's own children are SecureBucket's, tested in test_storage)
    assert {t: n for t, n in plan.type_counts().items() if not t.startswith("aws:s3/")} == {
        STACK: 1, BUCKET_COMPONENT: 1, COMPONENT: 1, SG: 1, ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 1, MODEL: 1,
        CONFIG: 1, ALARM: 4, ENDPOINT: 1, TARGET: 2, SCALING_POLICY: 2, SCHEDULE: 4}


def test_model_runs_in_the_vpc_behind_a_security_group_without_ingress():
    plan = provisioned_plan()
    sg, model = plan.get("churn-sg"), plan.get("churn-model")
    assert sg.inputs == {
        "name": auto_name(sg), "vpcId": VPC, "ingress": [], "revokeRulesOnDelete": True, "tags": TAGS,
        "description": "SageMaker endpoint churn: no inbound; HTTPS out to VPC endpoints only",
        "egress": [{"description": "HTTPS to the VPC endpoints and the S3 gateway (private subnets, no internet route)",
                    "protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}]}
    security_group_id = model.inputs["vpcConfig"]["securityGroupIds"][0]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", security_group_id)
    assert model.inputs == {
        "name": auto_name(model), "enableNetworkIsolation": True, "tags": TAGS,
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{plan.get('churn-execution-role').inputs['name']}",
        "vpcConfig": {"subnets": SUBNETS, "securityGroupIds": [security_group_id]},
        "primaryContainer": {"image": IMAGE, "mode": "SingleModel", "environment": {"MODEL_SERVER_WORKERS": "2"},
                             "modelDataSource": {"s3DataSources": [
                                 {"s3Uri": PREFIX, "s3DataType": "S3Prefix", "compressionType": "None"}]}}}
    waits_for = {plan.get(n).urn for n in ("churn-sg", "churn-execution-role")} | {
        r.urn for r in plan.by_type(ROLE_POLICY)}
    assert set(model.dependencies) == waits_for
    assert api_problems(model) == []


def test_endpoint_configuration_has_the_variants_key_and_capture():
    plan = provisioned_plan()
    config = plan.get("churn-config")
    bucket = plan.get("capture-bucket").inputs["bucket"]
    model_name = plan.get("churn-model").inputs["name"]
    assert plan.outputs["captureUri"] == f"s3://{bucket}/datacapture/churn"
    assert config.inputs == {
        "name": auto_name(config), "kmsKeyArn": KEY_ARN, "tags": TAGS,
        "productionVariants": [{"variantName": v, "modelName": model_name, "instanceType": t,
                                "initialInstanceCount": n, "initialVariantWeight": w} for v, t, n, w in VARIANTS],
        "dataCaptureConfig": {
            "enableCapture": True, "initialSamplingPercentage": 20,
            "destinationS3Uri": f"s3://{bucket}/datacapture/churn", "kmsKeyId": KEY_ARN,
            "captureOptions": [{"captureMode": "Input"}, {"captureMode": "Output"}],
            "captureContentTypeHeader": {"csvContentTypes": ["text/csv"], "jsonContentTypes": ["application/json"]}}}
    assert api_problems(config) == []


def test_endpoint_keeps_its_name_and_rolls_back_a_canary_on_every_alarm():
    plan = provisioned_plan()
    endpoint = plan.get("churn-endpoint")
    alarm_names = [r.inputs["name"] for r in plan.by_type(ALARM)]
    assert alarm_names == [auto_name(r) for r in plan.by_type(ALARM)]
    assert endpoint.inputs == {
        "name": "churn", "endpointConfigName": plan.get("churn-config").inputs["name"], "tags": TAGS,
        "deploymentConfig": {
            "blueGreenUpdatePolicy": {
                "trafficRoutingConfiguration": {"type": "CANARY", "waitIntervalInSeconds": 300,
                                                "canarySize": {"type": "CAPACITY_PERCENT", "value": 20}},
                "terminationWaitInSeconds": 120, "maximumExecutionTimeoutInSeconds": 1800},
            "autoRollbackConfiguration": {"alarms": [{"alarmName": name} for name in alarm_names]}}}
    assert api_problems(endpoint) == []


@pytest.mark.parametrize("variant", [v for v, *_ in VARIANTS])
def test_rollback_alarms_watch_5xx_errors_and_p99_latency_in_microseconds(variant):
    plan = provisioned_plan()
    common = {"namespace": "AWS/SageMaker", "dimensions": {"EndpointName": "churn", "VariantName": variant},
              "period": 60, "evaluationPeriods": 3, "datapointsToAlarm": 2, "treatMissingData": "notBreaching",
              "tags": TAGS}
    errors, latency = plan.get(f"churn-{variant}-5xx"), plan.get(f"churn-{variant}-latency")
    assert errors.inputs == {**common, "name": auto_name(errors), "metricName": "Invocation5XXErrors",
                             "statistic": "Sum", "comparisonOperator": "GreaterThanOrEqualToThreshold", "threshold": 3,
                             "alarmDescription": f"churn/{variant}: 3+ 5XX errors a minute; rolls back deployments"}
    assert latency.inputs == {
        **common, "name": auto_name(latency), "metricName": "ModelLatency", "extendedStatistic": "p99",
        "comparisonOperator": "GreaterThanThreshold", "threshold": 250_000,
        "alarmDescription": f"churn/{variant}: p99 model latency above 250 ms; rolls back deployments"}


@pytest.mark.parametrize("variant", [v for v, *_ in VARIANTS])
def test_each_variant_scales_on_invocations_and_down_off_hours(variant):
    plan = provisioned_plan()
    scaled = {"serviceNamespace": "sagemaker", "scalableDimension": "sagemaker:variant:DesiredInstanceCount",
              "resourceId": f"endpoint/churn/variant/{variant}"}
    target = plan.get(f"churn-{variant}-scaling")
    assert target.inputs == {**scaled, "minCapacity": 2, "maxCapacity": 6, "tags": TAGS}
    assert target.dependencies == [plan.get("churn-endpoint").urn]
    assert plan.get(f"churn-{variant}-invocations").inputs == {
        **scaled, "name": f"churn-{variant}-invocations-per-instance", "policyType": "TargetTrackingScaling",
        "targetTrackingScalingPolicyConfiguration": {
            "predefinedMetricSpecification": {"predefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "targetValue": 200, "scaleInCooldown": 600, "scaleOutCooldown": 120}}
    for label, cron, low, high in (("off-hours", DOWN, 1, 1), ("working-hours", UP, 2, 6)):
        assert plan.get(f"churn-{variant}-{label}").inputs == {
            **scaled, "name": f"churn-{variant}-{label}", "schedule": cron, "timezone": "Europe/Dublin",
            "scalableTargetAction": {"minCapacity": low, "maxCapacity": high}}


def test_execution_role_reads_the_prefix_pulls_its_image_logs_uses_its_vpc_and_writes_capture():
    plan = provisioned_plan()
    bucket = plan.get("capture-bucket").inputs["bucket"]
    assert statements(plan, "churn-execution-read-artifact") == [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-artifacts/models/churn/3/*"]),
        allow(["s3:ListBucket"], ["arn:aws:s3:::ml-artifacts"], PREFIX_CONDITION),
        DECRYPT_ARTIFACTS]
    assert statements(plan, "churn-execution-pull-image") == [
        allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [REPOSITORY]),
        allow(["ecr:GetAuthorizationToken"], ["*"])]
    assert statements(plan, "churn-execution-logs") == [
        allow(["logs:CreateLogGroup"], [LOG_GROUP]),
        allow(["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], [f"{LOG_GROUP}:log-stream:*"])]
    assert statements(plan, "churn-execution-vpc-access") == [
        allow(["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
               "ec2:DescribeSubnets", "ec2:DescribeVpcs"], ["*"]),
        allow(["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
               "ec2:DeleteNetworkInterfacePermission"], ["*"],
              {"ArnEquals": {"ec2:Vpc": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{VPC}"}})]
    assert statements(plan, "churn-execution-write-capture") == [
        allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"arn:aws:s3:::{bucket}/datacapture/churn/*"]),
        allow(["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
               "kms:ReEncryptTo"], [KEY_ARN], {"StringEquals": VIA_S3})]


# -- serverless, tarballs, local storage, packages, unknowns -----------------------------------------

def endpoint_plan(name: str = "churn", **args) -> Plan:
    return run_components(lambda: ModelEndpoint(name, ModelEndpointArgs(**args)))


def test_serverless_endpoint_has_no_network_capture_key_use_or_scaling():
    plan = endpoint_plan("fraud", **{**SERVERLESS, "serverless_memory_mb": 3072, "serverless_max_concurrency": 20})
    # no key: a serverless endpoint has no volume to encrypt and cannot capture
    assert [(r.type, r.name) for r in plan.children(plan.get("fraud", COMPONENT).urn)] == [
        (ROLE_COMPONENT, "fraud-execution"), (MODEL, "fraud-model"),
        (CONFIG, "fraud-config"), (ALARM, "fraud-serverless-5xx"), (ALARM, "fraud-serverless-latency"),
        (ENDPOINT, "fraud-endpoint")]
    assert [r.name for r in plan.by_type(ROLE_POLICY)] == ["fraud-execution-permissions"]
    assert concerns(plan, "fraud-execution") == [
        "ReadArtifact", "ReadArtifact2", "PullImage", "PullImage2", "Logs", "Logs2"]
    assert plan.type_counts() == {STACK: 1, COMPONENT: 1, ROLE_COMPONENT: 1,
                                  ROLE: 1, ROLE_POLICY: 1, MODEL: 1, CONFIG: 1, ALARM: 2, ENDPOINT: 1}
    model, config, endpoint = plan.get("fraud-model"), plan.get("fraud-config"), plan.get("fraud-endpoint")
    tags = {"model-endpoint": "fraud"}
    assert model.inputs == {
        "name": auto_name(model), "enableNetworkIsolation": False, "tags": tags,
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{plan.get('fraud-execution-role').inputs['name']}",
        "primaryContainer": {"image": IMAGE, "mode": "SingleModel", "modelDataUrl": TARBALL}}
    assert config.inputs == {"name": auto_name(config), "tags": tags, "productionVariants": [{
        "variantName": "serverless", "modelName": model.inputs["name"],
        "serverlessConfig": {"memorySizeInMb": 3072, "maxConcurrency": 20}}]}
    assert endpoint.inputs["deploymentConfig"]["blueGreenUpdatePolicy"] == {
        "trafficRoutingConfiguration": {"type": "ALL_AT_ONCE", "waitIntervalInSeconds": 600},
        "terminationWaitInSeconds": 300, "maximumExecutionTimeoutInSeconds": 3600}
    assert endpoint.inputs["deploymentConfig"]["autoRollbackConfiguration"] == {"alarms": [
        {"alarmName": plan.get(f"fraud-serverless-{kind}").inputs["name"]} for kind in ("5xx", "latency")]}
    for resource in (model, config, endpoint):
        assert api_problems(resource) == []


@pytest.mark.parametrize("artifact_key, decrypt", [
    (None, DECRYPT_ARTIFACTS),
    (KEY_ARN, allow(["kms:DescribeKey", "kms:Decrypt"], [KEY_ARN], {"StringEquals": VIA_S3}))])
def test_a_tarball_is_read_as_exactly_that_object(artifact_key, decrypt):
    plan = endpoint_plan(**SERVERLESS, artifact_kms_key_arn=artifact_key)
    assert statements(plan, "churn-execution-read-artifact") == [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-artifacts/models/fraud/model.tar.gz"]), decrypt]


@pytest.mark.parametrize("instance_type, key", [("ml.g5.xlarge", None), ("ml.m5d.large", None),
                                                ("ml.m5.large", KEY_ARN)])
def test_instances_with_local_storage_get_no_volume_key(instance_type, key):
    plan = endpoint_plan(**{**PROVISIONED, "variants": [Variant("primary", instance_type)]}, kms_key_arn=KEY_ARN)
    config = plan.get("churn-config")
    assert config.inputs.get("kmsKeyArn") == key
    assert config.inputs["productionVariants"][0]["instanceType"] == instance_type
    assert api_problems(config) == []


def package_plan(artifact: str) -> Plan:
    return endpoint_plan(**{**PROVISIONED, "model_data_prefix": None, "image_uri": None},
                         model_package_arn=PACKAGE, package_artifact_uri=artifact)


def test_model_package_source_names_only_the_package_and_pulls_no_image():
    plan = package_plan(TARBALL)
    assert plan.get("churn-model").inputs["primaryContainer"] == {"modelPackageName": PACKAGE}
    assert [s.rstrip("0123456789") for s in concerns(plan, "churn-execution")] == [
        "ReadArtifact", "ReadArtifact", "Logs", "Logs", "VpcAccess", "VpcAccess"]
    assert statements(plan, "churn-execution-read-artifact") == [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-artifacts/models/fraud/model.tar.gz"]),
        DECRYPT_ARTIFACTS]
    assert api_problems(plan.get("churn-model")) == []


def test_model_package_with_a_prefix_artifact_reads_the_whole_prefix():
    assert statements(package_plan(PREFIX), "churn-execution-read-artifact")[:2] == [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-artifacts/models/churn/3/*"]),
        allow(["s3:ListBucket"], ["arn:aws:s3:::ml-artifacts"], PREFIX_CONDITION)]


def test_unknown_artifact_stays_visibly_unknown_in_the_model_and_the_role():
    marker = "[unknown: models:/churn@champion]"
    plan = endpoint_plan(**{**PROVISIONED, "model_data_prefix": marker})
    assert plan.get("churn-model").inputs["primaryContainer"]["modelDataSource"] == {
        "s3DataSources": [{"s3Uri": marker, "s3DataType": "S3Prefix", "compressionType": "None"}]}
    assert statements(plan, "churn-execution-read-artifact") == [allow(["s3:GetObject"], [marker])]
    assert api_problems(plan.get("churn-model")) == []


# -- MlPlatform's models ----------------------------------------------------------------------------

BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
PLATFORM_TAGS = {"owner": "ml-team", "environment": "dev", "managed-by": "emlops"}


def platform_plan(*models: PlatformModel) -> Plan:
    def program() -> None:
        platform = MlPlatform("dev", MlPlatformArgs(environment="dev", tags={"owner": "ml-team"},
                                                    permissions_boundary_arn=BOUNDARY, models=models))
        pulumi.export("dataKeyArn", platform.data_key.arn)
    return run_components(program)


def churn(capture: bool = True) -> PlatformModel:
    return PlatformModel("churn", ModelEndpointArgs(**PROVISIONED, tags={"team": "churn"}), capture_data=capture)


FRAUD = PlatformModel("fraud", ModelEndpointArgs(**SERVERLESS))


def test_platform_creates_one_capture_bucket_for_the_models_that_capture():
    plan = platform_plan(churn(), FRAUD)
    assert [r.name for r in plan.by_type(BUCKET_COMPONENT)] == [
        "dev-access-logs", "dev-datasets", "dev-artifacts", "dev-capture"]
    assert [r.name for r in plan.by_type(COMPONENT)] == ["dev-churn", "dev-fraud"]
    bucket = plan.get("dev-capture-bucket").inputs["bucket"]
    key = plan.outputs["dataKeyArn"]
    config = plan.get("dev-churn-config").inputs
    assert (config["kmsKeyArn"], config["dataCaptureConfig"]["kmsKeyId"]) == (key, key)
    assert config["dataCaptureConfig"]["destinationS3Uri"] == f"s3://{bucket}/datacapture/dev-churn"
    assert "dataCaptureConfig" not in plan.get("dev-fraud-config").inputs
    assert statements(plan, "dev-churn-execution-write-capture")[0] == allow(
        ["s3:AbortMultipartUpload", "s3:PutObject"], [f"arn:aws:s3:::{bucket}/datacapture/dev-churn/*"])
    assert "WriteCapture" not in concerns(plan, "dev-fraud-execution")
    assert plan.by_type(KMS_COMPONENT) == [plan.get("dev-data", KMS_COMPONENT)]


def test_platform_without_capturing_models_has_no_capture_bucket():
    plan = platform_plan(churn(capture=False), FRAUD)
    assert [r.name for r in plan.by_type(BUCKET_COMPONENT)] == ["dev-access-logs", "dev-datasets", "dev-artifacts"]
    assert "dataCaptureConfig" not in plan.get("dev-churn-config").inputs


def test_platform_boundary_and_tags_reach_every_endpoint_resource():
    plan = platform_plan(churn(), FRAUD)
    for model, extra in (("churn", {"team": "churn"}), ("fraud", {})):
        tags = {**PLATFORM_TAGS, **extra, "model-endpoint": f"dev-{model}"}
        assert plan.get(f"dev-{model}-execution-role").inputs["permissionsBoundary"] == BOUNDARY
        endpoint = plan.get(f"dev-{model}", COMPONENT)
        taggable = [r for r in plan.resources if r.urn == endpoint.urn or r.parent == endpoint.urn
                    or r.parent == plan.get(f"dev-{model}-execution", ROLE_COMPONENT).urn]
        assert {r.name: r.inputs["tags"] for r in taggable if "tags" in r.inputs} == {
            r.name: tags for r in taggable if r.type in (SG, ROLE, MODEL, CONFIG, ALARM, ENDPOINT)}


@pytest.mark.parametrize("factory, message", [
    (lambda: PlatformModel("Churn", ModelEndpointArgs(**SERVERLESS)),
     "model name 'Churn' must be lowercase letters and digits, single '-' between"),
    (lambda: PlatformModel("churn--v2", ModelEndpointArgs(**SERVERLESS)),
     "model name 'churn--v2' must be lowercase letters and digits, single '-' between"),
    (lambda: PlatformModel("fraud", ModelEndpointArgs(**SERVERLESS), capture_data=True),
     "model 'fraud': serverless endpoints cannot capture data"),
    (lambda: MlPlatformArgs(environment="dev", models=[FRAUD, churn(), FRAUD]),
     "model names must be unique; got fraud, churn, fraud"),
])
def test_platform_models_reject_with_a_message(factory, message):
    assert error_of(factory) == message


def test_rollback_alarms_notify_the_alarm_topic_when_given():
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
    plan = endpoint_plan("fraud", **{**SERVERLESS, "serverless_memory_mb": 3072, "serverless_max_concurrency": 20},
                         alarm_topic_arn=topic)
    for alarm in plan.by_type(ALARM):
        assert (alarm.inputs["alarmActions"], alarm.inputs["okActions"]) == ([topic], [topic])
    assert "alarmActions" not in endpoint_plan("fraud", **{**SERVERLESS, "serverless_memory_mb": 3072}).get(
        "fraud-serverless-5xx").inputs
