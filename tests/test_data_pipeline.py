"""DataPipeline: its settings and their one-line errors, the rules across sections, the SDK-built definition (claim,
validate, gate, transform, ingest, fail), every child and its inputs, the two roles, what starts a run and who hears
of failures."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from typing import Any

import pytest

from emlops.catalog.requests import ApiRequest, to_api_request, validate_request
from emlops.components.data_pipeline import STEPS_CODE, DataPipeline, DataPipelineContext, DataPipelineSettings
from emlops.components.data_pipeline_definition import DataPipelineSpec, build_definition
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from tests.conftest import ACCOUNT, BASE_SETTINGS, REGION, allow, run_components, run_platform

COMPONENT, ROLE_COMPONENT = "emlops:index:DataPipeline", "emlops:index:ServiceRole"
SG, PIPELINE, FUNCTION = ("aws:ec2/securityGroup:SecurityGroup", "aws:sagemaker/pipeline:Pipeline",
                          "aws:lambda/function:Function")
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
RULE, TARGET = "aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventTarget:EventTarget"
KEY_COMPONENT, KEY, ALIAS = "emlops:index:KmsKey", "aws:kms/key:Key", "aws:kms/alias:Alias"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:ml-alerts"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/customers-features:2.1.0"
ANALYZER = f"468650794304.dkr.ecr.{REGION}.amazonaws.com/sagemaker-model-monitor-analyzer"
CONSTRAINTS = "s3://ml-baselines/customers/constraints.json"
GROUP, GROUP_ARN = "dev-features-customers", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/dev-features-customers"
VPC, SUBNETS = "vpc-0123456789abcdef0", ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
NAME, PIPELINE_ARN = "dev-customers-data", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/dev-customers-data"
LOGS = "/emlops/data-pipelines/dev-customers-data"
LOGS_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOGS}"
FULL = {"name": "customers", "feature_group": "customers", "landing_prefix": "landing/customers/",
        "schedule": "cron(0 4 * * ? *)", "validation": {"constraints_s3_uri": CONSTRAINTS},
        "transformation": {"image": IMAGE}}
FEATURE_GROUP = {"name": "customers", "features": [{"name": "customer_id", "type": "String"},
                                                   {"name": "event_time", "type": "Fractional"},
                                                   {"name": "tenure_months", "type": "Integral"}],
                 "record_identifier": "customer_id", "event_time_feature": "event_time"}
NETWORK = {"vpc_id": VPC, "private_subnet_ids": SUBNETS}


def settings(**changes: Any) -> DataPipelineSettings:
    return DataPipelineSettings.model_validate({**FULL, **changes})


def plan_of(section: DataPipelineSettings, **context: Any) -> Plan:
    def program() -> None:
        datasets = SecureBucket("datasets", SecureBucketArgs(kms_key_arn=KEY_ARN))
        DataPipeline(NAME, section, DataPipelineContext(**{
            "pipeline_name": NAME, "datasets_bucket": datasets, "feature_group_name": GROUP,
            "feature_group_arn": GROUP_ARN, "placement": Placement(VPC, SUBNETS), "alerts_topic_arn": TOPIC,
            "governance": Governance({"team": "crm"}), **context}))
    return run_components(program)


@functools.cache
def full_plan() -> Plan:
    return plan_of(settings())


def bucket(plan: Plan) -> str:
    return plan.get("datasets-bucket").inputs["bucket"]


def definition(plan: Plan) -> dict[str, Any]:
    return json.loads(plan.get(f"{NAME}-pipeline", PIPELINE).inputs["pipelineDefinition"])


def role_arn(plan: Plan, role: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{plan.get(f'{role}-role', ROLE).inputs['name']}"


def statements(plan: Plan, policy: str) -> list[dict[str, Any]]:
    return json.loads(plan.get(policy, ROLE_POLICY).inputs["policy"])["Statement"]


def config_error(entries: list[dict[str, Any]], **platform: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config({**BASE_SETTINGS, "network": NETWORK, "feature_groups": [FEATURE_GROUP],
                               "data_pipelines": entries, **platform}, "stacks/Pulumi.dev.yaml")
    return str(caught.value)


# -- settings and rules ---------------------------------------------------------------------------------------

def test_settings_defaults():
    section = DataPipelineSettings.model_validate({"name": "x", "feature_group": "g", "landing_prefix": "in/",
                                                   "validation": {"constraints_s3_uri": CONSTRAINTS},
                                                   "transformation": {"image": IMAGE}})
    assert section.model_dump() == {
        "name": "x", "feature_group": "g", "landing_prefix": "in/", "start_on_new_data": True, "schedule": None,
        "quarantine": True, "log_retention_days": 365,
        "validation": {"constraints_s3_uri": CONSTRAINTS, "dataset_format": "csv", "instance_type": "ml.m5.xlarge",
                       "volume_size_gb": 30, "max_runtime_minutes": 60},
        "transformation": {"image": IMAGE, "command": ["python3", "/opt/program/transform.py"],
                           "instance_type": "ml.m5.xlarge", "volume_size_gb": 30, "max_runtime_minutes": 60,
                           "network_isolation": True}}


AT = "stacks/Pulumi.dev.yaml: emlops:platform."


@pytest.mark.parametrize("changes, message", [
    ({"transformation": {}}, "data_pipelines[0].transformation.image: field required: the transformation step runs "
                             "the team's processing image (an ECR image URI with a tag)"),
    ({"transformation": {"image": "customers-features:2"}},
     "data_pipelines[0].transformation.image: must be an ECR image URI with a tag, "
     "<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>, got 'customers-features:2'"),
    ({"feature_group": "orders"},
     "data_pipelines[0].feature_group: 'orders' is not one of the stack's feature_groups (customers); declare it in "
     "feature_groups or name one of them"),
    ({"landing_prefix": "data-pipelines/customers/"},
     "data_pipelines[0].landing_prefix: 'data-pipelines/customers/' overlaps 'data-pipelines/', which the platform "
     "writes; choose another prefix"),
    ({"landing_prefix": "landing/customers"},
     "data_pipelines[0].landing_prefix: must be folders of letters, digits, '.', '_', '=' and '-', each starting with "
     "a letter or digit and ending in '/', e.g. 'scoring/churn/', got 'landing/customers'"),
    ({"name": "Customers"}, "data_pipelines[0].name: must be 1-32 lowercase letters, digits and single '-', starting "
                            "and ending with a letter or digit, got 'Customers'"),
    ({"schedule": None, "start_on_new_data": False},
     "data_pipelines[0].start_on_new_data: nothing would start the pipeline: keep start_on_new_data true or give a "
     "schedule"),
    ({"validation": {"constraints_s3_uri": "s3://ml-baselines/customers/"}},
     "data_pipelines[0].validation.constraints_s3_uri: must be an S3 object URI, s3://<bucket>/<key>, "
     "got 's3://ml-baselines/customers/'"),
    ({"transformation": {"image": IMAGE, "instance_type": "ml.t2.medium"}},
     "data_pipelines[0].transformation.instance_type: 'ml.t2.medium' is not a SageMaker processing instance type; "
     "did you mean 'ml.t3.medium'?"),
    ({"log_retention_days": 100},
     "data_pipelines[0].log_retention_days: 100 is not a CloudWatch Logs retention; allowed: 1, 3, 5, 7, 14, 30, 60, "
     "90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
])
def test_a_bad_setting_is_one_line_naming_the_stack_file_and_key(changes, message):
    assert config_error([{**FULL, **changes}]) == AT + message


def test_a_landing_prefix_overlapping_another_pipelines_is_refused():
    second = {**FULL, "name": "customers-eu", "landing_prefix": "landing/"}
    assert config_error([FULL, second]) == (
        AT + "data_pipelines[1].landing_prefix: 'landing/' overlaps data_pipelines[0]'s landing_prefix "
        "'landing/customers/'; each data pipeline claims what lands under a prefix of its own")
    assert config_error([FULL, {**FULL, "landing_prefix": "landing/eu/"}]) == (
        AT + "data_pipelines[1].name: data pipeline name 'customers' is used twice; names must be unique")


def test_the_stack_around_a_pipeline_is_checked():
    scoring = {"name": "churn-scoring", "source": {"s3_uri": "s3://ml-models/churn/model.tar.gz"},
               "image": {"uri": IMAGE}, "input_prefix": "landing/customers/daily/", "output_prefix": "scores/"}
    assert config_error([FULL], batch_transforms=[scoring]) == (
        AT + "data_pipelines[0].landing_prefix: 'landing/customers/' overlaps batch_transforms[0]'s input_prefix "
        "'landing/customers/daily/'; the pipeline would move the objects it scores")
    assert config_error([FULL], network=None) == (
        AT + "data_pipelines[0]: runs in private subnets; add network.managed (or network.vpc_id and "
        "network.private_subnet_ids)")
    production = {"production": True, "network": {"managed": {"az_count": 3}},
                  "alerts": {"email": ["oncall@example.com"]}}
    assert config_error([{**FULL, "quarantine": False}], **production) == (
        AT + "data_pipelines[0].quarantine: production data pipelines quarantine batches that fail validation; set "
        "quarantine: true")
    assert config_error([FULL], **{**production, "alerts": {}}) == (
        AT + "alerts: production data pipelines tell the alerts topic about failed runs and quarantined batches; "
        "subscribe someone (alerts.email or alerts.https)")
    assert config_error([{**FULL, "name": "customers-" + "x" * 22}], environment="staging") == (
        AT + "data_pipelines[0].name: 'customers-xxxxxxxxxxxxxxxxxxxxxx' makes the IAM role name "
        "'staging-customers-xxxxxxxxxxxxxxxxxxxxxx-data-execution-role-1a2b3c4' 68 characters (with Pulumi's "
        "auto-name suffix); AWS allows 64 (at most 28 characters here)")


def test_the_context_is_checked_before_anything_is_created():
    class Bucket:
        kms_key_arn = None

    context = DataPipelineContext(pipeline_name=NAME, datasets_bucket=Bucket(), feature_group_name=GROUP,
                                  feature_group_arn=GROUP_ARN, placement=Placement(VPC, SUBNETS),
                                  alerts_topic_arn=TOPIC)
    with pytest.raises(ValueError) as caught:
        DataPipeline(NAME, settings(), context)
    assert str(caught.value) == "the datasets bucket has no KMS key: the steps encrypt what they write with it"
    with pytest.raises(ValueError) as caught:
        DataPipeline(NAME, settings(), dataclasses.replace(context, pipeline_name="dev_customers"))
    assert str(caught.value) == "pipeline_name 'dev_customers' must be letters, digits and '-' (at most 256)"


# -- children -------------------------------------------------------------------------------------------------

def test_children_in_order():
    plan = full_plan()
    component = plan.get(NAME, COMPONENT)
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (SG, f"{NAME}-sg"), (KEY_COMPONENT, f"{NAME}-logs"), (LOG_GROUP, f"{NAME}-logs"),
        (ROLE_COMPONENT, f"{NAME}-steps"), (FUNCTION, f"{NAME}-steps"),
        (ROLE_COMPONENT, f"{NAME}-execution"), (PIPELINE, f"{NAME}-pipeline"), (ROLE_COMPONENT, f"{NAME}-events"),
        (RULE, f"{NAME}-schedule"), (TARGET, f"{NAME}-schedule-start"),
        (RULE, f"{NAME}-new-data"), (TARGET, f"{NAME}-new-data-start"),
        (RULE, f"{NAME}-failed"), (TARGET, f"{NAME}-failed-notify")]


def security_group_id(plan: Plan) -> str:
    """The pipeline's own group's id (which the mocks make up), as the function's network names it."""
    [group_id] = plan.get(f"{NAME}-steps", FUNCTION).inputs["vpcConfig"]["securityGroupIds"]
    assert re.fullmatch(r"sg-[0-9a-f]{17}", group_id)
    return group_id


