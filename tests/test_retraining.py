"""RetrainingPipeline: the SDK-built definition, every child and its inputs, the roles, checks and settings."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import os
import subprocess
import sys
from typing import Any, Callable

import pytest
from pydantic import ValidationError

from emlops.components.monitoring_args import DriftBaseline
from emlops.components.retraining import RetrainingContext, RetrainingPipeline, RetrainingSettings
from emlops.components.retraining_args import pipeline_name
from emlops.components.retraining_definition import DefinitionSpec, build_definition
from emlops.components.settings import Governance, Placement
from emlops.catalog.requests import to_api_request, validate_request
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, ROOT, run_components

COMPONENT, ROLE_COMPONENT = "emlops:index:RetrainingPipeline", "emlops:index:ServiceRole"
KMS_COMPONENT = "emlops:index:KmsKey"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
RULE, TARGET = "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"
KEY, ALIAS = "aws:kms/key:Key", "aws:kms/alias:Alias"

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-training:1.4.0"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
SCHEDULE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/churn-monitor"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ml-alerts"
STATISTICS, CONSTRAINTS = "s3://ml-baselines/churn/statistics.json", "s3://ml-baselines/churn/constraints.json"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/dev-churn-retraining"
TAGS = {"team": "churn"}
VPC, SUBNETS = "vpc-0123456789abcdef0", ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
# the least a pipeline takes (settings) and is given (context)
BASE = RetrainingContext(model_name="churn", pipeline_name="dev-churn-retraining",
                         input_s3_uri="s3://ml-input/datasets/churn/", output_s3_uri="s3://ml-output/models/churn/")
# ... and with every trigger, a baseline, a key and tags
FULL = dataclasses.replace(BASE, baseline=DriftBaseline(STATISTICS, CONSTRAINTS), monitoring_schedule_arn=SCHEDULE_ARN,
                           approval_topic_arn=TOPIC, kms_key_arn=KEY_ARN, governance=Governance(TAGS))


def settings(**changes: Any) -> RetrainingSettings:
    """A stack file's `retraining:` section with a weekly schedule (validated like one)."""
    return RetrainingSettings.model_validate({"enabled": True, "schedule": "cron(0 3 ? * MON *)",
                                              "training_image": IMAGE, **changes})


def context(**changes: Any) -> RetrainingContext:
    return dataclasses.replace(FULL, **changes)


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def plan_of(section: RetrainingSettings, given: RetrainingContext) -> Plan:
    return run_components(lambda: RetrainingPipeline("churn-retraining", section, given))


@functools.cache
def full_plan() -> Plan:
    return plan_of(settings(), FULL)


def statements(plan: Plan, name: str) -> list[dict[str, Any]]:
    return json.loads(plan.get(name, ROLE_POLICY).inputs["policy"])["Statement"]


def definition(plan: Plan) -> dict[str, Any]:
    return json.loads(plan.get("churn-retraining-pipeline", PIPELINE).inputs["pipelineDefinition"])


def spec(**changes: Any) -> DefinitionSpec:
    values = dict(region=REGION, role_arn=f"arn:aws:iam::{ACCOUNT}:role/retraining", package_group_name="churn",
                  training_image_uri=IMAGE, processing_image_uri=IMAGE, input_s3_uri="s3://ml-input/datasets/churn/",
                  output_s3_uri="s3://ml-output/models/churn/", kms_key_arn=KEY_ARN, metric_name="auc",
                  metric_threshold=0.8, comparison=">=", processing_instance_type="ml.m5.xlarge",
                  training_instance_type="ml.m5.xlarge", training_instance_count=1, volume_size_gb=30,
                  max_runtime_seconds=86400, prepare_command=("python3", "/opt/program/prepare.py"),
                  evaluate_command=("python3", "/opt/program/evaluate.py"), content_types=("text/csv",),
                  inference_instance_types=("ml.m5.large",), baseline_statistics_s3_uri=STATISTICS,
                  baseline_constraints_s3_uri=CONSTRAINTS)
    return DefinitionSpec(**dict(values, **changes))


# -- children -----------------------------------------------------------------------------------------

