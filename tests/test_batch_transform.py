"""BatchTransform: its settings and their one-line errors, the SDK-built definition, every child and its inputs,
the roles, what starts a run, who hears of failures, and the monitor of its inputs."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from typing import Any, Callable

import pytest

from emlops.catalog.aws import api_enum, api_limits
from emlops.catalog.requests import ApiRequest, to_api_request, validate_request
from emlops.components.batch_transform import BatchTransform, BatchTransformContext, BatchTransformSettings, derived_names
from emlops.components.batch_transform_args import InputMonitoringSettings
from emlops.components.batch_transform_definition import TransformSpec, build_definition
from emlops.components.endpoint_args import ModelArtifact
from emlops.components.naming import room
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from tests.conftest import (ACCOUNT, BASE_SETTINGS, REGION, allow, api_problems, auto_name, policy_statements,
                            run_components)

COMPONENT, ROLE_COMPONENT = "emlops:index:BatchTransform", "emlops:index:ServiceRole"
MONITOR_COMPONENT = "emlops:index:ModelMonitor"
SG, MODEL, PIPELINE = "aws:ec2/securityGroup:SecurityGroup", "aws:sagemaker/model:Model", "aws:sagemaker/pipeline:Pipeline"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
RULE, TARGET = "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"
JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ml-alerts"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-inference:2.0.1"
ARTIFACT = "s3://ml-models/churn/7/model.tar.gz"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/7"
VPC, SUBNETS = "vpc-0123456789abcdef0", ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
STATISTICS, CONSTRAINTS = "s3://ml-baselines/churn/statistics.json", "s3://ml-baselines/churn/constraints.json"
TAGS = {"team": "churn", "batch-transform": "dev-churn-scoring"}
NETWORK = {"vpc_id": VPC, "private_subnet_ids": SUBNETS}
FULL = {"schedule": "cron(0 2 * * ? *)", "start_on_new_data": True,
        "input_prefix": "scoring/churn/", "output_prefix": "churn-scoring/", "environment": {"LOG_LEVEL": "info"},
        "monitoring": {"baseline": {"statistics_s3_uri": STATISTICS, "constraints_s3_uri": CONSTRAINTS},
                       "drift_features": ["tenure_months"]}}


def settings(**changes: Any) -> BatchTransformSettings:
    """A stack file's batch_transforms[] entry (validated like one)."""
    return BatchTransformSettings.model_validate({**FULL, **changes})


def plan_of(section: BatchTransformSettings, artifact: ModelArtifact = ModelArtifact(ARTIFACT),
            image_uri: Any = IMAGE, **context: Any) -> Plan:
    def program() -> None:
        datasets = SecureBucket("datasets", SecureBucketArgs(kms_key_arn=KEY_ARN))
        inference = SecureBucket("inference", SecureBucketArgs(kms_key_arn=KEY_ARN))
        BatchTransform("dev-churn-scoring", section, BatchTransformContext(**{
            "pipeline_name": "dev-churn-scoring", "artifact": artifact, "image_uri": image_uri,
            "input_bucket": datasets, "output_bucket": inference, "placement": Placement(VPC, SUBNETS),
            "alerts_topic_arn": TOPIC, "governance": Governance({"team": "churn"}), **context}))
    return run_components(program)


@functools.cache
def full_plan() -> Plan:
    return plan_of(settings())


def bucket(plan: Plan, name: str) -> str:
    return plan.get(f"{name}-bucket").inputs["bucket"]


def definition(plan: Plan) -> dict[str, Any]:
    return json.loads(plan.get("dev-churn-scoring-pipeline", PIPELINE).inputs["pipelineDefinition"])


def role_arn(plan: Plan, role: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{plan.get(f'{role}-role', ROLE).inputs['name']}"


def config_error(changes: dict[str, Any], **platform: Any) -> str:
    """The one-line error of a dev stack file whose batch_transforms[0] is FULL with `changes`."""
    entry = {"name": "churn-scoring", "source": {"s3_uri": ARTIFACT}, "image": {"uri": IMAGE}, **FULL, **changes}
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, "network": NETWORK, "batch_transforms": [entry], **platform},
                              "stacks/Pulumi.dev.yaml")
    return str(caught.value)


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


