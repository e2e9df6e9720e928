"""Bias and explainability monitoring (SageMaker Clarify, pulumi-aws-native's job definitions): the settings' rules,
the image, the analysis configurations (checked against the SageMaker SDK's schema), what a ModelMonitor registers,
the requests (botocore), the role, the alarms, the retraining loop, the guardrails, and what prod ships."""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

import pulumi
import pytest

from emlops.catalog.requests import to_api_request, validate_request
from emlops.catalog.resources_sagemaker import MODEL_BIAS_JOB_DEFINITION, MODEL_EXPLAINABILITY_JOB_DEFINITION
from emlops.components.clarify_args import (BiasSettings, ExplainabilitySettings, bias_analysis_config,
                                            clarify_image_uri, explainability_analysis_config)
from emlops.components.monitoring import ModelMonitor
from emlops.components.settings import Governance
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.guardrails import Settings
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, allow, policy_statements, run_components
from tests.test_monitoring import BASELINE, KEY_ARN, context, error_of, settings, settings_error
from tests.test_policy_baseline import findings

BIAS_JOB, EXPLAIN_JOB = MODEL_BIAS_JOB_DEFINITION.token, MODEL_EXPLAINABILITY_JOB_DEFINITION.token
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"
CLARIFY_IMAGE = "131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0"
MODEL = "churn-model-1a2b3c4"
BIAS: dict[str, Any] = {
    "ground_truth_s3_uri": "s3://ml-ground-truth/churn/", "features": ["tenure", "charges", "contract"],
    "label": "churned", "positive_outcome": [1], "probability_attribute": "0", "probability_threshold": 0.5,
    "facets": [{"name": "contract", "values": ["month-to-month"]}], "thresholds": {"DPPL": 0.1, "DI": 0.8},
    "baseline_constraints_s3_uri": "s3://ml-baselines/churn/bias/analysis.json"}
EXPLAINABILITY: dict[str, Any] = {
    "baseline_s3_uri": "s3://ml-baselines/churn/shap-baseline.csv", "features": ["tenure", "charges", "contract"],
    "top_features": ["tenure"], "min_attribution": 0.05}


# -- settings -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("section, message", [
    ({**BIAS, "facets": [{"name": "age"}]}, "bias: facet 'age' is not one of features (tenure, charges, contract)"),
    ({**BIAS, "label": "tenure"}, "bias: label 'tenure' is the ground truth, not a feature of the request"),
    ({**BIAS, "thresholds": {"XYZ": 0.1}}, "bias.thresholds: 'XYZ' is not a post-training bias metric; use DPPL, DI, "
     "DCA, DCR, RD, DAR, DRR, AD, CDDPL, TE, FT"),
    ({**BIAS, "thresholds": {"DI": 0}}, "bias.thresholds: DI is a ratio (1 is fair): its threshold (0.0) must be above 0"),
    ({**BIAS, "probability_threshold": None}, "bias: probability_attribute and probability_threshold go together: "
     "give both or neither"),
    ({**BIAS, "features": ["a b"]}, "bias.features: feature 'a b' must be 1-128 letters, digits, '_', '.' or '-'"),
    ({**BIAS, "facets": []}, "bias.facets: List should have at least 1 item after validation, not 0"),
])
def test_bias_settings_reject_with_one_line(section, message):
    assert settings_error({"baseline": BASELINE, "bias": section}) == message


@pytest.mark.parametrize("section, message", [
    ({**EXPLAINABILITY, "top_features": ["age"]},
     "explainability: top_features age are not among features (tenure, charges, contract)"),
    ({**EXPLAINABILITY, "shadow_instance_type": "ml.m5.huge"},
     "explainability.shadow_instance_type: 'ml.m5.huge' is not a SageMaker hosting instance type; did you mean "
     "'ml.m5.large'?"),
    ({**EXPLAINABILITY, "min_attribution": 0}, "explainability.min_attribution: Input should be greater than 0"),
])
def test_explainability_settings_reject_with_one_line(section, message):
    assert settings_error({"baseline": BASELINE, "explainability": section}) == message


@pytest.mark.parametrize("changes, message", [
    ({"endpoint_name": None, "batch_input_format": "csv"},
     "bias and explainability monitor an endpoint's predictions; a batch transform's inputs are monitored for data "
     "quality only: drop bias and explainability"),
    ({}, "explainability monitoring makes shadow endpoints of the endpoint's model: give model_name"),
])
def test_the_context_is_checked_before_anything_is_created(changes, message):
    section = {"baseline": BASELINE, "bias": BIAS, "explainability": EXPLAINABILITY}
    assert error_of(lambda: ModelMonitor("churn", settings(section), context(**changes))) == message


