"""ML guardrails: each rule passes the ML components and fails raw SageMaker resources with the bad setting."""

from __future__ import annotations

import functools
import json

import pulumi_aws as aws
import pytest

from emlops.components.batch_transform import BatchTransform, BatchTransformContext, BatchTransformSettings
from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
from emlops.components.feature_store import FeatureGroupSettings, FeatureStore, FeatureStoreContext
from emlops.components.kms import KmsKey, KmsKeyArgs
import pulumi_aws_native as aws_native
from emlops.components.model_card import ModelCard, ModelCardContext, ModelCardSettings
from emlops.components.monitoring import ModelMonitor, MonitorContext, MonitoringSettings
from emlops.components.registry import ModelRegistry, RegistryContext, RegistrySettings
from emlops.components.retraining import RetrainingContext, RetrainingPipeline, RetrainingSettings
from emlops.components.settings import Governance, Placement
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.guardrails import RULES, Settings
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, run_components
from tests.test_policy_baseline import BOUNDARY, SUBNETS, TAGS, VPC, findings

IMAGE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
TRAINING_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-training:1.4.0"
PREFIX = "s3://ml-artifacts/models/churn/3/"
STATISTICS, CONSTRAINTS = "s3://ml-baselines/churn/statistics.json", "s3://ml-baselines/churn/constraints.json"
ALLOWED = ("ml.m5.large", "ml.m5.xlarge")
PROD = Settings(production=True, environment="prod", permission_boundary_required=True, allowed_instance_types=ALLOWED)
DEV = Settings(production=False, environment="dev", allowed_instance_types=ALLOWED)
FEATURES = [{"name": "customer_id", "type": "String"}, {"name": "event_time", "type": "Fractional"},
            {"name": "tenure", "type": "Integral"}]


@functools.cache
def good_plan() -> Plan:
    """A production model as the platform builds it: endpoint, monitor, feature store, registry and retraining."""
    def program() -> None:
        key = KmsKey("ml", KmsKeyArgs(description="Encrypts ML data", protect=True, tags=TAGS))
        capture = SecureBucket("capture", SecureBucketArgs(kms_key_arn=key.arn, protect=True, tags=TAGS))
        endpoint = ModelEndpoint("churn", EndpointSettings.model_validate({
            "variants": [{"name": "primary", "instance_type": "ml.m5.large", "initial_instance_count": 2}],
            "deployment": {"strategy": "canary"}, "autoscaling": {"min_instances": 2, "max_instances": 4},
        }), EndpointContext(
            artifact=ModelArtifact(PREFIX, compressed=False), image_uri=IMAGE, placement=Placement(VPC, SUBNETS),
            kms_key_arn=key.arn, capture_bucket=capture, governance=Governance(TAGS, BOUNDARY)))
        monitor = ModelMonitor("churn-monitor", MonitoringSettings.model_validate({
            "baseline": {"statistics_s3_uri": STATISTICS, "constraints_s3_uri": CONSTRAINTS},
            "model_quality": {"ground_truth_s3_uri": "s3://ml-ground-truth/churn/",
                              "problem_type": "BinaryClassification", "probability_attribute": "0",
                              "probability_threshold": 0.5, "threshold": 0.75},
        }), MonitorContext(
            endpoint_name=endpoint.endpoint_name, capture_s3_uri=endpoint.data_capture_uri, reports_bucket=capture,
            placement=Placement(VPC, SUBNETS), production=True, region="eu-west-1",
            governance=Governance(TAGS, BOUNDARY, protect=True)))
        ModelCard("churn-card", ModelCardSettings(intended_uses="Scores churn risk", risk_rating="Medium",
                                                  owner="churn-team"), ModelCardContext(
            card_name="churn", model_name="churn", endpoint_name="churn", package_group="churn", kms_key_arn=key.arn,
            production=True, governance=Governance(TAGS, protect=True)))
        FeatureStore("features", [FeatureGroupSettings.model_validate({
            "name": "customers", "features": FEATURES, "record_identifier": "customer_id",
            "event_time_feature": "event_time", "online": {"enabled": True}})], FeatureStoreContext(
            kms_key_arn=key.arn, offline_bucket=capture, governance=Governance(TAGS, BOUNDARY, protect=True)))
        ModelRegistry("registry", RegistrySettings.model_validate({
            "mlflow": {"kind": "none"}, "consumer_account_ids": ["222222222222"],
        }), RegistryContext(account_id=ACCOUNT, model_groups=["churn"], kms_key_arn=key.arn,
                            governance=Governance(TAGS, protect=True)))
        RetrainingPipeline("churn-retraining", RetrainingSettings(training_image=TRAINING_IMAGE), RetrainingContext(
            model_name="churn", pipeline_name="prod-churn-retraining",
            input_s3_uri="s3://ml-input/datasets/churn/", output_s3_uri="s3://ml-output/models/churn/",
            # its processing jobs in the private subnets (sagemaker-processing-steps-in-vpc), in the training group
            placement=Placement(VPC, SUBNETS, ["sg-0123456789abcdef0"]),
            kms_key_arn=key.arn, governance=Governance(TAGS, BOUNDARY, protect=True)))
        BatchTransform("churn-scoring", BatchTransformSettings.model_validate({
            "schedule": "cron(0 2 * * ? *)", "input_prefix": "scoring/churn/", "output_prefix": "churn-scoring/",
            "monitoring": {"baseline": {"statistics_s3_uri": STATISTICS, "constraints_s3_uri": CONSTRAINTS}},
        }), BatchTransformContext(
            pipeline_name="prod-churn-scoring", artifact=ModelArtifact(PREFIX, compressed=False), image_uri=IMAGE,
            input_bucket=capture, output_bucket=capture, placement=Placement(VPC, SUBNETS),
            alerts_topic_arn=monitor.topic_arn, governance=Governance(TAGS, BOUNDARY, protect=True)))
    return run_components(program)