def test_the_function_runs_the_steps_code_in_the_private_subnets():
    plan = full_plan()
    function = plan.get(f"{NAME}-steps", FUNCTION).inputs
    assert {key: value for key, value in function.items() if key != "name"} == {
        # the plan names each file of the code by its content's digest: a change to the code is a change to the plan
        "code": {"archive": {"data_pipeline_steps.py": "sha256:" + hashlib.sha256(STEPS_CODE.read_bytes()).hexdigest()}},
        "description": "Claim, gate and ingest steps of the dev-customers-data pipeline",
        "handler": "data_pipeline_steps.handler", "memorySize": 1024, "runtime": "python3.12", "timeout": 600,
        "role": role_arn(plan, f"{NAME}-steps"), "tags": {"team": "crm", "data-pipeline": NAME},
        "vpcConfig": {"subnetIds": SUBNETS, "securityGroupIds": [security_group_id(plan)]},
        "loggingConfig": {"logFormat": "JSON", "logGroup": LOGS}}
    group = plan.get(f"{NAME}-sg", SG).inputs
    assert group["ingress"] == [] and [rule["toPort"] for rule in group["egress"]] == [443]


def test_the_function_logs_to_its_own_encrypted_log_group_with_a_retention():
    plan = full_plan()
    key, alias = plan.get(f"{NAME}-logs-key", KEY), plan.get(f"{NAME}-logs-alias", ALIAS).inputs
    assert re.fullmatch(r"[0-9a-f-]{36}", alias["targetKeyId"])
    group = plan.get(f"{NAME}-logs", LOG_GROUP)
    assert group.inputs == {"name": LOGS, "retentionInDays": 365,
                            "kmsKeyId": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{alias['targetKeyId']}",
                            "tags": {"team": "crm", "data-pipeline": NAME}}
    assert (group.protect, group.retain_on_delete, key.protect) == (False, False, False)
    # the group exists (with its key) before the function, so Lambda never makes one of its own
    assert group.urn in plan.get(f"{NAME}-steps", FUNCTION).dependencies
    assert key.inputs["description"] == "Encrypts the logs of the steps of the dev-customers-data pipeline"
    assert alias["name"] == f"alias/emlops/{NAME}-logs"
    assert plan_of(settings(log_retention_days=731)).get(f"{NAME}-logs", LOG_GROUP).inputs["retentionInDays"] == 731