def test_children_in_order_with_every_trigger():
    plan = full_plan()
    assert [(r.type, r.name) for r in plan.resources if r.type != "pulumi:pulumi:Stack"] == [
        (COMPONENT, "churn-retraining"),
        (ROLE_COMPONENT, "churn-retraining-execution"),
        (ROLE, "churn-retraining-execution-role"),
        *[(ROLE_POLICY, f"churn-retraining-execution-{policy}") for policy in (
            "read-input", "write-artifacts", "read-baseline", "kms", "pull-image", "run-steps", "pass-role", "logs")],
        (PIPELINE, "churn-retraining-pipeline"),
        (ROLE_COMPONENT, "churn-retraining-events"),
        (ROLE, "churn-retraining-events-role"),
        (ROLE_POLICY, "churn-retraining-events-start-pipeline"),
        (RULE, "churn-retraining-on-violations"),
        (TARGET, "churn-retraining-on-violations-start"),
        (RULE, "churn-retraining-schedule"),
        (TARGET, "churn-retraining-schedule-start"),
        (RULE, "churn-retraining-approved"),
        (TARGET, "churn-retraining-approved-notify"),
    ]
    component = plan.get("churn-retraining", COMPONENT)
    assert {r.name for r in plan.children(component.urn)} == {
        "churn-retraining-execution", "churn-retraining-pipeline", "churn-retraining-events",
        "churn-retraining-on-violations", "churn-retraining-on-violations-start", "churn-retraining-schedule",
        "churn-retraining-schedule-start", "churn-retraining-approved", "churn-retraining-approved-notify"}


def test_no_trigger_no_events_role_and_a_key_is_created():
    plan = plan_of(settings(schedule=None), dataclasses.replace(BASE, governance=Governance(TAGS, protect=True)))
    assert plan.type_counts() == {"pulumi:pulumi:Stack": 1, COMPONENT: 1, KMS_COMPONENT: 1, KEY: 1, ALIAS: 1,
                                  ROLE_COMPONENT: 1, ROLE: 1, ROLE_POLICY: 7, PIPELINE: 1}
    key = plan.get("churn-retraining-key-key", KEY)
    assert (key.protect, key.retain_on_delete) == (True, True)
    steps = definition(plan)["Steps"]
    assert "DriftCheckBaselines" not in steps[3]["Arguments"]["IfSteps"][0]["Arguments"]
    assert steps[1]["Arguments"]["OutputDataConfig"]["KmsKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")


def test_pipeline_inputs_and_create_request():
    plan = full_plan()
    pipeline = plan.get("churn-retraining-pipeline", PIPELINE)
    execution_role = plan.get("churn-retraining-execution-role", ROLE)
    inputs = dict(pipeline.inputs)
    document = inputs.pop("pipelineDefinition")
    assert inputs == {
        "pipelineName": "dev-churn-retraining",
        "pipelineDisplayName": "dev-churn-retraining",
        "pipelineDescription": "Retrains churn and registers it in churn for approval",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{execution_role.inputs['name']}",
        "tags": TAGS,
    }
    assert json.loads(document)["Version"] == "2020-12-01"
    assert set(pipeline.dependencies) >= {r.urn for r in plan.by_type(ROLE_POLICY)
                                          if r.name.startswith("churn-retraining-execution-")}
    # The provider generates CreatePipeline's idempotency token (ClientRequestToken); the rest is valid.
    request = to_api_request(PIPELINE, pipeline.inputs)
    assert request.params["ClientRequestToken"] == "[unknown: filled in by the provider]"
    assert validate_request(request) == []


# -- the definition -----------------------------------------------------------------------------------