def _capture(**extra) -> dict:
    return {"enable_capture": True, "initial_sampling_percentage": 100, "destination_s3_uri": "s3://capture/churn",
            "capture_options": [{"capture_mode": "Input"}], **extra}


@functools.cache
def bad_plan() -> Plan:
    """Raw SageMaker resources, each with the setting a rule forbids."""
    def program() -> None:
        role = f"arn:aws:iam::{ACCOUNT}:role/shared-role"
        model = aws.sagemaker.Model("bare-model", execution_role_arn=role, tags=TAGS,
                                    primary_container={"image": IMAGE, "model_data_url": "s3://m/model.tar.gz"})
        variants = [{"variant_name": v, "model_name": model.name, "instance_type": "ml.m5.large",
                     "initial_instance_count": 1} for v in ("primary", "shadow")]
        config = aws.sagemaker.EndpointConfiguration("bare-config", production_variants=variants, tags=TAGS,
                                                     data_capture_config=_capture())
        aws.sagemaker.EndpointConfiguration("silent-config", production_variants=[{
            "variant_name": "primary", "model_name": model.name, "instance_type": "ml.c5.large",
            "initial_instance_count": 2}], kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k", tags=TAGS)
        aws.sagemaker.Endpoint("bare-endpoint", name="bare", endpoint_config_name=config.name, tags=TAGS)
        aws.appautoscaling.Target("bare-scaling", service_namespace="sagemaker",
                                  resource_id="endpoint/bare/variant/primary", min_capacity=1, max_capacity=2,
                                  scalable_dimension="sagemaker:variant:DesiredInstanceCount", tags=TAGS)
        aws.sagemaker.Pipeline("shared-pipeline", pipeline_name="shared", pipeline_display_name="shared",
                               role_arn=role, pipeline_definition=json.dumps({"Version": "2020-12-01", "Steps": []}),
                               tags=TAGS)
        scoring_role = f"arn:aws:iam::{ACCOUNT}:role/scoring-role"
        aws.sagemaker.Pipeline("bare-scoring", pipeline_name="bare-scoring", pipeline_display_name="bare-scoring",
                               role_arn=scoring_role, tags=TAGS,
                               pipeline_definition=model.name.apply(lambda name: transforming(name, {
                                   "TransformOutput": {"S3OutputPath": "s3://scores/bare/"},
                                   "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
                                   "DataCaptureConfig": {"DestinationS3Uri": "s3://scores/capture"}})))
        key = "arn:aws:kms:eu-west-1:123456789012:key/k"
        aws.sagemaker.Pipeline("external-scoring", pipeline_name="external-scoring",
                               pipeline_display_name="external-scoring", role_arn=scoring_role, tags=TAGS,
                               pipeline_definition=transforming("team-model", {
                                   "TransformOutput": {"S3OutputPath": "s3://scores/team/", "KmsKeyId": key},
                                   # local NVMe storage takes no volume key
                                   "TransformResources": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1}}))
        aws.sagemaker.DataQualityJobDefinition(
            "bare-job", role_arn=role, tags=TAGS,
            data_quality_app_specification={"image_uri": IMAGE},
            data_quality_job_input={"endpoint_input": {"endpoint_name": "bare"}},
            data_quality_job_output_config={"monitoring_outputs": {"s3_output": {"s3_uri": "s3://reports/bare"}}},
            job_resources={"cluster_config": {"instance_count": 1, "instance_type": "ml.t3.medium",
                                              "volume_size_in_gb": 20}})
        aws_native.sagemaker.ModelQualityJobDefinition(
            "bare-quality-job", role_arn=role, tags=[{"key": k, "value": v} for k, v in TAGS.items()],
            model_quality_app_specification={"image_uri": IMAGE, "problem_type": "Regression"},
            model_quality_job_input={"endpoint_input": {"endpoint_name": "bare", "inference_attribute": "0"},
                                     "ground_truth_s3_input": {"s3_uri": "s3://truth/bare/"}},
            model_quality_job_output_config={"monitoring_outputs": [{"s3_output": {"s3_uri": "s3://reports/q"}}]},
            job_resources={"cluster_config": {"instance_count": 1, "instance_type": "ml.m5.large",
                                              "volume_size_in_gb": 20}})
        aws.sagemaker.FeatureGroup(
            "bare-features", feature_group_name="bare", record_identifier_feature_name="id",
            event_time_feature_name="t", role_arn=role, tags=TAGS,
            feature_definitions=[{"feature_name": "id", "feature_type": "String"},
                                 {"feature_name": "t", "feature_type": "Fractional"}],
            online_store_config={"enable_online_store": True},
            offline_store_config={"s3_storage_config": {"s3_uri": "s3://features/bare"}})
        aws.sagemaker.ModelPackageGroupPolicy("public-group-policy", model_package_group_name="churn",
                                              resource_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                                                  "Effect": "Allow", "Principal": {"AWS": "*"},
                                                  "Action": "sagemaker:DescribeModelPackage", "Resource": "*"}]}))
        aws.sagemaker.ModelPackageGroupPolicy("approving-group-policy", model_package_group_name="fraud",
                                              resource_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                                                  "Effect": "Allow",
                                                  "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                                                  "Action": ["sagemaker:Describe*", "sagemaker:Update*"],
                                                  "Resource": "*"}]}))
    return run_components(program)