# -- settings -------------------------------------------------------------------------------------------

def test_settings_defaults_are_sagemakers():
    section = BatchTransformSettings.model_validate({"input_prefix": "in/", "output_prefix": "out/"})
    assert section.model_dump() == {
        "schedule": None, "start_on_new_data": False, "input_prefix": "in/", "output_prefix": "out/",
        "instance_type": "ml.m5.xlarge", "instance_count": 1, "expected_run_minutes": None, "max_payload_mb": 6,
        "max_concurrent_transforms": 0,
        "batch_strategy": "MultiRecord", "split_type": "Line", "content_type": "text/csv", "accept": "text/csv",
        "assemble_with": "Line", "environment": {}, "monitoring": None}
    # the choices are botocore's enums, the environment's limit its TransformEnvironmentMap
    fields = BatchTransformSettings.model_fields
    for key, shape in (("batch_strategy", "BatchStrategy"), ("split_type", "SplitType"),
                       ("assemble_with", "AssemblyType")):
        assert fields[key].annotation.__args__ == api_enum("sagemaker", shape)
    assert api_limits("sagemaker", "TransformEnvironmentMap").max == 16
    assert "at most 16" in fields["environment"].description
    assert section.monitored_format is None


def test_input_monitoring_is_daily_by_default_in_every_environment():
    monitoring = settings().monitoring
    assert isinstance(monitoring, InputMonitoringSettings)
    assert (monitoring.schedule_expression(True), monitoring.schedule_expression(False)) == (
        "cron(0 0 ? * * *)", "cron(0 0 ? * * *)")
    assert settings(content_type="application/jsonlines", accept="application/jsonlines").monitored_format == "json"


SEVENTEEN = {f"VAR_{i}": "x" for i in range(17)}


@pytest.mark.parametrize("changes, message", [
    ({"name": "churn_scoring"}, "name: must be a SageMaker name: 1-63 letters, digits and '-', starting and ending "
                                "with a letter or digit, got 'churn_scoring'"),
    ({"input_prefix": "scoring/churn*/"}, "input_prefix: must be folders of letters, digits, '.', '_', '=' and '-', "
                                          "each starting with a letter or digit and ending in '/', e.g. "
                                          "'scoring/churn/', got 'scoring/churn*/'"),
    ({"input_prefix": "scoring/churn"}, "input_prefix: must be folders of letters, digits, '.', '_', '=' and '-', "
                                        "each starting with a letter or digit and ending in '/', e.g. "
                                        "'scoring/churn/', got 'scoring/churn'"),
    ({"output_prefix": "scoring/churn/results/"},
     "output_prefix: 'scoring/churn/results/' overlaps input_prefix 'scoring/churn/'; a run would read its own "
     "results wherever both are in one bucket: keep them apart"),
    ({"output_prefix": "scoring/"},
     "output_prefix: 'scoring/' overlaps input_prefix 'scoring/churn/'; a run would read its own results wherever "
     "both are in one bucket: keep them apart"),
    ({"output_prefix": "monitoring/churn/"},
     "output_prefix: 'monitoring/churn/' overlaps 'monitoring/', where the platform keeps what transforms capture "
     "and their monitoring reports; choose another prefix"),
    ({"instance_type": "ml.t2.medium"},
     "instance_type: 'ml.t2.medium' is not a SageMaker batch transform instance type (see TransformInstanceType in "
     "the SageMaker API)"),
    ({"instance_type": "m5.xlarge"},
     "instance_type: 'm5.xlarge' is not a SageMaker batch transform instance type; did you mean 'ml.m5.xlarge'?"),
    ({"instance_count": 0}, "instance_count: must be greater than or equal to 1, got 0"),
    ({"max_payload_mb": 101}, "max_payload_mb: must be less than or equal to 100, got 101"),
    ({"max_payload_mb": 10, "max_concurrent_transforms": 11},
     "max_concurrent_transforms: 11 requests of up to 10 MB is 110 MB at once; SageMaker allows 100 MB (lower "
     "max_concurrent_transforms or max_payload_mb)"),
    ({"batch_strategy": "Mini"}, "batch_strategy: must be 'MultiRecord' or 'SingleRecord', got 'Mini'"),
    ({"split_type": "None", "batch_strategy": "SingleRecord"},
     "batch_strategy: needs split_type Line, RecordIO or TFRecord (with None, each object is one request)"),
    ({"content_type": "csv"}, "content_type: 'csv' is not a MIME type like 'text/csv' or 'application/json'"),
    ({"environment": SEVENTEEN},
     "environment: has 17 variables; SageMaker allows at most 16 in a transform job's environment "
     "(TransformEnvironmentMap)"),
    ({"environment": {"LOG-LEVEL": "info"}},
     "environment.LOG-LEVEL: is not an environment variable name SageMaker accepts: a letter or '_', then letters, "
     "digits or '_' ([a-zA-Z_][a-zA-Z0-9_]{0,1023})"),
    ({"environment": {"NOTES": "x" * 10241}},
     "environment.NOTES: is 10241 characters long; SageMaker allows at most 10240 in a transform job's environment "
     "value"),
    ({"schedule": "cron(0 2 * * * *)"},
     "schedule: 'cron(0 2 * * * *)': exactly one of day-of-month and day-of-week must be '?'"),
    ({"schedule": "rate(1 days)"}, "schedule: 'rate(1 days)': a value of 1 takes the singular unit, 'rate(1 day)'"),
    ({"content_type": "application/x-parquet"},
     "monitoring: the analyzer reads CSV or JSON Lines records (text/csv, application/jsonlines, application/json); "
     "content_type is 'application/x-parquet'"),
    ({"monitoring": {"drift_features": ["age"]}}, "monitoring.baseline: field required"),
    ({"monitoring": {"baseline": FULL["monitoring"]["baseline"], "schedule": "cron(30 2 ? * * *)"}},
     "monitoring.schedule: 'cron(30 2 ? * * *)' must be one of SageMaker's monitoring schedules: hourly "
     "'cron(0 * ? * * *)', daily 'cron(0 H ? * * *)' or every N hours 'cron(0 H/N ? * * *)' (H 0-23, N 1-24)"),
])
def test_a_bad_setting_is_one_line_naming_the_stack_file_and_key(changes, message):
    assert config_error(changes) == f"stacks/Pulumi.dev.yaml: emlops:platform.batch_transforms[0].{message}"


