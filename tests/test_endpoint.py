"""ModelEndpoint: argument checks, every child and its inputs, the execution role, and MlPlatform's models."""

from __future__ import annotations

import functools
import re
from typing import Any, Callable

import pulumi
import pytest
from pydantic import ValidationError

from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from tests.conftest import (
    ACCOUNT, allow, api_problems, auto_name, BASE_SETTINGS, concern_statements as statements, concerns, REGION,
    run_components, run_platform,
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
# without the artifact's kms_key_arn: any key, but only through S3 and only for objects of the artifact's bucket
DECRYPT_ARTIFACTS = {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["*"], "Condition": {
    "StringEquals": VIA_S3,
    "StringLike": {"kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-artifacts", "arn:aws:s3:::ml-artifacts/*"]}}}
PREFIX_CONDITION = {"StringLike": {"s3:prefix": ["models/churn/3/*"]}}
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/churn"
PLACEMENT = Placement(VPC, SUBNETS)
PROVISIONED: dict[str, Any] = {"variants": [{"name": "primary", "instance_type": "ml.m5.large"}]}
SERVERLESS: dict[str, Any] = {"serverless": {"memory_mb": 2048}}


def settings(base: dict[str, Any], **changes: Any) -> EndpointSettings:
    return EndpointSettings.model_validate({**base, **changes})


def provisioned_context(**changes: Any) -> EndpointContext:
    """An uncompressed (MLflow) model on instances in the VPC."""
    return EndpointContext(**{"artifact": ModelArtifact(PREFIX, compressed=False), "image_uri": IMAGE,
                              "placement": PLACEMENT, **changes})


def serverless_context(**changes: Any) -> EndpointContext:
    """A tarball on a serverless endpoint (no VPC)."""
    return EndpointContext(**{"artifact": ModelArtifact(TARBALL), "image_uri": IMAGE, **changes})


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    assert not isinstance(caught.value, ValidationError)
    return str(caught.value)


def settings_error(data: dict[str, Any]) -> tuple[tuple, str]:
    """Where and why EndpointSettings refuses DATA (which has exactly one problem)."""
    with pytest.raises(ValidationError) as caught:
        EndpointSettings.model_validate(data)
    [error] = caught.value.errors()
    return error["loc"], error["msg"]


def capture_bucket() -> SecureBucket:
    return SecureBucket("capture", SecureBucketArgs(kms_key_arn=KEY_ARN))


def refusal(endpoint_settings: EndpointSettings, context: Callable[[], EndpointContext], name: str = "churn") -> str:
    """The ValueError ModelEndpoint raises, after checking it registered nothing (the context's capture bucket,
    made before it, is all the plan holds)."""
    raised: list[str] = []

    def program() -> None:
        given = context()
        try:
            ModelEndpoint(name, endpoint_settings, given)
        except ValueError as exc:
            raised.append(str(exc))
    plan = run_components(program)
    assert [r.name for r in plan.resources if r.type != STACK and not r.name.startswith("capture")] == []
    [message] = raised
    return message


# -- settings -----------------------------------------------------------------------------------------

NAME_PATTERN = "must be 1-63 letters, digits or '-', starting and ending with a letter or digit"


def at_least(low: float) -> str:
    return f"Input should be greater than or equal to {low}"


def at_most(high: float) -> str:
    return f"Input should be less than or equal to {high}"


@pytest.mark.parametrize("changes, field, message", [
    ({"name": "primary_1"}, "name", NAME_PATTERN),
    ({"name": "a" * 64}, "name", NAME_PATTERN),
    ({"initial_instance_count": 0}, "initial_instance_count", at_least(1)),
    ({"weight": 0}, "weight", "Input should be greater than 0"),
    ({"instance_type": "ml.m5.larg"}, "instance_type",
     "Value error, 'ml.m5.larg' is not a SageMaker hosting instance type; did you mean 'ml.m5.large'?"),
])
def test_variant_settings_reject_with_a_message(changes, field, message):
    variant = {"name": "primary", "instance_type": "ml.m5.large", **changes}
    assert settings_error({"variants": [variant]}) == (("variants", 0, field), message)