def test_only_cloudwatch_logs_of_the_region_uses_the_log_key_and_only_for_that_group():
    policy = json.loads(full_plan().get(f"{NAME}-logs-key", KEY).inputs["policy"])
    assert policy["Statement"][1:] == [{
        "Sid": "CloudWatchLogsUseKeyForTheseLogGroups", "Effect": "Allow",
        "Principal": {"Service": [f"logs.{REGION}.amazonaws.com"]},
        "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
        "Resource": ["*"], "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [LOGS_ARN]}}}]
    assert policy["Statement"][0]["Sid"] == "AccountRootManagesKey"


def test_the_function_writes_to_its_log_group_only_and_creates_none():
    found = [{k: v for k, v in s.items() if k != "Sid"} for s in statements(full_plan(), f"{NAME}-steps-permissions")]
    assert [s for s in found if any(action.startswith("logs:") for action in s["Action"])] == [
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [LOGS_ARN, f"{LOGS_ARN}:log-stream:*"])]


def test_production_protects_and_retains_the_log_group_and_its_key():
    plan = plan_of(settings(), governance=Governance({"team": "crm"}, protect=True))
    protected = [(r.type, r.name) for r in plan.resources if r.protect and r.retain_on_delete]
    assert protected == [(KEY, f"{NAME}-logs-key"), (LOG_GROUP, f"{NAME}-logs")]


def test_the_function_moves_only_its_prefixes_and_writes_only_its_feature_group():
    plan = full_plan()
    arn = f"arn:aws:s3:::{bucket(plan)}"
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    found = [{k: v for k, v in s.items() if k != "Sid"} for s in statements(plan, f"{NAME}-steps-permissions")]
    listing = [s["Condition"]["StringLike"]["s3:prefix"] for s in found if s["Action"] == ["s3:ListBucket"]]
    assert listing == [["landing/customers/*"], ["data-pipelines/customers/batches/*"],
                       ["data-pipelines/customers/reports/*"], ["data-pipelines/customers/transformed/*"]]
    assert allow(["s3:DeleteObject"], [f"{arn}/landing/customers/*", f"{arn}/data-pipelines/customers/batches/*"]
                 ) in found
    assert allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"{arn}/data-pipelines/customers/quarantine/*"]) in found
    # the markers by which concurrent runs claim each landed object version
    assert allow(["s3:AbortMultipartUpload", "s3:PutObject"], [f"{arn}/data-pipelines/customers/claims/*"]) in found
    assert allow(["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"], [GROUP_ARN]) in found
    assert allow(["kms:DescribeKey", "kms:Decrypt"], [KEY_ARN], via_s3) in found
    writes = {r for s in found if "s3:PutObject" in s["Action"] or "s3:DeleteObject" in s["Action"]
              for r in s["Resource"]}
    assert writes == {f"{arn}/data-pipelines/customers/batches/*", f"{arn}/data-pipelines/customers/quarantine/*",
                      f"{arn}/data-pipelines/customers/claims/*", f"{arn}/landing/customers/*"}
    # an online store's key is needed by PutRecord's callers
    online = plan_of(settings(), feature_store_key_arn=KEY_ARN)
    assert allow(["kms:DescribeKey", "kms:Decrypt"], [KEY_ARN]) in [
        {k: v for k, v in s.items() if k != "Sid"} for s in statements(online, f"{NAME}-steps-permissions")]