def test_definition_steps_in_order_from_the_sdk():
    plan = full_plan()
    role = f"arn:aws:iam::{ACCOUNT}:role/{plan.get('churn-retraining-execution-role', ROLE).inputs['name']}"
    steps = definition(plan)["Steps"]
    assert [(s["Name"], s["Type"]) for s in steps] == [
        ("Prepare", "Processing"), ("Train", "Training"), ("Evaluate", "Processing"), ("CheckMetric", "Condition")]
    prepare, train, evaluate, check = (s["Arguments"] for s in steps)
    assert {prepare["RoleArn"], train["RoleArn"], evaluate["RoleArn"]} == {role}
    assert prepare["AppSpecification"] == {"ImageUri": IMAGE,
                                           "ContainerEntrypoint": ["python3", "/opt/program/prepare.py"]}
    assert prepare["ProcessingInputs"][0]["S3Input"]["S3Uri"] == "s3://ml-input/datasets/churn/"
    assert [o["S3Output"]["S3Uri"] for o in prepare["ProcessingOutputConfig"]["Outputs"]] == [
        "s3://ml-output/models/churn/train", "s3://ml-output/models/churn/test"]
    assert prepare["ProcessingOutputConfig"]["KmsKeyId"] == KEY_ARN
    assert prepare["ProcessingResources"]["ClusterConfig"] == {
        "InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30, "VolumeKmsKeyId": KEY_ARN}
    assert train["AlgorithmSpecification"] == {"TrainingInputMode": "File", "TrainingImage": IMAGE}
    assert train["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.Prepare.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}
    assert train["OutputDataConfig"] == {"S3OutputPath": "s3://ml-output/models/churn/training",
                                         "KmsKeyId": KEY_ARN, "CompressionType": "GZIP"}
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert evaluate["ProcessingInputs"][0]["S3Input"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert steps[2]["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    assert check["Conditions"] == [{
        "Type": "GreaterThanOrEqualTo",
        "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
                                      "Path": "metrics.auc.value"}},
        "RightValue": 0.8}]
    [register] = check["IfSteps"]
    assert (register["Name"], register["Type"]) == ("Register", "RegisterModel")
    registration = register["Arguments"]
    assert registration["ModelPackageGroupName"] == "churn"
    assert registration["ModelApprovalStatus"] == "PendingManualApproval"
    assert registration["DriftCheckBaselines"] == {"ModelDataQuality": {
        "Statistics": {"ContentType": "application/json", "S3Uri": STATISTICS},
        "Constraints": {"ContentType": "application/json", "S3Uri": CONSTRAINTS}}}
    [container] = registration["InferenceSpecification"]["Containers"]
    assert (container["Image"], container["ModelDataUrl"]) == (
        IMAGE, {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"})
    assert check["ElseSteps"] == [{"Name": "MetricBelowThreshold", "Type": "Fail", "Arguments": {
        "ErrorMessage": "auc did not reach >= 0.8; no model package registered"}}]


def test_definition_follows_comparison_threshold_and_network():
    document = json.loads(build_definition(spec(metric_name="rmse", metric_threshold=3.25, comparison="<=",
                                                 package_group_name="churn-v2", subnet_ids=("subnet-1",),
                                                 security_group_ids=("sg-1",)), "dev-churn-retraining"))
    check = document["Steps"][3]["Arguments"]
    assert (check["Conditions"][0]["Type"], check["Conditions"][0]["RightValue"]) == ("LessThanOrEqualTo", 3.25)
    assert check["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.rmse.value"
    assert check["IfSteps"][0]["Arguments"]["ModelPackageGroupName"] == "churn-v2"
    assert document["Steps"][0]["Arguments"]["NetworkConfig"] == {
        "EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}}
    assert document["Steps"][1]["Arguments"]["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}


def test_definition_is_deterministic_and_leaves_the_environment_alone():
    before = {key: os.environ.get(key) for key in ("AWS_DEFAULT_REGION", "SAGEMAKER_VALIDATE_ROLE",
                                                   "AWS_EC2_METADATA_DISABLED")}
    first, second = build_definition(spec(), "dev-churn-retraining"), build_definition(spec(), "dev-churn-retraining")
    assert first == second
    assert {key: os.environ.get(key) for key in before} == before


@pytest.mark.processes
def test_building_the_definition_makes_no_network_call():
    # A fresh interpreter, so the SDK's import-time clients are covered too; no region configured.
    script = """
import socket
def refuse(*args, **kwargs):
    raise AssertionError(f"network call: {args!r}")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
from tests.test_retraining import spec
from emlops.components.retraining_definition import build_definition
print(len(build_definition(spec(), "dev-churn-retraining")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = "/nonexistent"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) > 1000


def test_the_sdk_is_imported_only_to_build_a_definition():
    # ~3 s of imports: previews of stacks without a retraining pipeline must not pay for them.
    script = ("import sys, emlops.components.retraining, emlops.program.config_models; "
              "print(sorted(m for m in sys.modules if m.startswith('sagemaker')))")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.strip() == "[]"


# -- EventBridge and roles ----------------------------------------------------------------------------

def test_rules_and_targets():
    plan = full_plan()
    events_role = plan.get("churn-retraining-events-role", ROLE)
    events_role_arn = f"arn:aws:iam::{ACCOUNT}:role/{events_role.inputs['name']}"
    violations = plan.get("churn-retraining-on-violations", RULE)
    assert json.loads(violations.inputs.pop("eventPattern")) == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {"MonitoringScheduleArn": [SCHEDULE_ARN], "ProcessingJobStatus": ["Completed"],
                   "ExitMessage": [{"prefix": "CompletedWithViolations"}]}}
    assert violations.inputs == {
        "description": "churn-retraining: retrain when a monitoring run found constraint violations",
        "name": violations.inputs["name"], "tags": TAGS}
    assert plan.get("churn-retraining-schedule", RULE).inputs == {
        "description": "churn-retraining: retrain when the schedule cron(0 3 ? * MON *) fires",
        "name": plan.get("churn-retraining-schedule", RULE).inputs["name"],
        "scheduleExpression": "cron(0 3 ? * MON *)", "tags": TAGS}
    for rule in ("on-violations", "schedule"):
        assert plan.get(f"churn-retraining-{rule}-start", TARGET).inputs == {
            "arn": PIPELINE_ARN, "roleArn": events_role_arn,
            "rule": plan.get(f"churn-retraining-{rule}", RULE).inputs["name"],
            "sagemakerPipelineTarget": {"pipelineParameterLists": []}}
    approved = plan.get("churn-retraining-approved", RULE)
    assert json.loads(approved.inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["churn"], "ModelApprovalStatus": ["Approved"]}}
    assert approved.inputs["description"] == "churn-retraining: a model package of churn was approved"
    assert plan.get("churn-retraining-approved-notify", TARGET).inputs == {"arn": TOPIC,
                                                                           "rule": approved.inputs["name"]}


def test_events_role_starts_only_this_pipeline():
    plan = full_plan()
    trust = json.loads(plan.get("churn-retraining-events-role", ROLE).inputs["assumeRolePolicy"])["Statement"]
    assert trust[0]["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert statements(plan, "churn-retraining-events-start-pipeline") == [
        {"Effect": "Allow", "Action": ["sagemaker:StartPipelineExecution"], "Resource": [PIPELINE_ARN]}]


def test_execution_role_is_scoped():
    plan = full_plan()
    role = plan.get("churn-retraining-execution-role", ROLE)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role.inputs['name']}"
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust[0]["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    assert statements(plan, "churn-retraining-execution-read-input") == [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::ml-input"],
         "Condition": {"StringLike": {"s3:prefix": ["datasets/churn/*"]}}},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::ml-input/datasets/churn/*"]}]
    assert statements(plan, "churn-retraining-execution-write-artifacts")[1] == {
        "Effect": "Allow", "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        "Resource": ["arn:aws:s3:::ml-output/models/churn/*"]}
    assert statements(plan, "churn-retraining-execution-read-baseline") == [
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [
            "arn:aws:s3:::ml-baselines/churn/statistics.json", "arn:aws:s3:::ml-baselines/churn/constraints.json"]}]
    assert statements(plan, "churn-retraining-execution-pull-image")[0]["Resource"] == [
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/churn-training"]
    assert statements(plan, "churn-retraining-execution-run-steps") == [
        {"Effect": "Allow", "Action": ["sagemaker:AddTags", "sagemaker:CreateProcessingJob",
                                       "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"],
         "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-*"]},
        {"Effect": "Allow", "Action": ["sagemaker:AddTags", "sagemaker:CreateTrainingJob",
                                       "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
         "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/pipelines-*"]},
        {"Effect": "Allow", "Action": ["sagemaker:DescribeModelPackage"],
         "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn",
                      f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/*"]},
        {"Effect": "Allow", "Action": ["sagemaker:CreateModelPackage"],
         "Resource": [f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn",
                      f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/*"],
         "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}}]
    assert statements(plan, "churn-retraining-execution-kms") == [
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                                       "kms:ReEncryptFrom", "kms:ReEncryptTo"], "Resource": [KEY_ARN],
         "Condition": {"StringEquals": {"kms:ViaService": [f"s3.{REGION}.amazonaws.com",
                                                           f"sagemaker.{REGION}.amazonaws.com"]}}},
        {"Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": [KEY_ARN],
         "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}]
    assert statements(plan, "churn-retraining-execution-pass-role") == [
        {"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": [role_arn],
         "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}]
    for policy in plan.by_type(ROLE_POLICY):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            assert "*" not in statement["Action"]


# -- argument checks ----------------------------------------------------------------------------------

ECR_IMAGE_HELP = "must be an ECR image URI with a tag, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"
EVENTBRIDGE_SCHEDULE = ("must be an EventBridge schedule, 'cron(<minutes> <hours> <day-of-month> <month> "
                        "<day-of-week> <year>)', e.g. 'cron(0 3 ? * MON *)' or 'rate(<n> <minutes|hours|days>)', "
                        "e.g. 'rate(7 days)'")


@pytest.mark.parametrize("section, message", [
    ({"training_image": "churn:latest"}, ECR_IMAGE_HELP),
    ({"training_image": IMAGE.split(":")[0]}, ECR_IMAGE_HELP),
    ({"training_instance_type": "m5.xlarge"},
     "Value error, 'm5.xlarge' is not a SageMaker training instance type; did you mean 'ml.m5.xlarge'?"),
    ({"inference_instance_types": ["m5.large"]},
     "Value error, 'm5.large' is not a SageMaker hosting instance type; did you mean 'ml.m5.large'?"),
    ({"training_instance_count": 0}, "Input should be greater than or equal to 1"),
    ({"max_runtime_hours": 121}, "Input should be less than or equal to 120"),
    ({"metric_name": "metrics.auc"}, "must be letters, digits and '_'"),
    ({"comparison": "=="}, "Input should be '>=', '>', '<=' or '<'"),
    ({"metric_threshold": 1.2}, "Value error, metric_threshold (1.2) for auc must be between 0 and 1"),
    ({"metric_threshold": float("nan")}, "Value error, metric_threshold (nan) must be a finite number"),
    ({"schedule": "cron(0 3 * * MON *)"},
     "Value error, 'cron(0 3 * * MON *)': exactly one of day-of-month and day-of-week must be '?'"),
    ({"schedule": "weekly"}, f"Value error, 'weekly' {EVENTBRIDGE_SCHEDULE}"),
    ({"schedule": "rate(1 days)"}, "Value error, 'rate(1 days)': a value of 1 takes the singular unit, 'rate(1 day)'"),
    ({"prepare_command": "python3 prepare.py"}, "Input should be a valid list"),
    ({"frequency": "weekly"}, "Extra inputs are not permitted"),
])
def test_settings_errors(section, message):
    with pytest.raises(ValidationError) as caught:
        RetrainingSettings.model_validate(section)
    [field_name] = section
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [((field_name,), message)]


@pytest.mark.parametrize("changes, message", [
    ({"model_name": "churn_v2"}, "model_name 'churn_v2' must be letters, digits and '-' (at most 63)"),
    ({"pipeline_name": "dev churn"}, "pipeline_name 'dev churn' must be letters, digits and '-' (at most 256)"),
    ({"package_group_name": "churn_v2"}, "package_group_name 'churn_v2' must be letters, digits and '-' (at most 63)"),
    ({"package_group_arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/fraud"},
     f"package_group_arn 'arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/fraud' must be the ARN of model "
     "package group 'churn': arn:<partition>:sagemaker:<region>:<account>:model-package-group/churn"),
    ({"model_output_s3_uri": "s3://ml-registry/models/churn/"},
     "model_output_s3_uri and model_kms_key_arn go together: give both or neither"),
    ({"input_s3_uri": "ml-input/datasets"}, "input_s3_uri 'ml-input/datasets' is not an s3://<bucket>[/<prefix>] URI"),
    ({"output_s3_uri": "s3://ml-output"}, "output_s3_uri 's3://ml-output' is not an s3://<bucket>[/<prefix>] URI"),
    ({"model_output_s3_uri": "ml-registry/models", "model_kms_key_arn": KEY_ARN},
     "model_output_s3_uri 'ml-registry/models' is not an s3://<bucket>[/<prefix>] URI"),
    ({"baseline": DriftBaseline("s3://ml-baselines/churn/", CONSTRAINTS)},
     "baseline 's3://ml-baselines/churn/' is not an s3://<bucket>/<key> object URI"),
    ({"monitoring_schedule_arn": None, "quality_schedule_arn": SCHEDULE_ARN},
     "quality_schedule_arn needs monitoring_schedule_arn (the data-quality schedule)"),
])
def test_context_errors(changes, message):
    assert error_of(context(**changes).check) == message


def test_the_pipeline_checks_its_image_and_context_before_creating_anything():
    raised = []

    def program():
        for section, given in ((RetrainingSettings(enabled=True), FULL), (settings(), context(model_name="churn_v2"))):
            try:
                RetrainingPipeline("churn-retraining", section, given)
            except ValueError as error:
                raised.append(str(error))
    plan = run_components(program)
    assert (raised, [r.type for r in plan.resources]) == ([
        "training_image is required: the pipeline trains with it and the registered version is served with it",
        "model_name 'churn_v2' must be letters, digits and '-' (at most 63)",
    ], ["pulumi:pulumi:Stack"])


def test_a_placement_needs_a_vpc_and_subnets():
    message = "a placement needs vpc_id and a list of subnet_ids"
    assert [error_of(lambda: Placement(*given)) for given in ((VPC, []), (None, SUBNETS), (VPC, SUBNETS[0]))] == [
        message] * 3


def test_rmse_threshold_is_not_a_fraction_and_group_defaults_to_model():
    section = RetrainingSettings(metric_name="rmse", metric_threshold=12.5, comparison="<")
    assert (BASE.group_name, section.metric_threshold) == ("churn", 12.5)


# -- a stack file's section ---------------------------------------------------------------------------

def test_a_stack_section_is_what_the_pipeline_runs():
    section = RetrainingSettings.model_validate({
        "enabled": True, "metric_name": "rmse", "metric_threshold": 4.0, "comparison": "<=",
        "schedule": "rate(7 days)", "training_instance_type": "ml.c5.2xlarge", "max_runtime_hours": 2,
        "training_image": IMAGE})
    plan = plan_of(section, FULL)
    prepare, train, _, check = (step["Arguments"] for step in definition(plan)["Steps"])
    assert (train["ResourceConfig"]["InstanceType"], prepare["ProcessingResources"]["ClusterConfig"]["InstanceType"]) \
        == ("ml.c5.2xlarge", "ml.m5.xlarge")
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}  # hours in the stack file, seconds in the API
    assert (check["Conditions"][0]["Type"], check["Conditions"][0]["RightValue"]) == ("LessThanOrEqualTo", 4.0)
    assert check["Conditions"][0]["LeftValue"]["Std:JsonGet"]["Path"] == "metrics.rmse.value"
    assert plan.get("churn-retraining-schedule", RULE).inputs["scheduleExpression"] == "rate(7 days)"
    assert pipeline_name("prod", "fraud") == "prod-fraud-retraining"
    assert RetrainingSettings().enabled is False


def test_a_placement_without_security_groups_gets_an_https_only_group_of_its_own():
    """SageMaker's VpcConfig needs 1-5 security groups: jobs placed in subnets alone get one that lets
    nothing in and only HTTPS (the VPC endpoints) out."""
    plan = plan_of(settings(), context(placement=Placement(VPC, SUBNETS)))
    [group] = plan.by_type("aws:ec2/securityGroup:SecurityGroup")
    assert (group.name, group.inputs["vpcId"], group.inputs["ingress"]) == ("churn-retraining-sg", VPC, [])
    assert [(rule["protocol"], rule["fromPort"], rule["toPort"]) for rule in group.inputs["egress"]] == [
        ("tcp", 443, 443)]
    document = json.loads(plan.get("churn-retraining-pipeline").inputs["pipelineDefinition"])
    vpc = document["Steps"][1]["Arguments"]["VpcConfig"]  # train
    assert list(vpc) == ["SecurityGroupIds", "Subnets"] and vpc["Subnets"] == SUBNETS
    assert len(vpc["SecurityGroupIds"]) == 1 and re.fullmatch(r"sg-[0-9a-f]{17}", vpc["SecurityGroupIds"][0])
    assert document["Steps"][0]["Arguments"]["NetworkConfig"]["VpcConfig"] == vpc  # prepare
    assert group.urn in plan.get("churn-retraining-pipeline").dependencies
    # with the platform's groups, none is made
    given = plan_of(settings(), context(placement=Placement(VPC, SUBNETS, ["sg-0123456789abcdef0"])))
    assert given.by_type("aws:ec2/securityGroup:SecurityGroup") == []