def transforming(model_name: str, arguments: dict) -> str:
    """A pipeline definition whose one step, inside a condition's branch, transforms with `model_name`."""
    step = {"Name": "Score", "Type": "Transform", "Arguments": {
        "ModelName": model_name, "TransformInput": {"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://inputs/scoring/"}}}, **arguments}}
    return json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "Ready", "Type": "Condition", "Arguments": {
        "Conditions": [], "IfSteps": [step], "ElseSteps": []}}]})


BAD: dict[str, list[tuple[str, str]]] = {
    "sagemaker-endpoint-config-kms": [("bare-config", "provisioned variants without a volume KMS key (kmsKeyArn)")],
    "sagemaker-data-capture-kms": [("bare-config", "data capture without a KMS key (dataCaptureConfig.kmsKeyId)")],
    "sagemaker-data-capture-enabled": [("silent-config", "data capture is off in environment 'prod'")],
    "sagemaker-prod-variant-instances": [("bare-config", "variant 'primary' has 1 instance(s)"),
                                         ("bare-config", "variant 'shadow' has 1 instance(s)")],
    "sagemaker-prod-blue-green-rollback": [
        ("bare-endpoint", "no blue/green update policy (deploymentConfig.blueGreenUpdatePolicy)"),
        ("bare-endpoint", "no rollback alarms (deploymentConfig.autoRollbackConfiguration.alarms)")],
    "sagemaker-instance-type-allowed": [
        ("silent-config", "instance type ml.c5.large is not allowed here (allowed: ml.m5.large, ml.m5.xlarge)"),
        ("bare-scoring", "instance type ml.c5.xlarge is not allowed here (allowed: ml.m5.large, ml.m5.xlarge)"),
        ("external-scoring", "instance type ml.g5.xlarge is not allowed here (allowed: ml.m5.large, ml.m5.xlarge)"),
        ("bare-job", "instance type ml.t3.medium is not allowed here (allowed: ml.m5.large, ml.m5.xlarge)")],
    "sagemaker-batch-transform-output-encrypted": [
        ("bare-scoring", "transform step 'Score' writes its results without a KMS key (TransformOutput.KmsKeyId)"),
        ("bare-scoring", "transform step 'Score' has volumes without a KMS key (TransformResources.VolumeKmsKeyId)"),
        ("bare-scoring", "transform step 'Score' captures its data without a KMS key (DataCaptureConfig.KmsKeyId)")],
    "sagemaker-batch-transform-network-isolation": [
        ("bare-scoring", "pipeline 'bare-scoring' step 'Score' transforms with model {bare_model}, which runs without "
                         "network isolation"),
        ("external-scoring", "pipeline 'external-scoring' step 'Score' transforms with model 'team-model', which this "
                             "stack does not create: its network isolation cannot be checked")],
    "sagemaker-batch-transform-vpc": [
        ("bare-scoring", "pipeline 'bare-scoring' step 'Score' transforms with model {bare_model}, which does not run "
                         "in a VPC"),
        ("external-scoring", "pipeline 'external-scoring' step 'Score' transforms with model 'team-model', which this "
                             "stack does not create: its network cannot be checked")],
    "sagemaker-model-network-isolation": [("bare-model", "model 'bare-model' runs without network isolation")],
    "sagemaker-model-vpc": [("bare-model", "model 'bare-model' does not run in a VPC")],
    "sagemaker-pipeline-role-not-shared": [
        ("shared-pipeline", "pipeline 'shared-pipeline' uses the execution role of model 'bare-model'")],
    "sagemaker-prod-endpoint-autoscaling": [
        ("bare-endpoint", "endpoint 'bare' variant 'primary' may scale down to 1 instance(s)"),
        ("bare-endpoint", "endpoint 'bare' variant 'shadow' has no autoscaling target")],
    # bare-job reads endpoint 'bare', but only a monitoring schedule runs a job
    "sagemaker-prod-endpoint-monitoring": [("bare-endpoint", "endpoint 'bare' has no monitoring schedule")],
    "sagemaker-monitor-vpc": [("bare-job", "the monitoring job does not run in a VPC"),
                              ("bare-quality-job", "the monitoring job does not run in a VPC")],
    "sagemaker-monitor-network-isolation": [("bare-job", "the monitoring job runs without network isolation"),
                                            ("bare-quality-job", "the monitoring job runs without network isolation")],
    "sagemaker-monitoring-output-encrypted": [
        ("bare-job", "monitoring reports are not encrypted (dataQualityJobOutputConfig.kmsKeyId is not set)"),
        ("bare-job", "monitoring volumes are not encrypted (jobResources.clusterConfig.volumeKmsKeyId is not set)"),
        ("bare-quality-job",
         "monitoring reports are not encrypted (modelQualityJobOutputConfig.kmsKeyId is not set)"),
        ("bare-quality-job",
         "monitoring volumes are not encrypted (jobResources.clusterConfig.volumeKmsKeyId is not set)")],
    "sagemaker-feature-group-online-store-encrypted": [("bare-features", "the online store has no KMS key")],
    "sagemaker-feature-group-offline-store-encrypted": [("bare-features", "the offline store has no KMS key")],
    "sagemaker-model-package-group-not-public": [("public-group-policy", "the policy allows Principal '*'")],
    "sagemaker-model-package-group-approval-stays-with-the-registry": [
        ("approving-group-policy", "the policy lets arn:aws:iam::222222222222:root approve or reject versions")],
}