# -- the image and the analysis configurations ------------------------------------------------------------

def test_clarify_image_is_what_the_sdk_retrieves_for_every_region():
    from sagemaker.core import image_uris

    from emlops.components.clarify_args import _clarify_catalogue

    for region in _clarify_catalogue()["registries"]:
        assert clarify_image_uri(region) == image_uris.retrieve(framework="clarify", region=region), region
    assert clarify_image_uri("eu-west-1") == CLARIFY_IMAGE
    assert error_of(lambda: clarify_image_uri("xx-nowhere-1")).startswith(
        "no SageMaker Clarify image in xx-nowhere-1: Unsupported region: xx-nowhere-1. Supported region(s): ")


def test_the_analysis_configurations_are_what_clarify_reads():
    bias = BiasSettings.model_validate(BIAS)
    explainability = ExplainabilitySettings.model_validate({**EXPLAINABILITY, "probability_attribute": "0"})
    assert bias_analysis_config(bias) == {
        "version": "1.0", "headers": ["tenure", "charges", "contract", "churned"], "label": "churned",
        "label_values_or_threshold": [1], "facet": [{"name_or_index": "contract", "value_or_threshold": ["month-to-month"]}],
        "methods": {"post_training_bias": {"methods": ["DPPL", "DI"]}}, "probability_threshold": 0.5}
    assert explainability_analysis_config(explainability, MODEL) == {
        "version": "1.0", "headers": ["tenure", "charges", "contract"],
        "methods": {"shap": {"baseline": "s3://ml-baselines/churn/shap-baseline.csv", "num_samples": 100,
                             "agg_method": "mean_abs", "use_logit": False, "save_local_shap_values": False}},
        "predictor": {"model_name": MODEL, "instance_type": "ml.m5.xlarge", "initial_instance_count": 1,
                      "endpoint_name_prefix": "sm-clarify", "content_type": "text/csv", "accept_type": "text/csv",
                      "probability": "0"}}
    # the SageMaker SDK's analysis configuration schema accepts both (a monitor's data is its captured traffic, so
    # its configuration names no dataset type; the schema requires one)
    from sagemaker.core.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

    for config in (bias_analysis_config(bias), explainability_analysis_config(explainability, MODEL)):
        ANALYSIS_CONFIG_SCHEMA_V1_0.validate({"dataset_type": "text/csv", **copy.deepcopy(config)})


# -- what a monitor registers --------------------------------------------------------------------------------

@functools.cache
def clarify_plan() -> Plan:
    def program() -> None:
        reports = SecureBucket("reports", SecureBucketArgs(kms_key_arn=KEY_ARN))
        monitor = ModelMonitor("churn", settings({"baseline": BASELINE, "bias": BIAS, "explainability": EXPLAINABILITY}),
                               context(reports_bucket=reports, production=True, model_name=MODEL,
                                       governance=Governance({"team": "churn"})))
        pulumi.export("clarify", [m.schedule.arn for m in monitor.clarify])
    return run_components(program)


def test_each_clarify_monitor_is_a_configuration_a_job_a_schedule_alarms_and_outcome_rules():
    plan = clarify_plan()
    names = [(r.type, r.name) for r in plan.children(plan.get("churn", "emlops:index:ModelMonitor").urn)]
    tail = names[names.index((OBJECT, "churn-bias-config")):]
    assert tail == [
        (OBJECT, "churn-bias-config"), (BIAS_JOB, "churn-bias-job"), (SCHEDULE, "churn-bias"),
        (ALARM, "churn-bias-contract-dppl"), (ALARM, "churn-bias-contract-di"),
        (RULE, "churn-bias-failed"), ("aws:cloudwatch/eventTarget:EventTarget", "churn-bias-failed-notify"),
        (RULE, "churn-bias-violations"), ("aws:cloudwatch/eventTarget:EventTarget", "churn-bias-violations-notify"),
        (OBJECT, "churn-explainability-config"), (EXPLAIN_JOB, "churn-explainability-job"),
        (SCHEDULE, "churn-explainability"), (ALARM, "churn-explainability-tenure"),
        (RULE, "churn-explainability-failed"),
        ("aws:cloudwatch/eventTarget:EventTarget", "churn-explainability-failed-notify"),
        (RULE, "churn-explainability-violations"),
        ("aws:cloudwatch/eventTarget:EventTarget", "churn-explainability-violations-notify")]
    assert [s.inputs["monitoringScheduleConfig"]["monitoringType"] for s in plan.by_type(SCHEDULE)] == [
        "DataQuality", "ModelBias", "ModelExplainability"]
    assert plan.outputs["clarify"] == [
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{s.inputs['name']}"
        for s in plan.by_type(SCHEDULE)[1:]]