P, S = PROVISIONED, SERVERLESS
EITHER = "Value error, give either variants (provisioned instances) or serverless"
SCALING = {"min_instances": 1, "max_instances": 2}
ROLLOUT_BOUNDS = {"canary_percent": (1, 50), "linear_step_percent": (10, 50), "wait_minutes": (0, 60),
                  "termination_wait_minutes": (0, 60), "max_execution_timeout_minutes": (10, 480)}


@pytest.mark.parametrize("base, changes, where, message", [
    (P, {"serverless": {"memory_mb": 2048}}, (), EITHER),
    (P, {"variants": []}, (), EITHER),
    (P, {"variants": [{"name": "a", "instance_type": "ml.m5.large"}, {"name": "b", "instance_type": "ml.m5.large"},
                      {"name": "a", "instance_type": "ml.c5.large"}]},
     (), "Value error, variant names must be unique; got a, b, a"),
    (S, {"serverless": {"memory_mb": 1000}}, ("serverless", "memory_mb"),
     "Input should be 1024, 2048, 3072, 4096, 5120 or 6144"),
    (S, {"serverless": {"memory_mb": 7168}}, ("serverless", "memory_mb"),
     "Input should be 1024, 2048, 3072, 4096, 5120 or 6144"),
    (S, {"serverless": {"max_concurrency": 0}}, ("serverless", "max_concurrency"), at_least(1)),
    (S, {"serverless": {"max_concurrency": 201}}, ("serverless", "max_concurrency"), at_most(200)),
    (S, {"network_isolation": True}, (),
     "Value error, serverless endpoints do not support network isolation; use variants or drop it"),
    (S, {"data_capture": {"enabled": True}}, (),
     "Value error, serverless endpoints cannot capture data; use variants or disable data_capture"),
    (P, {"data_capture": {"sampling_percentage": 101}}, ("data_capture", "sampling_percentage"), at_most(100)),
    (P, {"data_capture": {"sampling_percentage": -1}}, ("data_capture", "sampling_percentage"), at_least(0)),
    (P, {"deployment": {"strategy": "blue_green"}}, ("deployment", "strategy"),
     "Input should be 'all_at_once', 'canary' or 'linear'"),
    *[(P, {"deployment": {label: value}}, ("deployment", label), message)
      for label, (low, high) in ROLLOUT_BOUNDS.items()
      for value, message in ((low - 1, at_least(low)), (high + 1, at_most(high)))],
    (P, {"alarms": {"model_latency_ms": 0}}, ("alarms", "model_latency_ms"), at_least(1)),
    (P, {"alarms": {"invocation_5xx_errors": 0}}, ("alarms", "invocation_5xx_errors"), at_least(1)),
    (P, {"autoscaling": {"min_instances": 3, "max_instances": 2}}, ("autoscaling",),
     "Value error, min_instances (3) is larger than max_instances (2); lower min_instances or raise max_instances"),
    (P, {"autoscaling": {"min_instances": -1, "max_instances": 2}}, ("autoscaling", "min_instances"), at_least(0)),
    (P, {"autoscaling": {"min_instances": 0, "max_instances": 2}}, (),
     "Value error, 0 scales an endpoint to zero instances, which only asynchronous endpoints can (serving: async); give at least 1"),
    (S, {"autoscaling": SCALING}, (), "Value error, serverless endpoints scale by themselves; drop autoscaling"),
])
def test_endpoint_settings_reject_with_a_message(base, changes, where, message):
    assert settings_error({**base, **changes}) == (where, message)


def test_off_hours_ceiling_cannot_exceed_the_working_hours_ceiling():
    assert settings_error({**PROVISIONED, "autoscaling": {**SCALING, "off_hours": {
        "scale_down_cron": DOWN, "scale_up_cron": UP, "off_hours_max_instances": 5}}}) == (
        ("autoscaling",), "Value error, off_hours.off_hours_max_instances (5) is larger than max_instances (2); "
                          "off hours scale down, never up")


# -- context ------------------------------------------------------------------------------------------

NO_PLACEMENT = "a placement needs vpc_id and a list of subnet_ids"