def test_the_pipeline_role_runs_its_jobs_and_invokes_its_function():
    plan = full_plan()
    arn = f"arn:aws:s3:::{bucket(plan)}"
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{plan.get(f'{NAME}-steps', FUNCTION).inputs['name']}"
    found = [{k: v for k, v in s.items() if k != "Sid"} for s in statements(plan, f"{NAME}-execution-permissions")]
    assert allow(["lambda:InvokeFunction"], [function]) in found
    assert allow(["s3:GetObject"], ["arn:aws:s3:::ml-baselines/customers/constraints.json"]) in found
    assert allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], [
        f"arn:aws:ecr:{REGION}:468650794304:repository/sagemaker-model-monitor-analyzer",
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/customers-features"]) in found
    assert allow(["iam:PassRole"], [role_arn(plan, f"{NAME}-execution")],
                 {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}) in found
    writes = {r for s in found if "s3:PutObject" in s["Action"] for r in s["Resource"]}
    assert writes == {f"{arn}/data-pipelines/customers/reports/*", f"{arn}/data-pipelines/customers/transformed/*"}


def test_pipeline_inputs_and_create_request():
    plan = full_plan()
    pipeline = plan.get(f"{NAME}-pipeline", PIPELINE)
    inputs = {k: v for k, v in pipeline.inputs.items() if k != "pipelineDefinition"}
    assert inputs == {"pipelineName": NAME, "pipelineDisplayName": NAME,
                      "pipelineDescription": "Validates what lands under landing/customers/ and ingests it into the "
                                             "customers feature group",
                      "roleArn": role_arn(plan, f"{NAME}-execution"), "tags": {"team": "crm", "data-pipeline": NAME}}
    assert validate_request(to_api_request(PIPELINE, pipeline.inputs)) == []


def test_landing_and_the_schedule_start_the_pipeline_and_failures_notify_the_topic():
    plan = full_plan()
    events = role_arn(plan, f"{NAME}-events")
    landed = plan.get(f"{NAME}-new-data", RULE).inputs
    assert json.loads(landed["eventPattern"]) == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket(plan)]}, "object": {"key": [{"prefix": "landing/customers/"}]}}}
    assert plan.get(f"{NAME}-schedule", RULE).inputs["scheduleExpression"] == "cron(0 4 * * ? *)"
    for start in ("schedule", "new-data"):
        target = plan.get(f"{NAME}-{start}-start", TARGET).inputs
        assert (target["arn"], target["roleArn"]) == (PIPELINE_ARN, events)
    assert json.loads(plan.get(f"{NAME}-failed", RULE).inputs["eventPattern"]) == {
        "source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
        "detail": {"pipelineArn": [PIPELINE_ARN], "currentPipelineExecutionStatus": ["Failed"]}}
    assert plan.get(f"{NAME}-failed-notify", TARGET).inputs["arn"] == TOPIC
    only_landing = plan_of(settings(schedule=None))
    assert [r.name for r in only_landing.resources if r.type == RULE] == [f"{NAME}-new-data", f"{NAME}-failed"]