@pytest.mark.parametrize("rule", sorted(BAD))
def test_rule_reports_exactly_the_bad_resources(rule):
    bare_model = repr(bad_plan().get("bare-model").inputs["name"])
    assert findings(bad_plan(), rule, PROD) == [(name, message.replace("{bare_model}", bare_model))
                                                for name, message in BAD[rule]]


@pytest.mark.parametrize("rule", sorted(BAD))
def test_ml_components_comply_with_the_rule(rule):
    plan = good_plan()
    assert plan.by_type("aws:sagemaker/endpoint:Endpoint") and plan.by_type("aws:sagemaker/pipeline:Pipeline")
    assert findings(plan, rule, PROD) == []


def test_the_batch_transform_rules_judge_the_good_plans_transform_step_and_its_model():
    from emlops.guardrails.helpers import pipeline_steps

    plan = good_plan()
    [(step, arguments)] = pipeline_steps(plan.get("churn-scoring-pipeline").inputs, "Transform")
    model = plan.get("churn-scoring-model").inputs
    assert (step, arguments["ModelName"]) == ("Transform", model["name"])
    assert model["enableNetworkIsolation"] is True and model["vpcConfig"]["subnets"] == SUBNETS
    # a definition that is not known yet is no violation
    unknown = run_components(lambda: aws.sagemaker.Pipeline(
        "later", pipeline_name="later", pipeline_display_name="later", role_arn="arn:aws:iam::123456789012:role/r",
        pipeline_definition="[unknown: definition]"))
    assert pipeline_steps(unknown.get("later").inputs, "Transform") == []
    assert [findings(unknown, rule, PROD) for rule in ("sagemaker-batch-transform-output-encrypted",
                                                       "sagemaker-batch-transform-network-isolation",
                                                       "sagemaker-batch-transform-vpc")] == [[], [], []]


