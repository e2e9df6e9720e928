"""ModelQualityJobDefinition: the dynamic provider against moto, its request against botocore, its pickle,
and how the offline preview records and answers for it."""

from __future__ import annotations

import base64
import copy
import re
import subprocess
import sys
from typing import Any

import boto3
import dill
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from emlops.components.model_quality import (
    QUALITY_METRICS,
    RESOURCE_TYPE,
    ModelQualityJobDefinition,
    ModelQualityJobDefinitionProvider,
    check_model_quality,
    create_request,
    problem_types,
)
from emlops.aws_requests import ApiRequest, to_api_request, validate_request
from emlops.mocks import MockGap, mark_dynamic_provider
from tests.conftest import ACCOUNT, REGION, ROOT, run_components

OTHER_ACCOUNT = "111111111111"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/churn-execution-role-940aae9"
IMAGE = "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"
MARKER = "[dynamic provider: emlops.components.model_quality.ModelQualityJobDefinitionProvider]"
NAME = re.compile(r"churn-quality-job-[0-9a-f]{7}")

# The inputs a ModelMonitor registers (camelCase, as the plan records them), without the provider.
INPUTS: dict[str, Any] = {
    "namePrefix": "churn-quality-job", "region": REGION, "accountId": ACCOUNT, "roleArn": ROLE_ARN,
    "modelQualityAppSpecification": {"imageUri": IMAGE, "problemType": "BinaryClassification",
                                     "environment": {"publish_cloudwatch_metrics": "Enabled"}},
    "modelQualityBaselineConfig": {"constraintsResource": {"s3Uri": "s3://ml-baselines/churn/quality/constraints.json"}},
    "modelQualityJobInput": {
        "endpointInput": {"endpointName": "churn", "localPath": "/opt/ml/processing/input/endpoint",
                          "s3InputMode": "File", "s3DataDistributionType": "FullyReplicated",
                          "probabilityAttribute": "0", "probabilityThresholdAttribute": 0.5},
        "groundTruthS3Input": {"s3Uri": "s3://ml-ground-truth/churn"}},
    "modelQualityJobOutputConfig": {"kmsKeyId": KEY_ARN, "monitoringOutputs": [{"s3Output": {
        "s3Uri": "s3://reports/monitoring/churn/model-quality", "localPath": "/opt/ml/processing/output",
        "s3UploadMode": "EndOfJob"}}]},
    "jobResources": {"clusterConfig": {"instanceCount": 2, "instanceType": "ml.m5.large", "volumeSizeInGb": 50,
                                       "volumeKmsKeyId": KEY_ARN}},
    "networkConfig": {"enableNetworkIsolation": True, "enableInterContainerTrafficEncryption": True,
                      "vpcConfig": {"subnets": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}},
    "stoppingCondition": {"maxRuntimeInSeconds": 1800},
    "tags": {"team": "churn", "model-monitor": "churn"},
}

