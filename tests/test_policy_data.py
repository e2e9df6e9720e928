"""Data pipeline guardrails: a DataPipeline as the platform builds it in production passes every rule; raw pipelines
and functions with what a rule forbids fail exactly that rule."""

from __future__ import annotations

import functools
import json

import pulumi_aws as aws
import pytest

from emlops.components.data_pipeline import DataPipeline, DataPipelineContext, DataPipelineSettings
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from emlops.review.check import evaluate
from emlops.guardrails import RULES
from tests.conftest import ACCOUNT, REGION, run_components
from tests.test_policy_baseline import BOUNDARY, PROD, SUBNETS, TAGS, VPC, findings

IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/customers-features:2.1.0"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pipeline"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k"
ENTRY = {"name": "customers", "feature_group": "customers", "landing_prefix": "landing/customers/",
         "schedule": "cron(0 4 * * ? *)", "validation": {"constraints_s3_uri": "s3://ml-baselines/c/constraints.json"},
         "transformation": {"image": IMAGE}}
RULE_NAMES = ["sagemaker-processing-steps-encrypted", "sagemaker-processing-steps-in-vpc", "lambda-in-vpc",
              "data-pipeline-quarantine", "athena-workgroup-results-encrypted"]


def pipelines(quarantine: bool) -> None:
    key = KmsKey("data", KmsKeyArgs(description="Encrypts datasets", protect=True, tags=TAGS))
    datasets = SecureBucket("datasets", SecureBucketArgs(kms_key_arn=key.arn, protect=True, tags=TAGS))
    name = "prod-customers-data" if quarantine else "prod-loose-data"
    DataPipeline(name, DataPipelineSettings.model_validate({**ENTRY, "quarantine": quarantine}), DataPipelineContext(
        pipeline_name=name, datasets_bucket=datasets, feature_group_name="prod-features-customers",
        feature_group_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/prod-features-customers",
        placement=Placement(VPC, SUBNETS), alerts_topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:alerts",
        governance=Governance(TAGS, BOUNDARY, protect=True)))


@functools.cache
def good_plan() -> Plan:
    return run_components(lambda: pipelines(quarantine=True))


def processing_step(name: str, **arguments) -> dict:
    base = {"AppSpecification": {"ImageUri": IMAGE}, "RoleArn": ROLE,
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1,
                                                      "VolumeSizeInGB": 30, "VolumeKmsKeyId": KEY}},
            "ProcessingOutputConfig": {"Outputs": [], "KmsKeyId": KEY},
            "NetworkConfig": {"VpcConfig": {"Subnets": SUBNETS, "SecurityGroupIds": ["sg-1"]}}}
    return {"Name": name, "Type": "Processing", "Arguments": {**base, **arguments}}


@functools.cache
def bad_plan() -> Plan:
    def program() -> None:
        plain = {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
        steps = [processing_step("Plain", ProcessingResources={"ClusterConfig": plain},
                                 ProcessingOutputConfig={"Outputs": []}),
                 {"Name": "Check", "Type": "Condition", "Arguments": {"Conditions": [], "ElseSteps": [], "IfSteps": [
                     processing_step("Open", NetworkConfig={"EnableNetworkIsolation": True})]}}]
        aws.sagemaker.Pipeline("raw", pipeline_name="raw", pipeline_display_name="raw", role_arn=ROLE, tags=TAGS,
                               pipeline_definition=json.dumps({"Version": "2020-12-01", "Steps": steps}))
        aws.lambda_.Function("outside", role=ROLE, runtime="python3.12", handler="h.handler", tags=TAGS,
                             code=None)
        pipelines(quarantine=False)
        aws.athena.Workgroup("loose", tags=TAGS, configuration={"result_configuration": {
            "output_location": "s3://ml-output/athena/", "encryption_configuration": {"encryption_option": "SSE_S3"}}})
        aws.athena.Workgroup("nowhere", tags=TAGS, configuration={"enforce_workgroup_configuration": True})
    return run_components(program)


BAD: dict[str, list[tuple[str, str]]] = {
    "sagemaker-processing-steps-encrypted": [
        ("raw", "processing step 'Plain' has volumes without a KMS key (ProcessingResources.ClusterConfig.VolumeKmsKeyId)"),
        ("raw", "processing step 'Plain' writes its outputs without a KMS key (ProcessingOutputConfig.KmsKeyId)")],
    "sagemaker-processing-steps-in-vpc": [
        ("raw", "processing step 'Open' runs outside the VPC (NetworkConfig.VpcConfig.Subnets)")],
    "lambda-in-vpc": [("outside", "the function runs outside the VPC (vpcConfig.subnetIds)")],
    "data-pipeline-quarantine": [
        ("prod-loose-data-pipeline",
         "gate step 'Gate' leaves a batch that fails validation where it is (no quarantine_uri)")],
    "athena-workgroup-results-encrypted": [
        ("loose", "queries may override the workgroup's results location and encryption (enforceWorkgroupConfiguration)"),
        ("loose", "query results are not encrypted with a KMS key (resultConfiguration.encryptionConfiguration)"),
        ("nowhere", "the workgroup has no results location of its own (resultConfiguration.outputLocation)"),
        ("nowhere", "query results are not encrypted with a KMS key (resultConfiguration.encryptionConfiguration)")],
}


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_rule_reports_exactly_the_bad_resources(rule):
    assert findings(bad_plan(), rule, PROD) == BAD[rule]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_the_data_pipeline_complies_with_the_rule(rule):
    assert findings(good_plan(), rule, PROD) == []


def test_a_retraining_pipelines_feature_workgroup_complies():
    from tests.test_training_features import plan_with_features

    plan = plan_with_features()
    assert len(plan.by_type("aws:athena/workgroup:Workgroup")) == 1
    assert findings(plan, "athena-workgroup-results-encrypted", PROD) == []
    assert findings(plan, "sagemaker-processing-steps-encrypted", PROD) == []


def test_every_rule_of_the_pack_passes_the_data_pipeline_in_production():
    assert [(v.rule, v.name, v.message) for v in evaluate(good_plan(), PROD, list(RULES.values()))] == []


def test_quarantine_is_demanded_in_production_only():
    from emlops.guardrails import Settings

    assert findings(bad_plan(), "data-pipeline-quarantine", Settings(environment="dev")) == []


def test_the_functions_own_log_group_is_encrypted_and_expires():
    assert [r.name for r in good_plan().by_type("aws:cloudwatch/logGroup:LogGroup")] == ["prod-customers-data-logs"]
    for rule in ("cloudwatch-log-group-kms", "cloudwatch-log-group-retention"):
        assert findings(good_plan(), rule, PROD) == []