def test_every_rule_passes_the_good_ml_plan_and_the_monitor_topic_is_encrypted():
    plan = good_plan()
    assert [t.name for t in plan.by_type("aws:sns/topic:Topic")] == ["churn-monitor-topic"]
    assert {rule: findings(plan, rule, PROD) for rule in RULES} == {rule: [] for rule in RULES}


def test_serverless_endpoints_are_excused_from_volume_key_vpc_and_isolation():
    plan = run_components(lambda: ModelEndpoint(
        "churn", EndpointSettings.model_validate({"serverless": {"memory_mb": 2048}, "network_isolation": False}),
        EndpointContext(ModelArtifact("s3://ml-artifacts/models/churn/model.tar.gz"), IMAGE,
                        governance=Governance(TAGS))))
    assert plan.get("churn-model").inputs["enableNetworkIsolation"] is False
    assert "vpcConfig" not in plan.get("churn-model").inputs and "kmsKeyArn" not in plan.get("churn-config").inputs
    assert {rule: findings(plan, rule, DEV) for rule in RULES} == {rule: [] for rule in RULES}
    # in production, serverless is not enough
    assert findings(plan, "sagemaker-prod-variant-instances", PROD) == [
        ("churn-config", "variant 'serverless' is serverless")]


def test_instances_with_local_storage_take_no_volume_key():
    plan = run_components(lambda: aws.sagemaker.EndpointConfiguration("gpu-config", production_variants=[{
        "variant_name": "primary", "model_name": "m", "instance_type": "ml.g5.xlarge", "initial_instance_count": 2}]))
    assert findings(plan, "sagemaker-endpoint-config-kms", PROD) == []


@pytest.mark.parametrize("rule", ["sagemaker-prod-variant-instances", "sagemaker-prod-blue-green-rollback",
                                  "sagemaker-prod-endpoint-autoscaling", "sagemaker-prod-endpoint-monitoring"])
def test_production_rules_do_not_apply_outside_production(rule):
    assert findings(bad_plan(), rule, DEV) == []


def test_data_capture_may_be_off_in_dev_and_any_instance_type_is_allowed_by_default():
    assert findings(bad_plan(), "sagemaker-data-capture-enabled", DEV) == []
    assert findings(bad_plan(), "sagemaker-instance-type-allowed", Settings(production=True)) == []


def test_unknown_endpoint_names_and_artifacts_are_not_violations():
    plan = run_components(lambda: aws.sagemaker.Endpoint("later", name="[unknown: endpoint name]",
                                                         endpoint_config_name="c"))
    assert findings(plan, "sagemaker-prod-endpoint-monitoring", PROD) == []
    assert findings(plan, "sagemaker-prod-endpoint-autoscaling", PROD) == []


def test_values_unknown_during_a_cli_preview_only_remove_violations(monkeypatch):
    """Under `pulumi preview`, unknown props are pulumi_policy sentinels that raise when read; no rule may fail on
    them (the rules read through helpers.get) and an unknown can only hide a violation, never make one."""
    import dataclasses

    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    import emlops.review.check
    from emlops.review.check import evaluate
    from tests.test_policy_baseline import bad_plan as baseline_bad_plan
    from tests.test_policy_baseline import good_plan as baseline_good_plan

    def unknown(plan: Plan) -> Plan:
        return dataclasses.replace(plan, resources=[
            dataclasses.replace(r, inputs={key: UNKNOWN_STRING_VALUE for key in r.inputs}) for r in plan.resources])

    monkeypatch.setattr(emlops.review.check, "_run", lambda policy, args, report: policy.validate(args, report))
    for plan in (baseline_bad_plan(), bad_plan()):
        known = {(v.rule, v.name) for v in evaluate(plan, PROD)}
        assert {(v.rule, v.name) for v in evaluate(unknown(plan), PROD)} < known
    for plan in (baseline_good_plan(), good_plan()):
        assert evaluate(unknown(plan), PROD) == []