REQUEST = {
    "JobDefinitionName": "churn-quality-job-0a1b2c3",
    "ModelQualityAppSpecification": {"ImageUri": IMAGE, "ProblemType": "BinaryClassification",
                                     "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
    "ModelQualityBaselineConfig": {"ConstraintsResource": {"S3Uri": "s3://ml-baselines/churn/quality/constraints.json"}},
    "ModelQualityJobInput": {
        "EndpointInput": {"EndpointName": "churn", "LocalPath": "/opt/ml/processing/input/endpoint",
                          "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated",
                          "ProbabilityAttribute": "0", "ProbabilityThresholdAttribute": 0.5},
        "GroundTruthS3Input": {"S3Uri": "s3://ml-ground-truth/churn"}},
    "ModelQualityJobOutputConfig": {"KmsKeyId": KEY_ARN, "MonitoringOutputs": [{"S3Output": {
        "S3Uri": "s3://reports/monitoring/churn/model-quality", "LocalPath": "/opt/ml/processing/output",
        "S3UploadMode": "EndOfJob"}}]},
    "JobResources": {"ClusterConfig": {"InstanceCount": 2, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 50,
                                       "VolumeKmsKeyId": KEY_ARN}},
    "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True,
                      "VpcConfig": {"Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}},
    "RoleArn": ROLE_ARN,
    "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
    "Tags": [{"Key": "team", "Value": "churn"}, {"Key": "model-monitor", "Value": "churn"}],
}


def wire(value: Any) -> Any:
    """A value as the provider host receives it: Pulumi's wire format carries every number as a double."""
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


PROVIDER = ModelQualityJobDefinitionProvider()


def checked(inputs: dict[str, Any] = INPUTS, olds: dict[str, Any] | None = None) -> dict[str, Any]:
    result = PROVIDER.check(olds or {}, wire({**inputs, "__provider": serialize_provider(PROVIDER)}))
    assert result.failures == []
    return result.inputs


def failures(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f.property, f.reason) for f in PROVIDER.check({}, inputs).failures]


# -- the request --------------------------------------------------------------------------------------

def test_the_request_is_the_api_request_and_valid():
    request = create_request({**INPUTS, "jobDefinitionName": "churn-quality-job-0a1b2c3"})
    assert request == REQUEST
    assert validate_request(ApiRequest("sagemaker", "CreateModelQualityJobDefinition", request)) == []
    # numbers arrive as doubles; integer members go to SageMaker as integers
    assert create_request(wire({**INPUTS, "jobDefinitionName": "churn-quality-job-0a1b2c3"})) == REQUEST


def test_the_plan_mapping_validates_the_recorded_inputs_and_names_what_the_provider_fills_in():
    request = to_api_request(RESOURCE_TYPE, {**INPUTS, "__provider": MARKER})
    assert request.params == {**REQUEST, "JobDefinitionName": "[unknown: filled in by the provider]"}
    assert validate_request(request) == []


def test_the_provider_names_the_definition_and_keeps_the_name_until_it_is_replaced():
    first = checked()
    assert NAME.fullmatch(first["jobDefinitionName"])
    assert {k: v for k, v in first.items() if k not in ("jobDefinitionName", "__provider")} == wire(INPUTS)
    # the engine checks with the old state while nothing is replaced ...
    assert checked(olds=first)["jobDefinitionName"] == first["jobDefinitionName"]
    # ... and again without it on a replacement: a new name, so the new definition exists beside the old one
    names = {checked()["jobDefinitionName"] for _ in range(5)}
    assert len(names) == 5 and first["jobDefinitionName"] not in names
    renamed = checked({**INPUTS, "namePrefix": "churn-mq"}, olds=first)["jobDefinitionName"]
    assert re.fullmatch(r"churn-mq-[0-9a-f]{7}", renamed)
    long = checked({**INPUTS, "namePrefix": "a" * 80})["jobDefinitionName"]
    assert re.fullmatch(r"a{55}-[0-9a-f]{7}", long) and len(long) == 63


def test_check_rejects_what_sagemaker_would_reject_before_any_call():
    bad = copy.deepcopy(INPUTS)
    bad["modelQualityAppSpecification"]["problemType"] = "Binary"
    bad["jobResources"]["clusterConfig"]["instanceType"] = "ml.m5.huge"
    bad["jobResources"]["clusterConfig"]["instanceCount"] = 0
    bad["stoppingCondition"]["maxRuntimeInSeconds"] = 86401
    bad["roleArn"] = "churn-role"
    bad["networkConfig"]["vpcConfig"]["subnet"] = ["subnet-0123456789abcdef0"]
    del bad["modelQualityJobInput"]["groundTruthS3Input"]
    del bad["region"]
    assert failures(bad) == [
        ("networkConfig", "networkConfig.vpcConfig.subnet: no such member in the API"),
        ("roleArn", "RoleArn: length 10 is below the minimum 20"),
        ("roleArn", "RoleArn: 'churn-role' does not match pattern arn:aws[a-z\\-]*:iam::\\d{12}:role/?"
                    "[a-zA-Z_0-9+=,.@\\-_/]+"),
        ("modelQualityAppSpecification", "ModelQualityAppSpecification.ProblemType: 'Binary' is not one of "
                                         "'BinaryClassification', 'MulticlassClassification', 'Regression'"),
        ("modelQualityJobInput", "ModelQualityJobInput.GroundTruthS3Input: missing required member"),
        ("jobResources", "JobResources.ClusterConfig.InstanceCount: value 0 is below the minimum 1"),
        ("jobResources", "JobResources.ClusterConfig.InstanceType: 'ml.m5.huge' is not an allowed value (closest: "
                         "'ml.m5.large', 'ml.m5.xlarge', 'ml.m5.4xlarge')"),
        ("stoppingCondition", "StoppingCondition.MaxRuntimeInSeconds: value 86401 is above the maximum 86400"),
        ("region", "region is required: the provider calls SageMaker in the stack's account and region"),
    ]


def test_values_unknown_during_a_preview_are_not_rejected():
    unknown = {**INPUTS, "roleArn": rpc.UNKNOWN, "networkConfig": {
        **INPUTS["networkConfig"], "vpcConfig": {"subnets": ["subnet-0123456789abcdef0"], "securityGroupIds": [rpc.UNKNOWN]}}}
    result = PROVIDER.check({}, unknown)
    assert result.failures == [] and result.inputs["roleArn"] == rpc.UNKNOWN


def test_every_change_replaces_the_definition_new_one_first_except_the_role_it_is_reached_through():
    old = {**checked(), "arn": "arn:x", "name": "n"}
    same = PROVIDER.diff("n", old, {k: v for k, v in old.items() if k not in ("arn", "name")})
    assert (same.changes, same.replaces) == (False, [])
    new = copy.deepcopy(old)
    new["jobResources"]["clusterConfig"]["instanceType"] = "ml.m5.xlarge"
    new["tags"] = {"team": "churn"}
    new["__provider"] = "another pickle of the same provider"
    diff = PROVIDER.diff("n", old, new)
    assert (diff.changes, diff.replaces, diff.delete_before_replace) == (True, ["jobResources", "tags"], False)
    role = PROVIDER.diff("n", old, {**old, "assumeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/deployer"})
    assert (role.changes, role.replaces) == (True, [])
    moved = PROVIDER.diff("n", old, {**old, "region": "eu-central-1"})
    assert moved.replaces == ["region"]
    updated = PROVIDER.update("n", old, {**old, "assumeRoleArn": "r"}).outs
    assert (updated["assumeRoleArn"], updated["arn"], updated["name"]) == ("r", "arn:x", "n")


# -- against moto ------------------------------------------------------------------------------------

@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    from moto import mock_aws

    with mock_aws():
        yield


def test_create_read_delete_against_sagemaker(aws):
    props = checked()
    name = props["jobDefinitionName"]
    created = PROVIDER.create(props)
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/{name}"
    assert created.id == name
    assert created.outs == {**props, "arn": arn, "name": name}
    stored = boto3.client("sagemaker", region_name=REGION).describe_model_quality_job_definition(
        JobDefinitionName=name)
    request = {**REQUEST, "JobDefinitionName": name}
    assert {k: stored[k] for k in request if k != "Tags"} == {k: v for k, v in request.items() if k != "Tags"}
    assert stored["JobDefinitionArn"] == arn

    read = PROVIDER.read(name, created.outs)
    assert (read.id, read.outs) == (name, created.outs)
    PROVIDER.delete(name, created.outs)
    gone = PROVIDER.read(name, created.outs)
    assert (gone.id, gone.outs) == (None, {})
    PROVIDER.delete(name, created.outs)  # deleting what is gone is not an error


def test_the_definition_is_created_in_the_inputs_region_only(aws):
    props = checked()
    PROVIDER.create(props)
    assert boto3.client("sagemaker", region_name="us-east-1").list_model_quality_job_definitions()[
        "JobDefinitionSummaries"] == []
    assert [s["MonitoringJobDefinitionName"] for s in boto3.client("sagemaker", region_name=REGION)
            .list_model_quality_job_definitions()["JobDefinitionSummaries"]] == [props["jobDefinitionName"]]


def test_credentials_of_another_account_are_refused_before_anything_is_created(aws):
    with pytest.raises(RuntimeError) as caught:
        PROVIDER.create(checked({**INPUTS, "accountId": OTHER_ACCOUNT}))
    assert str(caught.value) == (
        f"the credentials are for account {ACCOUNT}, not the stack's account {OTHER_ACCOUNT}; use the stack's "
        "credentials or set assumeRoleArn to a role in that account")
    assert boto3.client("sagemaker", region_name=REGION).list_model_quality_job_definitions()[
        "JobDefinitionSummaries"] == []


def test_an_assumed_role_reaches_the_stacks_account(aws):
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/ml-deployer"
    props = checked({**INPUTS, "accountId": OTHER_ACCOUNT, "assumeRoleArn": role})
    created = PROVIDER.create(props)
    assert created.outs["arn"] == (f"arn:aws:sagemaker:{REGION}:{OTHER_ACCOUNT}:model-quality-job-definition/"
                                   f"{props['jobDefinitionName']}")
    assert PROVIDER.read(created.id, created.outs).id == created.id
    # the deploying credentials' own account has nothing
    assert boto3.client("sagemaker", region_name=REGION).list_model_quality_job_definitions()[
        "JobDefinitionSummaries"] == []
    with pytest.raises(RuntimeError, match=f"^the credentials are for account {OTHER_ACCOUNT}, not the stack's "
                                           f"account {ACCOUNT};"):
        PROVIDER.create(checked({**INPUTS, "assumeRoleArn": role}))
    PROVIDER.delete(created.id, created.outs)
    assert PROVIDER.read(created.id, created.outs).id is None


# -- the pickle ---------------------------------------------------------------------------------------

def test_the_provider_pickles_small_stable_and_by_reference():
    serialized = serialize_provider(ModelQualityJobDefinitionProvider())
    assert serialized == serialize_provider(ModelQualityJobDefinitionProvider())
    raw = base64.b64decode(serialized)
    assert len(raw) < 120 and b"emlops.components.model_quality" in raw
    assert type(dill.loads(raw)) is ModelQualityJobDefinitionProvider
    assert ModelQualityJobDefinitionProvider.serialize_as_secret_always is False


def test_the_provider_host_unpickles_it_without_boto3_or_pulumi_aws():
    # what Pulumi's dynamic provider host does with `__provider`: import only what the pickle names
    code = ("import base64, sys, dill; provider = dill.loads(base64.b64decode(sys.argv[1])); "
            "print(type(provider).__qualname__, sorted(m for m in ('boto3', 'botocore', 'pulumi_aws') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code, serialize_provider(PROVIDER)], cwd=ROOT,
                            capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "ModelQualityJobDefinitionProvider []"


# -- in the offline preview ------------------------------------------------------------------------

def test_the_plan_records_a_readable_marker_and_the_mocks_answer_like_the_provider():
    def program() -> None:
        job = ModelQualityJobDefinition(
            "churn-quality-job", region=REGION, account_id=ACCOUNT, role_arn=ROLE_ARN,
            model_quality_app_specification={"image_uri": IMAGE, "problem_type": "Regression",
                                             "environment": {"publish_cloudwatch_metrics": "Enabled"}},
            model_quality_job_input={"endpoint_input": {"endpoint_name": "churn", "local_path": "/in",
                                                        "inference_attribute": "0"},
                                     "ground_truth_s3_input": {"s3_uri": "s3://ml-ground-truth/churn"}},
            model_quality_job_output_config={"monitoring_outputs": [{"s3_output": {
                "s3_uri": "s3://reports/mq", "local_path": "/out"}}]},
            job_resources={"cluster_config": {"instance_count": 1, "instance_type": "ml.m5.large",
                                              "volume_size_in_gb": 20}})
        pulumi.export("job", {"arn": job.arn, "name": job.name})
    plan = run_components(program)
    job = plan.get("churn-quality-job", RESOURCE_TYPE)
    assert job.custom and job.provider is None
    assert job.inputs == {
        "__provider": MARKER, "namePrefix": "churn-quality-job", "region": REGION, "accountId": ACCOUNT,
        "roleArn": ROLE_ARN,
        "modelQualityAppSpecification": {"imageUri": IMAGE, "problemType": "Regression",
                                         "environment": {"publish_cloudwatch_metrics": "Enabled"}},
        "modelQualityJobInput": {"endpointInput": {"endpointName": "churn", "localPath": "/in",
                                                   "inferenceAttribute": "0"},
                                 "groundTruthS3Input": {"s3Uri": "s3://ml-ground-truth/churn"}},
        "modelQualityJobOutputConfig": {"monitoringOutputs": [{"s3Output": {"s3Uri": "s3://reports/mq",
                                                                            "localPath": "/out"}}]},
        "jobResources": {"clusterConfig": {"instanceCount": 1, "instanceType": "ml.m5.large", "volumeSizeInGb": 20}}}
    name = plan.outputs["job"]["name"]
    assert NAME.fullmatch(name)
    assert plan.outputs["job"]["arn"] == f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-quality-job-definition/{name}"
    assert run_components(program).outputs == plan.outputs  # deterministic, like every auto-name
    assert validate_request(to_api_request(job.type, job.inputs)) == []


def test_a_secret_pickle_is_recognised_too():
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": serialize_provider(PROVIDER)}
    assert mark_dynamic_provider({"a": 1, "__provider": secret}) == {"a": 1, "__provider": MARKER}
    assert mark_dynamic_provider({"a": 1}) == {"a": 1}


class UnknownProvider(pulumi.dynamic.ResourceProvider):
    """A dynamic provider the offline preview has no answer for."""


class Thing(pulumi.dynamic.Resource):
    """Registers as `pulumi-python:dynamic:Resource`, the type of dynamic resources that name none."""


def test_a_dynamic_provider_without_mock_outputs_fails_loudly():
    with pytest.raises(MockGap, match=re.escape(
            "the offline preview has no outputs for the dynamic provider tests.test_model_quality.UnknownProvider; "
            "add them to _DYNAMIC_OUTPUTS in emlops/mocks.py")):
        run_components(lambda: Thing(UnknownProvider(), "thing", {"a": 1}))


# -- the rules -----------------------------------------------------------------------------------------

def test_problem_types_and_metrics_are_sagemakers():
    assert problem_types() == ("BinaryClassification", "MulticlassClassification", "Regression")
    assert set(QUALITY_METRICS) == set(problem_types())
    assert {p: check_model_quality(p, "0", "1" if p != "Regression" else None,
                                   0.5 if p == "BinaryClassification" else None, None, 0.5)
            for p in problem_types()} == {
        "BinaryClassification": "auc", "MulticlassClassification": "accuracy", "Regression": "rmse"}