def test_the_context_is_checked_before_anything_is_created():
    context = dict(pipeline_name="dev-churn-scoring", input_bucket=None, placement=Placement(VPC, SUBNETS),
                   alerts_topic_arn=TOPIC)

    class Bucket:
        kms_key_arn = None

    checks = [
        (dict(artifact=ModelArtifact(ARTIFACT), output_bucket=Bucket()),
         "an image_uri is required unless the artifact is a model package"),
        (dict(artifact=ModelArtifact(ARTIFACT, package_arn=PACKAGE), image_uri=IMAGE, output_bucket=Bucket()),
         "a model package names its own image; drop image_uri"),
        (dict(artifact=ModelArtifact(ARTIFACT), image_uri=IMAGE, output_bucket=Bucket()),
         "the output bucket has no KMS key: give kms_key_arn"),
        (dict(artifact=ModelArtifact(ARTIFACT), image_uri=IMAGE, output_bucket=Bucket(), pipeline_name="dev_scoring"),
         "pipeline_name 'dev_scoring' must be letters, digits and '-' (at most 256)"),
    ]
    for changes, message in checks:
        assert error_of(lambda: BatchTransform("dev-churn-scoring", settings(), BatchTransformContext(
            **{**context, **changes}))) == message


# -- children -------------------------------------------------------------------------------------------