# -- the definition -------------------------------------------------------------------------------------------

def run_uri(plan: Plan, kind: str) -> dict[str, Any]:
    return {"Std:Join": {"On": "", "Values": [f"s3://{bucket(plan)}/data-pipelines/customers/{kind}/",
                                              {"Get": "Execution.PipelineExecutionId"}, "/"]}}


def test_definition_claims_validates_gates_transforms_and_ingests():
    plan = full_plan()
    document = definition(plan)
    function = plan.get(f"{NAME}-steps", FUNCTION).inputs["name"]
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    claim, has_batch = document["Steps"]
    assert claim == {"Name": "Claim", "Type": "Lambda", "FunctionArn": function_arn,
                     "Arguments": {"action": "claim", "landing_uri": f"s3://{bucket(plan)}/landing/customers/",
                                   "batch_uri": run_uri(plan, "batches"), "kms_key_id": KEY_ARN,
                                   "claims_uri": f"s3://{bucket(plan)}/data-pipelines/customers/claims/"},
                     "OutputParameters": [{"OutputName": "objects", "OutputType": "Integer"}]}
    assert has_batch["Arguments"]["Conditions"] == [
        {"Type": "GreaterThan", "LeftValue": {"Get": "Steps.Claim.OutputParameters['objects']"}, "RightValue": 0}]
    validate, gate, is_valid = has_batch["Arguments"]["IfSteps"]
    assert has_batch["Arguments"]["ElseSteps"] == []
    assert validate["Arguments"]["AppSpecification"] == {"ImageUri": ANALYZER}
    assert validate["Arguments"]["Environment"] == {
        "dataset_format": '{"csv": {"header": true}}', "dataset_source": "/opt/ml/processing/input/batch",
        "output_path": "/opt/ml/processing/output", "baseline_constraints": "/opt/ml/processing/baseline/constraints.json",
        "publish_cloudwatch_metrics": "Disabled"}
    assert validate["Arguments"]["NetworkConfig"] == {
        "EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True,
        "VpcConfig": {"SecurityGroupIds": [security_group_id(plan)], "Subnets": SUBNETS}}
    assert gate["Arguments"] == {
        "action": "gate", "report_uri": {"Get": "Steps.Validate.ProcessingOutputConfig.Outputs['report'].S3Output.S3Uri"},
        "batch_uri": run_uri(plan, "batches"), "kms_key_id": KEY_ARN, "quarantine_uri": run_uri(plan, "quarantine")}
    assert is_valid["Arguments"]["Conditions"] == [
        {"Type": "Equals", "LeftValue": {"Get": "Steps.Gate.OutputParameters['valid']"}, "RightValue": True}]
    transform, ingest = is_valid["Arguments"]["IfSteps"]
    [fail] = is_valid["Arguments"]["ElseSteps"]
    assert (transform["Name"], ingest["Name"], fail["Name"], fail["Type"]) == (
        "Transform", "Ingest", "ValidationFailed", "Fail")
    assert fail["Arguments"]["ErrorMessage"] == {"Std:Join": {"On": "", "Values": [
        "The batch failed validation: ", {"Get": "Steps.Gate.OutputParameters['violations']"}, " violations (",
        {"Get": "Steps.Gate.OutputParameters['summary']"}, ")", "; quarantined at ",
        {"Get": "Steps.Gate.OutputParameters['quarantine_uri']"}]}}
    assert transform["Arguments"]["AppSpecification"] == {
        "ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "/opt/program/transform.py"]}
    assert transform["Arguments"]["ProcessingOutputConfig"] == {"Outputs": [{"OutputName": "features", "S3Output": {
        "S3Uri": run_uri(plan, "transformed"), "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}],
        "KmsKeyId": KEY_ARN}
    assert ingest["Arguments"] == {
        "action": "ingest", "feature_group": GROUP,
        "output_uri": {"Get": "Steps.Transform.ProcessingOutputConfig.Outputs['features'].S3Output.S3Uri"}}


def _concrete(value: Any) -> Any:
    """A step's arguments with the pipeline's run-time values filled in, as SageMaker sends them."""
    if isinstance(value, dict) and "Std:Join" in value:
        return "".join(part if isinstance(part, str) else "run-1" for part in value["Std:Join"]["Values"])
    if isinstance(value, dict):
        return {key: _concrete(item) for key, item in value.items()}
    return [_concrete(item) for item in value] if isinstance(value, list) else value


def test_the_processing_steps_are_create_processing_job_requests():
    document = definition(full_plan())
    validate = document["Steps"][1]["Arguments"]["IfSteps"][0]
    transform = document["Steps"][1]["Arguments"]["IfSteps"][2]["Arguments"]["IfSteps"][0]
    for step in (validate, transform):
        request = ApiRequest("sagemaker", "CreateProcessingJob",
                             {**_concrete(step["Arguments"]), "ProcessingJobName": "pipelines-x"})
        assert validate_request(request) == []


def test_definition_follows_the_settings_and_is_deterministic_and_offline(no_network):
    spec = DataPipelineSpec(
        region="us-east-1", role_arn=f"arn:aws:iam::{ACCOUNT}:role/r", function_arn="arn:aws:lambda:us-east-1:"
        f"{ACCOUNT}:function:f", kms_key_arn=KEY_ARN, landing_uri="s3://d/in/", runs_uri="s3://d/data-pipelines/x/",
        feature_group_name=GROUP, constraints_s3_uri=CONSTRAINTS, dataset_format="json", analyzer_image_uri=ANALYZER,
        validation_instance_type="ml.c5.xlarge", validation_volume_size_gb=50, validation_max_runtime_seconds=600,
        transformation_image_uri=IMAGE, transformation_command=("python3", "t.py"),
        transformation_instance_type="ml.m5.2xlarge", transformation_volume_size_gb=100,
        transformation_max_runtime_seconds=7200, transformation_network_isolation=False, quarantine=False)
    first = build_definition(spec, "dev-x-data")
    assert first == build_definition(spec, "dev-x-data")
    steps = json.loads(first)["Steps"][1]["Arguments"]["IfSteps"]
    validate, gate, is_valid = steps
    assert validate["Arguments"]["Environment"]["dataset_format"] == '{"json": {"line": true}}'
    assert validate["Arguments"]["ProcessingResources"]["ClusterConfig"] == {
        "InstanceType": "ml.c5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50, "VolumeKmsKeyId": KEY_ARN}
    # no VPC given: SageMaker's managed network, still isolated
    assert validate["Arguments"]["NetworkConfig"] == {"EnableNetworkIsolation": True,
                                                      "EnableInterContainerTrafficEncryption": True}
    assert gate["Arguments"]["quarantine_uri"] == ""
    transform = is_valid["Arguments"]["IfSteps"][0]
    assert transform["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is False
    assert transform["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    fail = is_valid["Arguments"]["ElseSteps"][0]
    assert fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"][-2:] == [
        "; the batch stays at ", {"Std:Join": {"On": "", "Values": [
            "s3://d/data-pipelines/x/batches/", {"Get": "Execution.PipelineExecutionId"}, "/"]}}]


# -- in the platform ------------------------------------------------------------------------------------------

def test_the_platform_feeds_the_feature_group_from_the_datasets_bucket():
    plan = run_platform({"network": NETWORK, "feature_groups": [FEATURE_GROUP], "data_pipelines": [FULL]})
    datasets = plan.get("dev-datasets-bucket")
    # S3 tells EventBridge of new objects; the alerts topic exists for the failures
    assert [r.name for r in plan.resources if r.type == "aws:s3/bucketNotification:BucketNotification"] == [
        "dev-datasets-events"]
    assert plan.get("dev-datasets-events").inputs == {"bucket": datasets.inputs["bucket"], "eventbridge": True}
    topic = plan.get("dev-alerts-topic", "aws:sns/topic:Topic").inputs["name"]
    assert plan.get(f"{NAME}-failed-notify", TARGET).inputs["arn"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"
    ingest = definition(plan)["Steps"][1]["Arguments"]["IfSteps"][2]["Arguments"]["IfSteps"][1]
    assert ingest["Arguments"]["feature_group"] == "dev-features-customers"
    found = [{k: v for k, v in s.items() if k != "Sid"} for s in statements(plan, f"{NAME}-steps-permissions")]
    assert allow(["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"], [GROUP_ARN]) in found
    # the runs' claim markers expire after a week (old versions the next day); the bucket's own rule stays first
    rules = plan.get("dev-datasets-lifecycle").inputs["rules"]
    assert [rule["id"] for rule in rules] == ["expire-old-versions", "expire-customers-claims"]
    assert rules[1] == {"id": "expire-customers-claims", "status": "Enabled",
                        "filter": {"prefix": "data-pipelines/customers/claims/"}, "expiration": {"days": 7},
                        "noncurrentVersionExpiration": {"noncurrentDays": 1},
                        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}