def test_the_bias_job_reads_captured_predictions_and_ground_truth_in_isolation():
    plan = clarify_plan()
    job = plan.get("churn-bias-job", BIAS_JOB)
    config = plan.get("churn-bias-config", OBJECT)
    assert config.inputs["key"] == "monitoring/churn/clarify/bias-analysis.json"
    assert (config.inputs["serverSideEncryption"], config.inputs["kmsKeyId"], config.inputs["contentType"]) == (
        "aws:kms", KEY_ARN, "application/json")
    assert json.loads(config.inputs["content"]) == bias_analysis_config(BiasSettings.model_validate(BIAS))
    bucket = config.inputs["bucket"]
    assert job.inputs["modelBiasAppSpecification"] == {
        "imageUri": CLARIFY_IMAGE, "configUri": f"s3://{bucket}/monitoring/churn/clarify/bias-analysis.json",
        "environment": {"publish_cloudwatch_metrics": "Enabled"}}
    assert job.inputs["modelBiasJobInput"] == {
        "endpointInput": {"endpointName": "churn", "localPath": "/opt/ml/processing/input/endpoint",
                          "s3InputMode": "File", "s3DataDistributionType": "FullyReplicated",
                          "probabilityAttribute": "0", "probabilityThresholdAttribute": 0.5},
        "groundTruthS3Input": {"s3Uri": "s3://ml-ground-truth/churn/"}}
    assert job.inputs["modelBiasBaselineConfig"] == {
        "constraintsResource": {"s3Uri": "s3://ml-baselines/churn/bias/analysis.json"}}
    assert job.inputs["modelBiasJobOutputConfig"]["monitoringOutputs"][0]["s3Output"]["s3Uri"] == (
        f"s3://{bucket}/monitoring/churn/bias")
    assert job.inputs["networkConfig"]["enableNetworkIsolation"] is True
    assert validate_request(to_api_request(job.type, job.inputs)) == []


def test_the_explainability_job_runs_a_shadow_endpoint_of_the_model_so_without_isolation():
    plan = clarify_plan()
    job = plan.get("churn-explainability-job", EXPLAIN_JOB)
    config = json.loads(plan.get("churn-explainability-config", OBJECT).inputs["content"])
    assert config["predictor"]["model_name"] == MODEL
    assert job.inputs["modelExplainabilityJobInput"] == {"endpointInput": {
        "endpointName": "churn", "localPath": "/opt/ml/processing/input/endpoint", "s3InputMode": "File",
        "s3DataDistributionType": "FullyReplicated"}}
    assert "modelExplainabilityBaselineConfig" not in job.inputs
    assert job.inputs["networkConfig"]["enableNetworkIsolation"] is False
    assert job.inputs["networkConfig"]["vpcConfig"]["subnets"] == ["subnet-0123456789abcdef0",
                                                                   "subnet-0123456789abcdef1"]
    assert validate_request(to_api_request(job.type, job.inputs)) == []
    # Cloud Control's answer, as for the model-quality job definition
    name = job.inputs["jobDefinitionName"]
    assert name.startswith("churn-explainability-job-") and len(name) == len("churn-explainability-job-") + 7


def test_the_request_check_refuses_what_sagemaker_would():
    job = clarify_plan().get("churn-bias-job", BIAS_JOB)
    bad = copy.deepcopy(job.inputs)
    del bad["modelBiasAppSpecification"]["configUri"]
    del bad["modelBiasJobInput"]["groundTruthS3Input"]
    assert [p.split(": ", 1)[1] for p in validate_request(to_api_request(job.type, bad))] == [
        "ModelBiasAppSpecification.ConfigUri: missing required member",
        "ModelBiasJobInput.GroundTruthS3Input: missing required member"]