def test_children_in_order_with_every_trigger_and_the_monitor():
    plan = full_plan()
    component = plan.get("dev-churn-scoring", COMPONENT)
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (SG, "dev-churn-scoring-sg"),
        (ROLE_COMPONENT, "dev-churn-scoring-execution"),
        (MODEL, "dev-churn-scoring-model"),
        (ROLE_COMPONENT, "dev-churn-scoring-runner"),
        (PIPELINE, "dev-churn-scoring-pipeline"),
        (ROLE_COMPONENT, "dev-churn-scoring-events"),
        (RULE, "dev-churn-scoring-schedule"),
        (TARGET, "dev-churn-scoring-schedule-start"),
        (RULE, "dev-churn-scoring-new-data"),
        (TARGET, "dev-churn-scoring-new-data-start"),
        (RULE, "dev-churn-scoring-failed"),
        (TARGET, "dev-churn-scoring-failed-notify"),
        (MONITOR_COMPONENT, "dev-churn-scoring-monitor"),
    ]
    execution = plan.get("dev-churn-scoring-execution", ROLE_COMPONENT)
    assert [r.name for r in plan.children(execution.urn)] == [
        "dev-churn-scoring-execution-role", "dev-churn-scoring-execution-permissions"]
    monitor = plan.get("dev-churn-scoring-monitor", MONITOR_COMPONENT)
    # the monitor's jobs share the transform's security group and notify the alerts topic: no group, no topic
    assert [r.type for r in plan.children(monitor.urn)] == [
        ROLE_COMPONENT, JOB, SCHEDULE, "aws:cloudwatch/metricAlarm:MetricAlarm", RULE, TARGET, RULE, TARGET]


def test_schedule_only_without_monitoring_from_a_model_package():
    package = ModelArtifact("[unknown: model-package-group/churn (latest Approved)]", compressed=False,
                            package_arn="[unknown: model-package-group/churn (latest Approved)]",
                            image_uri="[unknown: model-package-group/churn (latest Approved) image]", known=False)
    plan = plan_of(settings(start_on_new_data=False, monitoring=None), artifact=package, image_uri=None,
                   governance=Governance({"team": "churn"}, "arn:aws:iam::123456789012:policy/boundary",
                                         role_path="/emlops/dev/"))
    assert plan.type_counts() == {
        "pulumi:pulumi:Stack": 1, "emlops:index:SecureBucket": 2, "aws:s3/bucket:Bucket": 2,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 2,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 2,
        "aws:s3/bucketVersioning:BucketVersioning": 2,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 2,
        "aws:s3/bucketPolicy:BucketPolicy": 2, COMPONENT: 1, SG: 1, ROLE_COMPONENT: 3, ROLE: 3, ROLE_POLICY: 3,
        MODEL: 1, PIPELINE: 1, RULE: 2, TARGET: 2}
    model = plan.get("dev-churn-scoring-model", MODEL)
    assert model.inputs["primaryContainer"] == {
        "modelPackageName": "[unknown: model-package-group/churn (latest Approved)]"}
    # the package's image and artifact are named as the preview shows them
    permissions = {s["Sid"]: s for s in policy_statements(plan, "dev-churn-scoring-execution-permissions")}
    assert permissions["ReadArtifact"]["Resource"] == ["[unknown: model-package-group/churn (latest Approved)]"]
    assert permissions["PullImage"]["Resource"] == ["[unknown: model-package-group/churn (latest Approved) image]"]
    # roles carry the boundary; the roles without data access go on the platform's path
    roles = {r.name: r.inputs for r in plan.by_type(ROLE)}
    assert {name: (inputs["path"], inputs["permissionsBoundary"]) for name, inputs in roles.items()} == {
        "dev-churn-scoring-execution-role": ("/", "arn:aws:iam::123456789012:policy/boundary"),
        "dev-churn-scoring-runner-role": ("/emlops/dev/", "arn:aws:iam::123456789012:policy/boundary"),
        "dev-churn-scoring-events-role": ("/emlops/dev/", "arn:aws:iam::123456789012:policy/boundary")}
    assert "DataCaptureConfig" not in definition(plan)["Steps"][0]["Arguments"]


def test_model_runs_isolated_in_the_private_subnets_as_its_own_role():
    plan = full_plan()
    model = plan.get("dev-churn-scoring-model", MODEL)
    group = plan.get("dev-churn-scoring-sg", SG)
    inputs = dict(model.inputs)
    vpc = dict(inputs.pop("vpcConfig"))
    assert inputs == {
        "name": auto_name(model), "executionRoleArn": role_arn(plan, "dev-churn-scoring-execution"),
        "primaryContainer": {"image": IMAGE, "mode": "SingleModel", "modelDataUrl": ARTIFACT},
        "enableNetworkIsolation": True, "tags": TAGS}
    [group_id] = vpc.pop("securityGroupIds")  # the group's id, which the mocks make up
    assert vpc == {"subnets": SUBNETS} and re.fullmatch(r"sg-[0-9a-f]{17}", group_id)
    assert group.custom and plan.get("dev-churn-scoring", COMPONENT).urn == group.parent
    assert group.inputs["ingress"] == [] and [rule["toPort"] for rule in group.inputs["egress"]] == [443]
    # SageMaker checks the role when the model is created
    assert set(model.dependencies) >= {r.urn for r in plan.by_type(ROLE_POLICY)
                                       if r.name.startswith("dev-churn-scoring-execution-")}
    assert api_problems(model) == []