@pytest.mark.parametrize("factory, message", [
    (lambda: ModelArtifact("ml-artifacts/m/", compressed=False),
     "model artifact 'ml-artifacts/m/' is not an s3://<bucket>[/<prefix>] URI"),
    (lambda: ModelArtifact("s3://ml-artifacts/"),
     "model artifact 's3://ml-artifacts/' is not an s3://<bucket>/<key> object URI"),
    (lambda: ModelArtifact("s3://ml-artifacts/m", compressed=False),
     "model artifact 's3://ml-artifacts/m' is a directory: it must end with '/'"),
    # a package's artifact is checked as well (it is what the role may read)
    (lambda: ModelArtifact("https://x/m.tar.gz", package_arn=PACKAGE),
     "model artifact 'https://x/m.tar.gz' is not an s3://<bucket>/<key> object URI"),
    (lambda: Placement(None, SUBNETS), NO_PLACEMENT),
    (lambda: Placement(VPC, []), NO_PLACEMENT),
])
def test_artifact_and_placement_reject_with_a_message(factory, message):
    assert error_of(factory) == message


@pytest.mark.parametrize("base, changes, context, message", [
    (S, {}, lambda: serverless_context(image_uri=None),
     "an image_uri is required unless the artifact is a model package"),
    (P, {}, lambda: provisioned_context(artifact=ModelArtifact(TARBALL, package_arn=PACKAGE)),
     "a model package names its own image; drop image_uri"),
    (P, {}, lambda: provisioned_context(placement=None),
     "provisioned variants run in private subnets: give a placement (vpc_id and subnet_ids)"),
    (S, {}, lambda: serverless_context(placement=PLACEMENT), "serverless endpoints have no VPC: drop the placement"),
    (S, {}, lambda: serverless_context(capture_bucket=capture_bucket()),
     "serverless endpoints cannot capture data; drop the capture bucket"),
    (P, {"data_capture": {"enabled": True}}, provisioned_context, "data_capture.enabled needs a capture bucket"),
])
def test_context_that_does_not_fit_the_settings_is_refused_before_anything_is_created(base, changes, context, message):
    assert refusal(settings(base, **changes), context) == message


@pytest.mark.parametrize("name", ["churn_1", "a" * 64, "", "-churn", "churn-", "modèle", "a" * 42])
def test_endpoint_name_is_checked_before_anything_is_created(name):
    assert refusal(settings(SERVERLESS), serverless_context, name) == (
        f"endpoint name {name!r} must be at most 41 ASCII letters, digits and '-', starting and ending with a "
        "letter or digit")


def test_the_longest_endpoint_name_leaves_room_for_auto_named_children():
    # the execution role, `<endpoint>-execution-role-<7 hex>`, is the longest child name: IAM allows 64
    plan = run_components(lambda: ModelEndpoint("a" * 41, settings(SERVERLESS), serverless_context()))
    assert len(plan.get("a" * 41 + "-execution-role").inputs["name"]) == 64
    assert len(plan.get("a" * 41 + "-config").inputs["name"]) == 56


# -- a provisioned endpoint with everything ----------------------------------------------------------

VARIANTS = [("primary", "ml.m5.xlarge", 2, 1.0), ("challenger", "ml.c5.xlarge", 1, 0.25)]
TAGS = {"team": "churn", "model-endpoint": "churn"}


@functools.cache
def provisioned_plan() -> Plan:
    endpoint_settings = EndpointSettings.model_validate({
        "environment": {"MODEL_SERVER_WORKERS": "2"},
        "variants": [{"name": v, "instance_type": t, "initial_instance_count": n, "weight": w}
                     for v, t, n, w in VARIANTS],
        "data_capture": {"sampling_percentage": 20},
        "deployment": {"strategy": "canary", "canary_percent": 20, "wait_minutes": 5, "termination_wait_minutes": 2,
                       "max_execution_timeout_minutes": 30},
        "alarms": {"model_latency_ms": 250, "invocation_5xx_errors": 3},
        "autoscaling": {"min_instances": 2, "max_instances": 6, "target_invocations_per_instance": 200,
                        "scale_in_cooldown_seconds": 600, "scale_out_cooldown_seconds": 120,
                        "off_hours": {"scale_down_cron": DOWN, "scale_up_cron": UP, "timezone": "Europe/Dublin"}},
    })

    def program() -> None:
        endpoint = ModelEndpoint("churn", endpoint_settings, provisioned_context(
            kms_key_arn=KEY_ARN, capture_bucket=capture_bucket(), governance=Governance({"team": "churn"})))
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