def test_alarms_watch_each_facets_metrics_and_each_top_features_attribution():
    plan = clarify_plan()
    schedule = plan.get("churn-bias", SCHEDULE).inputs["name"]
    dppl, di = plan.get("churn-bias-contract-dppl", ALARM), plan.get("churn-bias-contract-di", ALARM)
    schema = ('SCHEMA("aws/sagemaker/Endpoints/bias-metrics", BiasStage, Endpoint, Facet, FacetValue, Label, '
              'LabelValue, MonitoringSchedule)')
    where = f"WHERE Endpoint = 'churn' AND MonitoringSchedule = '{schedule}' AND Facet = 'contract'"
    assert dppl.inputs["metricQueries"] == [{"id": "bias", "expression": f"SELECT MAX(bias_metric_DPPL) FROM {schema} "
                                             f"{where}", "period": 3600, "returnData": True}]
    assert (dppl.inputs["comparisonOperator"], dppl.inputs["threshold"]) == ("GreaterThanThreshold", 0.1)
    assert di.inputs["metricQueries"][0]["expression"] == f"SELECT MIN(bias_metric_DI) FROM {schema} {where}"
    assert (di.inputs["comparisonOperator"], di.inputs["threshold"]) == ("LessThanThreshold", 0.8)
    shap = plan.get("churn-explainability-tenure", ALARM)
    assert {k: shap.inputs[k] for k in ("namespace", "metricName", "dimensions", "statistic", "comparisonOperator",
                                        "threshold")} == {
        "namespace": "aws/sagemaker/Endpoints/explainability-metrics", "metricName": "feature_tenure",
        "dimensions": {"Endpoint": "churn", "MonitoringSchedule": plan.get("churn-explainability", SCHEDULE).inputs["name"],
                       "ExplainabilityMethod": "KernelShap", "Label": "label0", "ValueType": "GlobalShapValues"},
        "statistic": "Minimum", "comparisonOperator": "LessThanThreshold", "threshold": 0.05}


def test_the_role_reads_the_configurations_baselines_and_ground_truth_and_runs_only_clarify_shadow_endpoints():
    plan = clarify_plan()
    bucket = plan.get("churn-bias-config", OBJECT).inputs["bucket"]
    statements = {s["Sid"]: {k: v for k, v in s.items() if k != "Sid"}
                  for s in policy_statements(plan, "churn-execution-permissions")}
    sagemaker = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert statements["ReadClarifyConfig"] == allow(["s3:GetObject"],
                                                    [f"arn:aws:s3:::{bucket}/monitoring/churn/clarify/*"])
    assert statements["ReadClarifyBaselines"] == allow(["s3:GetObject"], [
        "arn:aws:s3:::ml-baselines/churn/bias/analysis.json", "arn:aws:s3:::ml-baselines/churn/shap-baseline.csv"])
    assert statements["ReadBiasGroundTruth"] == allow(["s3:ListBucket"], ["arn:aws:s3:::ml-ground-truth"],
                                                      {"StringLike": {"s3:prefix": ["churn/*"]}})
    assert statements["ReadBiasGroundTruth2"] == allow(["s3:GetObject"], ["arn:aws:s3:::ml-ground-truth/churn/*"])
    assert statements["ShadowEndpoint"] == allow(["sagemaker:DescribeModel"], [f"{sagemaker}:model/{MODEL}"])
    assert statements["ShadowEndpoint2"] == allow(["sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig"],
                                                  [f"{sagemaker}:endpoint-config/sm-clarify*"])
    assert statements["ShadowEndpoint3"] == allow(
        ["sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
         "sagemaker:InvokeEndpoint"], [f"{sagemaker}:endpoint/sm-clarify*"])
    assert statements["Metrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": [
        "aws/sagemaker/Endpoints/data-metrics", "aws/sagemaker/Endpoints/bias-metrics",
        "aws/sagemaker/Endpoints/explainability-metrics"]}}
    pulled = [r for s in policy_statements(plan, "churn-execution-permissions") if s["Sid"].startswith("PullImage")
              for r in s["Resource"] if "repository/" in r]
    assert pulled == ["arn:aws:ecr:eu-west-1:468650794304:repository/sagemaker-model-monitor-analyzer",
                      "arn:aws:ecr:eu-west-1:131013547314:repository/sagemaker-clarify-processing"]


def test_the_monitoring_guardrails_hold_the_clarify_jobs_and_except_only_explainabilitys_isolation():
    plan = clarify_plan()
    prod = Settings(production=True, environment="prod")
    for rule in ("sagemaker-monitor-vpc", "sagemaker-monitoring-output-encrypted",
                 "sagemaker-monitor-network-isolation"):
        assert findings(plan, rule, prod) == [], rule
    bare = copy.deepcopy(plan)
    job = bare.get("churn-bias-job", BIAS_JOB)
    job.inputs["networkConfig"] = {"enableNetworkIsolation": False}
    del job.inputs["modelBiasJobOutputConfig"]["kmsKeyId"]
    assert findings(bare, "sagemaker-monitor-vpc", prod) == [("churn-bias-job", "the monitoring job does not run in a VPC")]
    assert findings(bare, "sagemaker-monitor-network-isolation", prod) == [
        ("churn-bias-job", "the monitoring job runs without network isolation")]
    assert findings(bare, "sagemaker-monitoring-output-encrypted", prod) == [
        ("churn-bias-job", "monitoring reports are not encrypted (modelBiasJobOutputConfig.kmsKeyId is not set)")]