def test_pipeline_inputs_and_create_request():
    plan = full_plan()
    pipeline = plan.get("dev-churn-scoring-pipeline", PIPELINE)
    inputs = dict(pipeline.inputs)
    inputs.pop("pipelineDefinition")
    assert inputs == {
        "pipelineName": "dev-churn-scoring", "pipelineDisplayName": "dev-churn-scoring",
        "pipelineDescription": "Scores the objects under scoring/churn/ with dev-churn-scoring's model into "
                               "churn-scoring/",
        "roleArn": role_arn(plan, "dev-churn-scoring-runner"), "tags": TAGS}
    assert validate_request(to_api_request(PIPELINE, pipeline.inputs)) == []


# -- the definition -------------------------------------------------------------------------------------

def test_definition_is_one_transform_step_from_the_sdk():
    plan = full_plan()
    document = definition(plan)
    assert document["Version"] == "2020-12-01"
    [step] = document["Steps"]
    assert (step["Name"], step["Type"]) == ("Transform", "Transform")
    model = plan.get("dev-churn-scoring-model", MODEL).inputs["name"]
    datasets, inference = bucket(plan, "datasets"), bucket(plan, "inference")
    assert step["Arguments"] == {
        "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{datasets}/scoring/churn/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": f"s3://{inference}/churn-scoring/", "Accept": "text/csv",
                            "AssembleWith": "Line", "KmsKeyId": KEY_ARN},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeKmsKeyId": KEY_ARN},
        "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6, "Environment": {"LOG_LEVEL": "info"},
        "DataCaptureConfig": {"DestinationS3Uri": f"s3://{inference}/datacapture/dev-churn-scoring",
                              "KmsKeyId": KEY_ARN, "GenerateInferenceId": True}}
    # what a run sends SageMaker is a valid CreateTransformJob request (the pipeline names the job)
    request = ApiRequest("sagemaker", "CreateTransformJob", {**step["Arguments"], "TransformJobName": "pipelines-x"})
    assert validate_request(request) == []


def test_definition_follows_the_settings_and_is_deterministic_and_offline(no_network):
    spec = TransformSpec(
        region="us-east-1", model_name="m-1", input_s3_uri="s3://in-bucket/a/", output_s3_uri="s3://out-bucket/b/",
        kms_key_arn=KEY_ARN, instance_type="ml.c5.2xlarge", instance_count=3, max_payload_mb=0,
        max_concurrent_transforms=8, batch_strategy=None, split_type="None", content_type="application/json",
        accept="application/json", assemble_with="None", environment=(("A", "1"), ("B", "2")))
    first = build_definition(spec, "dev-scoring")
    assert first == build_definition(spec, "dev-scoring")
    arguments = json.loads(first)["Steps"][0]["Arguments"]
    assert {key: arguments[key] for key in ("TransformResources", "MaxConcurrentTransforms", "MaxPayloadInMB",
                                            "Environment")} == {
        "TransformResources": {"InstanceType": "ml.c5.2xlarge", "InstanceCount": 3, "VolumeKmsKeyId": KEY_ARN},
        "MaxConcurrentTransforms": 8, "MaxPayloadInMB": 0, "Environment": {"A": "1", "B": "2"}}
    assert "BatchStrategy" not in arguments and arguments["TransformInput"]["SplitType"] == "None"
    # GPU instances with local NVMe storage take no volume key (their hardware encrypts it); the results still do
    gpu = json.loads(build_definition(dataclasses.replace(spec, instance_type="ml.g5.xlarge"), "dev-scoring"))
    arguments = gpu["Steps"][0]["Arguments"]
    assert arguments["TransformResources"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 3}
    assert arguments["TransformOutput"]["KmsKeyId"] == KEY_ARN