def endpoint_plan(endpoint_settings: EndpointSettings, context: EndpointContext | Callable[[], EndpointContext],
                  name: str = "churn") -> Plan:
    return run_components(lambda: ModelEndpoint(
        name, endpoint_settings, context if isinstance(context, EndpointContext) else context()))


FAST_SERVERLESS = {"serverless": {"memory_mb": 3072, "max_concurrency": 20}}


def test_serverless_endpoint_has_no_network_capture_key_use_or_scaling():
    plan = endpoint_plan(settings(FAST_SERVERLESS), serverless_context(), "fraud")
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
    artifact = ModelArtifact(TARBALL, kms_key_arn=artifact_key)
    plan = endpoint_plan(settings(SERVERLESS), serverless_context(artifact=artifact))
    assert statements(plan, "churn-execution-read-artifact") == [
        allow(["s3:GetObject"], ["arn:aws:s3:::ml-artifacts/models/fraud/model.tar.gz"]), decrypt]


@pytest.mark.parametrize("instance_type, key", [("ml.g5.xlarge", None), ("ml.m5d.large", None),
                                                ("ml.m5.large", KEY_ARN)])
def test_instances_with_local_storage_get_no_volume_key(instance_type, key):
    plan = endpoint_plan(settings(PROVISIONED, variants=[{"name": "primary", "instance_type": instance_type}]),
                         provisioned_context(kms_key_arn=KEY_ARN))
    config = plan.get("churn-config")
    assert config.inputs.get("kmsKeyArn") == key
    assert config.inputs["productionVariants"][0]["instanceType"] == instance_type
    assert api_problems(config) == []


def package_plan(artifact: str) -> Plan:
    return endpoint_plan(settings(PROVISIONED), provisioned_context(
        artifact=ModelArtifact(artifact, compressed=not artifact.endswith("/"), package_arn=PACKAGE), image_uri=None))


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


def test_model_package_image_in_ecr_is_pulled_from_its_repository():
    plan = endpoint_plan(settings(PROVISIONED), provisioned_context(
        artifact=ModelArtifact(TARBALL, package_arn=PACKAGE, image_uri=IMAGE), image_uri=None))
    assert statements(plan, "churn-execution-pull-image") == [
        allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [REPOSITORY]),
        allow(["ecr:GetAuthorizationToken"], ["*"])]


def test_unknown_artifact_stays_visibly_unknown_in_the_model_and_the_role():
    marker = "[unknown: models:/churn@champion]"
    plan = endpoint_plan(settings(PROVISIONED), provisioned_context(
        artifact=ModelArtifact(marker, compressed=False, known=False)))
    assert plan.get("churn-model").inputs["primaryContainer"]["modelDataSource"] == {
        "s3DataSources": [{"s3Uri": marker, "s3DataType": "S3Prefix", "compressionType": "None"}]}
    assert statements(plan, "churn-execution-read-artifact") == [allow(["s3:GetObject"], [marker])]
    assert api_problems(plan.get("churn-model")) == []


def test_unknown_package_stays_visibly_unknown_in_the_model_and_the_role():
    reference = "model-package-group/fraud (latest Approved)"
    marker, package, image = f"[unknown: {reference}]", f"[unknown: {reference}]", f"[unknown: {reference} image]"
    plan = endpoint_plan(settings(PROVISIONED), provisioned_context(artifact=ModelArtifact(
        marker, compressed=False, package_arn=package, image_uri=image, known=False), image_uri=None))
    assert plan.get("churn-model").inputs["primaryContainer"] == {"modelPackageName": package}
    assert statements(plan, "churn-execution-read-artifact") == [allow(["s3:GetObject"], [marker])]
    assert statements(plan, "churn-execution-pull-image") == [
        allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [image]),
        allow(["ecr:GetAuthorizationToken"], ["*"])]


def test_capture_turned_off_in_the_settings_leaves_the_given_bucket_unused():
    plan = endpoint_plan(settings(PROVISIONED, data_capture={"enabled": False}),
                         lambda: provisioned_context(capture_bucket=capture_bucket()))
    assert "dataCaptureConfig" not in plan.get("churn-config").inputs
    assert "WriteCapture" not in concerns(plan, "churn-execution")