# -- what prod ships ------------------------------------------------------------------------------------------

def test_prod_monitors_churn_for_bias_on_its_declared_facet_and_fraud_for_explainability(shipped_plan):
    plan = shipped_plan("prod")
    (bias,) = plan.by_type(BIAS_JOB)
    (explainability,) = plan.by_type(EXPLAIN_JOB)
    assert (bias.name, explainability.name) == ("prod-churn-monitor-bias-job", "prod-fraud-monitor-explainability-job")
    config = json.loads(plan.get("prod-churn-monitor-bias-config", OBJECT).inputs["content"])
    assert config["facet"] == [{"name_or_index": "contract_type", "value_or_threshold": ["month-to-month"]}]
    shap = json.loads(plan.get("prod-fraud-monitor-explainability-config", OBJECT).inputs["content"])
    model = plan.get("prod-fraud-model", "aws:sagemaker/model:Model").inputs["name"]
    assert shap["predictor"]["model_name"] == model
    assert sorted(a.name for a in plan.by_type(ALARM) if "-bias-" in a.name or "-explainability-" in a.name) == [
        "prod-churn-monitor-bias-contract-type-di", "prod-churn-monitor-bias-contract-type-dppl",
        "prod-fraud-monitor-explainability-amount", "prod-fraud-monitor-explainability-merchant-risk"]
    # their violations start retraining, with the other monitors'
    for model_name, kind in (("churn", "bias"), ("fraud", "explainability")):
        pattern = json.loads(plan.get(f"prod-{model_name}-retraining-on-violations", RULE).inputs["eventPattern"])
        schedule = plan.get(f"prod-{model_name}-monitor-{kind}", SCHEDULE).inputs["name"]
        assert f"arn:aws:sagemaker:eu-west-1:333333333333:monitoring-schedule/{schedule}" in \
            pattern["detail"]["MonitoringScheduleArn"]
    for job in (bias, explainability):
        assert validate_request(to_api_request(job.type, job.inputs)) == []


@pytest.mark.parametrize("entry, kind", [(MODEL_BIAS_JOB_DEFINITION, "model-bias"),
                                         (MODEL_EXPLAINABILITY_JOB_DEFINITION, "model-explainability")])
def test_the_job_definitions_catalogue_entries_answer_as_cloud_control_does(entry, kind):
    from emlops.catalog.resource_type import ALL
    from emlops.offline.mocks import AwsIdentity

    where = AwsIdentity(ACCOUNT, REGION)
    state = {"jobDefinitionName": "Churn-Bias-Job-1a2b3c4"}
    assert entry.physical_id_of(state, "urn:j", where) == "pending"  # Cloud Control's id is the ARN, known next
    assert entry.computed_outputs("pending", state, where) == {
        "creationTime": "2026-01-01T00:00:00Z",
        "jobDefinitionArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{kind}-job-definition/churn-bias-job-1a2b3c4"}
    assert (entry.naming.auto, entry.naming.max_length, entry.replace_on_change) == (True, 63, (ALL,))


def test_the_analysis_configuration_object_is_s3s():
    from emlops.catalog.resources_storage import BUCKET_OBJECT
    from emlops.offline.mocks import AwsIdentity

    where = AwsIdentity(ACCOUNT, REGION)
    state = {"bucket": "reports", "key": "monitoring/churn/clarify/bias-analysis.json"}
    assert BUCKET_OBJECT.physical_id_of(state, "urn:o", where) == "monitoring/churn/clarify/bias-analysis.json"
    outputs = BUCKET_OBJECT.computed_outputs(state["key"], state, where)
    assert outputs["arn"] == "arn:aws:s3:::reports/monitoring/churn/clarify/bias-analysis.json"
    assert re.fullmatch(r"[0-9a-f]{32}", outputs["etag"]) and re.fullmatch(r"[0-9a-f]{32}", outputs["versionId"])
    # a new content is a new version of the same object; another key another object
    assert BUCKET_OBJECT.replaces("key") and not BUCKET_OBJECT.replaces("content")