def test_one_sdk_session_builds_every_definition_of_a_region(monkeypatch):
    from emlops.components import sagemaker_sdk
    from emlops.components.retraining_definition import build_definition as build_retraining
    from tests.test_retraining import spec as retraining_spec

    monkeypatch.setattr(sagemaker_sdk, "_SESSIONS", {})
    spec = TransformSpec(
        region=REGION, model_name="m-1", input_s3_uri="s3://in-bucket/a/", output_s3_uri="s3://out-bucket/b/",
        kms_key_arn=KEY_ARN, instance_type="ml.m5.xlarge", instance_count=1, max_payload_mb=6,
        max_concurrent_transforms=0, batch_strategy="MultiRecord", split_type="Line", content_type="text/csv",
        accept="text/csv", assemble_with="Line")
    first = build_definition(spec, "dev-scoring")
    retraining = build_retraining(retraining_spec(), "dev-churn-retraining")
    assert list(sagemaker_sdk._SESSIONS) == [REGION]
    # the session answers each build's own default bucket: the retraining's artifacts, then the transform's again
    assert sagemaker_sdk._SESSIONS[REGION].default_bucket() == "ml-output"
    assert build_definition(spec, "dev-scoring") == first and "ml-output" in retraining


# -- the roles ------------------------------------------------------------------------------------------

def test_the_model_reads_only_the_input_prefix_and_writes_only_its_prefixes():
    plan = full_plan()
    datasets, inference = (f"arn:aws:s3:::{bucket(plan, name)}" for name in ("datasets", "inference"))
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    write = ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
             "kms:ReEncryptTo"]
    statements = {s.pop("Sid"): s for s in policy_statements(plan, "dev-churn-scoring-execution-permissions")}
    assert list(statements) == [
        "ReadInput", "ReadInput2", "ReadInput3", "WriteOutput", "WriteOutput2", "WriteCapture", "WriteCapture2",
        "ReadArtifact", "ReadArtifact2", "PullImage", "PullImage2", "Key", "Key2", "Logs", "Logs2", "VpcAccess",
        "VpcAccess2"]
    assert [statements[sid] for sid in ("ReadInput", "ReadInput2", "ReadInput3")] == [
        allow(["s3:ListBucket"], [datasets], {"StringLike": {"s3:prefix": ["scoring/churn/*"]}}),
        allow(["s3:GetObject", "s3:GetObjectVersion"], [f"{datasets}/scoring/churn/*"]),
        allow(["kms:DescribeKey", "kms:Decrypt"], [KEY_ARN], via_s3)]
    assert [statements[sid] for sid in ("WriteOutput", "WriteOutput2", "WriteCapture", "WriteCapture2")] == [
        allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"{inference}/churn-scoring/*"]),
        allow(write, [KEY_ARN], via_s3),
        allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"{inference}/datacapture/dev-churn-scoring/*"]),
        allow(write, [KEY_ARN], via_s3)]
    assert statements["ReadArtifact"] == allow(["s3:GetObject"], ["arn:aws:s3:::ml-models/churn/7/model.tar.gz"])
    # the artifact's key is not known: decrypt through S3 only, only objects of its bucket
    assert statements["ReadArtifact2"]["Condition"]["StringLike"] == {
        "kms:EncryptionContext:aws:s3:arn": ["arn:aws:s3:::ml-models", "arn:aws:s3:::ml-models/*"]}
    assert statements["PullImage"] == allow(
        ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
        [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/churn-inference"])
    assert statements["Key"] == allow(write, [KEY_ARN])
    assert statements["Key2"] == allow(["kms:CreateGrant"], [KEY_ARN], {"Bool": {"kms:GrantIsForAWSResource": "true"}})
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TransformJobs"
    assert (statements["Logs"], statements["Logs2"]) == (
        allow(["logs:CreateLogGroup"], [logs]),
        allow(["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"], [f"{logs}:log-stream:*"]))


def test_the_runner_only_runs_transform_jobs_and_no_role_passes_a_role():
    plan = full_plan()
    assert policy_statements(plan, "dev-churn-scoring-runner-run-transform") == [allow(
        ["sagemaker:AddTags", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
         "sagemaker:StopTransformJob"], [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/pipelines-*"])]
    pipeline_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/dev-churn-scoring"
    assert policy_statements(plan, "dev-churn-scoring-events-start-pipeline") == [
        allow(["sagemaker:StartPipelineExecution"], [pipeline_arn])]
    documents = [r.inputs["policy"] for r in plan.by_type(ROLE_POLICY) if r.name.startswith("dev-churn-scoring-")]
    # the model's, the runner's, EventBridge's and the monitor's
    assert len(documents) == 4 and not any("iam:PassRole" in document for document in documents)


# -- what starts a run, and who hears of failures -----------------------------------------------------------

def test_the_schedule_and_new_data_start_the_pipeline_and_failures_notify_the_topic():
    plan = full_plan()
    pipeline_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/dev-churn-scoring"
    events_role = role_arn(plan, "dev-churn-scoring-events")
    schedule = plan.get("dev-churn-scoring-schedule", RULE).inputs
    assert (schedule["scheduleExpression"], schedule["description"]) == (
        "cron(0 2 * * ? *)", "dev-churn-scoring: score on the schedule cron(0 2 * * ? *)")
    new_data = plan.get("dev-churn-scoring-new-data", RULE).inputs
    assert json.loads(new_data["eventPattern"]) == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket(plan, "datasets")]}, "object": {"key": [{"prefix": "scoring/churn/"}]}}}
    for start in ("schedule", "new-data"):
        target = plan.get(f"dev-churn-scoring-{start}-start", TARGET).inputs
        assert (target["arn"], target["roleArn"], target["sagemakerPipelineTarget"]) == (
            pipeline_arn, events_role, {"pipelineParameterLists": []})
    failed = plan.get("dev-churn-scoring-failed", RULE).inputs
    assert json.loads(failed["eventPattern"]) == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]}}
    notify = plan.get("dev-churn-scoring-failed-notify", TARGET).inputs
    assert notify["arn"] == TOPIC and "roleArn" not in notify