def test_rollback_alarms_notify_the_alarm_topic_when_given():
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts"
    plan = endpoint_plan(settings(FAST_SERVERLESS), serverless_context(alarm_topic_arn=topic), "fraud")
    for alarm in plan.by_type(ALARM):
        assert (alarm.inputs["alarmActions"], alarm.inputs["okActions"]) == ([topic], [topic])
    assert "alarmActions" not in endpoint_plan(settings(FAST_SERVERLESS), serverless_context(), "fraud").get(
        "fraud-serverless-5xx").inputs


# -- MlPlatform's models ----------------------------------------------------------------------------

BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
PLATFORM_TAGS = {"owner": "ml-team", "cost-center": "cc-42", "data-classification": "internal",
                 "environment": "dev", "managed-by": "emlops"}
NETWORK = {"vpc_id": VPC, "private_subnet_ids": SUBNETS}


def platform_plan(*models: dict[str, Any]) -> Plan:
    """Platform `dev` serving MODELS (`models[]` entries) in your own network, with a permissions boundary."""
    return run_platform({"permission_boundary_arn": BOUNDARY, "network": NETWORK, "models": list(models)})


def data_key_arn(plan: Plan) -> str:
    """The platform's data key, by the key id its alias targets."""
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{plan.get('dev-data-alias').inputs['targetKeyId']}"


def churn(capture: bool = True) -> dict[str, Any]:
    # monitoring (on by default with capture) is the monitors' own concern: off here
    return {"name": "churn", "source": {"s3_uri": PREFIX}, "image": {"uri": IMAGE}, **PROVISIONED,
            "data_capture": {"enabled": capture}, "monitoring": {"enabled": False}}


FRAUD: dict[str, Any] = {"name": "fraud", "source": {"s3_uri": TARBALL}, "image": {"uri": IMAGE}, **SERVERLESS}


def test_platform_creates_one_capture_bucket_for_the_models_that_capture():
    plan = platform_plan(churn(), FRAUD)
    assert [r.name for r in plan.by_type(BUCKET_COMPONENT)] == [
        "dev-access-logs", "dev-datasets", "dev-artifacts", "dev-capture"]
    assert [r.name for r in plan.by_type(COMPONENT)] == ["dev-churn", "dev-fraud"]
    bucket = plan.get("dev-capture-bucket").inputs["bucket"]
    key = data_key_arn(plan)
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
    for model in ("churn", "fraud"):
        tags = {**PLATFORM_TAGS, "model-endpoint": f"dev-{model}"}
        assert plan.get(f"dev-{model}-execution-role").inputs["permissionsBoundary"] == BOUNDARY
        endpoint = plan.get(f"dev-{model}", COMPONENT)
        taggable = [r for r in plan.resources if r.urn == endpoint.urn or r.parent == endpoint.urn
                    or r.parent == plan.get(f"dev-{model}-execution", ROLE_COMPONENT).urn]
        assert {r.name: r.inputs["tags"] for r in taggable if "tags" in r.inputs} == {
            r.name: tags for r in taggable if r.type in (SG, ROLE, MODEL, CONFIG, ALARM, ENDPOINT)}


def models_error(*models: dict[str, Any]) -> str:
    """The one line the stack-file validation reports for these `models[]`."""
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, "network": NETWORK, "models": list(models)}, "stacks/Pulumi.test.yaml")
    return str(caught.value)


AT = "stacks/Pulumi.test.yaml: emlops:platform.models"


@pytest.mark.parametrize("models, message", [
    ([{**FRAUD, "name": "Churn"}],
     f"{AT}[0].name: must be lowercase letters and digits, single '-' between, got 'Churn'"),
    ([{**FRAUD, "name": "churn--v2"}],
     f"{AT}[0].name: must be lowercase letters and digits, single '-' between, got 'churn--v2'"),
    ([{**FRAUD, "data_capture": {"enabled": True}}],
     f"{AT}[0]: serverless endpoints cannot capture data; use variants or disable data_capture"),
    ([FRAUD, churn(), FRAUD], f"{AT}[2].name: model name 'fraud' is used twice; names must be unique"),
])
def test_platform_models_reject_with_a_message(models, message):
    assert models_error(*models) == message