# -- monitoring of the inputs -----------------------------------------------------------------------------

def test_the_monitor_reads_what_the_runs_captured_daily_and_notifies_the_topic():
    plan = full_plan()
    inference = bucket(plan, "inference")
    job = plan.get("dev-churn-scoring-monitor-job", JOB)
    assert job.inputs["dataQualityJobInput"] == {"batchTransformInput": {
        "dataCapturedDestinationS3Uri": f"s3://{inference}/datacapture/dev-churn-scoring",
        "datasetFormat": {"csv": {"header": False}}, "localPath": "/opt/ml/processing/input/batch",
        "s3DataDistributionType": "FullyReplicated", "s3InputMode": "File"}}
    assert job.inputs["dataQualityBaselineConfig"] == {"constraintsResource": {"s3Uri": CONSTRAINTS},
                                                       "statisticsResource": {"s3Uri": STATISTICS}}
    assert job.inputs["dataQualityJobOutputConfig"]["monitoringOutputs"]["s3Output"]["s3Uri"] == (
        f"s3://{inference}/monitoring/dev-churn-scoring-monitor")
    assert job.inputs["networkConfig"]["vpcConfig"]["securityGroupIds"] == (
        plan.get("dev-churn-scoring-model", MODEL).inputs["vpcConfig"]["securityGroupIds"])
    assert api_problems(job) == []
    schedule = plan.get("dev-churn-scoring-monitor-schedule", SCHEDULE).inputs["monitoringScheduleConfig"]
    assert schedule["scheduleConfig"] == {"scheduleExpression": "cron(0 0 ? * * *)"}
    assert [plan.get(f"dev-churn-scoring-monitor-{outcome}-notify", TARGET).inputs["arn"]
            for outcome in ("failed", "violations")] == [TOPIC, TOPIC]
    assert plan.get("dev-churn-scoring-monitor-drift-tenure-months").inputs["alarmActions"] == [TOPIC]


def test_the_longest_name_still_fits_aws_names():
    names = derived_names("x", settings(), "dev-x")
    assert room("x", names) == 33  # the monitor's execution role: `<name>-monitor-execution-role-1a2b3c4`
    # without a monitor, the model's execution role: `<name>-execution-role-1a2b3c4`
    assert room("x", derived_names("x", settings(monitoring=None, start_on_new_data=False), "dev-x")) == 41
