"""What the shipped stacks get from the data, training and registry parts, and their config errors."""

from __future__ import annotations

import copy
import json

import pytest

from emlops.catalog.kubernetes import validate_plan_objects
from emlops.offline.preview import PreviewError, preview_stack
from emlops.program.config import ConfigError
from emlops.program.platform import parse_platform_config
from tests.conftest import ROOT

SOURCE = "stacks/Pulumi.prod.yaml"
AT = f"{SOURCE}: emlops:platform"


def test_prod_feature_group_encrypts_both_stores_with_the_data_key(shipped_plan):
    plan = shipped_plan("prod")
    group, labels = plan.by_type("aws:sagemaker/featureGroup:FeatureGroup")
    inputs, key = group.inputs, plan.outputs["dataKeyArn"]
    # churn's examples: offline only (retraining reads them point in time through Athena)
    assert labels.inputs["featureGroupName"] == "prod-features-churn-labels"
    assert "onlineStoreConfig" not in labels.inputs and labels.inputs["offlineStoreConfig"]["tableFormat"] == "Iceberg"
    assert inputs["featureGroupName"] == "prod-features-customers"
    assert inputs["onlineStoreConfig"]["enableOnlineStore"] is True
    assert inputs["onlineStoreConfig"]["securityConfig"] == {"kmsKeyId": key}
    assert inputs["onlineStoreConfig"]["ttlDuration"] == {"unit": "Days", "value": 90}
    offline = inputs["offlineStoreConfig"]
    assert offline["s3StorageConfig"]["kmsKeyId"] == key
    assert offline["s3StorageConfig"]["s3Uri"] == f"s3://{plan.outputs['datasetsBucket']}/feature-store/prod-features-customers"
    assert offline["tableFormat"] == "Iceberg"
    assert group.protect and group.retain_on_delete


GROUP_TYPE = "aws:sagemaker/modelPackageGroup:ModelPackageGroup"
GROUP_POLICY_TYPE = "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy"


def test_the_package_groups_live_in_the_shared_registry_and_only_its_policies_name_other_accounts(shipped_plan):
    shared = shipped_plan("shared")
    assert {g.inputs["modelPackageGroupName"] for g in shared.by_type(GROUP_TYPE)} == {"churn", "fraud",
                                                                                      "doc-scoring"}
    for policy in shared.by_type(GROUP_POLICY_TYPE):
        principals = {p for s in json.loads(policy.inputs["resourcePolicy"])["Statement"] for p in s["Principal"]["AWS"]}
        assert principals == {"arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root"}
    # staging and prod hold no groups (they use the shared ones); dev's experiments stay in dev
    assert shipped_plan("prod").by_type(GROUP_TYPE) == shipped_plan("staging").by_type(GROUP_TYPE) == []
    dev = shipped_plan("dev")
    assert {g.inputs["modelPackageGroupName"] for g in dev.by_type(GROUP_TYPE)} == {"churn", "fraud", "assistant"}
    assert dev.by_type(GROUP_POLICY_TYPE) == []


def test_the_shared_registry_runs_a_managed_mlflow_server_and_prod_a_hardened_training_repository(shipped_plan):
    shared = shipped_plan("shared")
    [server] = shared.by_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer")
    assert (server.inputs["trackingServerSize"], server.inputs["weeklyMaintenanceWindowStart"]) == ("Small", "Sun:03:00")
    assert server.inputs["artifactStoreUri"] == f"s3://{shared.outputs['artifactsBucket']}/mlflow/"
    assert server.protect and server.retain_on_delete
    plan = shipped_plan("prod")
    assert plan.by_type("aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer") == []
    [repository] = plan.by_type("aws:ecr/repository:Repository")
    assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert repository.inputs["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": plan.outputs["dataKeyArn"]}]
    assert repository.protect and repository.retain_on_delete


def test_staging_runs_an_eks_gpu_cluster_whose_kubernetes_objects_are_valid_for_its_version(shipped_plan):
    plan = shipped_plan("staging")
    [cluster] = plan.by_type("aws:eks/cluster:Cluster")
    assert cluster.inputs["version"] == "1.33"
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    namespaces = sorted(n.inputs["metadata"]["name"] for n in plan.by_type("kubernetes:core/v1:Namespace"))
    assert namespaces == ["team-nlp", "team-vision"]
    assert len(plan.by_type("kubernetes:apps/v1:DaemonSet")) == 1
    assert validate_plan_objects(plan, "1.33") == []
    [k8s] = plan.by_type("pulumi:providers:kubernetes")
    assert all(r.provider == k8s.urn for r in plan.resources if r.type.startswith("kubernetes:"))


def valid_prod() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["emlops:platform"]


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, SOURCE)
    return str(caught.value)


def test_a_stack_cannot_list_its_own_account_as_a_consumer_or_publisher():
    raw = valid_prod()
    raw["registry"] = {"consumer_account_ids": ["333333333333"]}
    assert error_of(raw) == (f"{AT}.registry.consumer_account_ids: '333333333333' is this stack's own account; "
                             "list only the accounts that consume it")
    raw["registry"] = {"publisher_account_ids": ["222222222222", "333333333333"]}
    assert error_of(raw) == (f"{AT}.registry.publisher_account_ids: '333333333333' is this stack's own account; "
                             "list only the accounts that publish into it")


def test_self_hosted_mlflow_needs_the_eks_training_cluster():
    raw = valid_prod()
    raw["registry"]["mlflow"] = {"kind": "kubernetes"}
    assert error_of(raw) == f"{AT}.registry.mlflow.kind: kubernetes needs the EKS training cluster (training.kind: eks)"


def test_training_needs_a_network():
    raw = copy.deepcopy(valid_prod())
    del raw["network"], raw["models"], raw["batch_transforms"]
    assert error_of(raw) == (f"{AT}.training: runs in private subnets; add network.managed (or network.vpc_id "
                             "and network.private_subnet_ids)")


def test_duplicate_feature_groups_are_one_line():
    raw = valid_prod()
    raw["feature_groups"] = raw["feature_groups"] * 2
    assert error_of(raw).startswith(f"{AT}.feature_groups: ")


def test_self_hosted_mlflow_reads_its_database_uri_from_a_secret_config_key(project_copy, monkeypatch):
    stack = project_copy / "stacks" / "Pulumi.staging.yaml"
    text = stack.read_text()
    assert text.count("        kind: none\n") == 1
    stack.write_text(text.replace("        kind: none\n", "        kind: kubernetes\n"))
    with pytest.raises(PreviewError) as caught:
        preview_stack("staging", start=project_copy)
    assert str(caught.value) == (
        "stacks/Pulumi.staging.yaml: emlops:mlflowBackendStoreUri: field required when registry.mlflow.kind is "
        "kubernetes; set it with `pulumi config set --secret emlops:mlflowBackendStoreUri postgresql://...`")

    stack.write_text(stack.read_text() + "  emlops:mlflowBackendStoreUri:\n    secure: v1:AAAAbm90LWEtcmVhbC1zZWNyZXQ=\n")
    plan = preview_stack("staging", start=project_copy).plan
    [secret] = plan.by_type("kubernetes:core/v1:Secret")
    assert "[secret]" in json.dumps(secret.inputs)
    [deployment] = plan.by_type("kubernetes:apps/v1:Deployment")
    assert deployment.inputs["metadata"]["namespace"] == "mlflow"
    assert validate_plan_objects(plan, "1.33") == []


def test_stack_outputs_say_where_to_train_and_register(shipped_plan):
    prod = shipped_plan("prod").outputs
    assert prod["featureGroups"] == {"customers": "prod-features-customers",
                                     "churn-labels": "prod-features-churn-labels"}
    assert set(prod["training"]) == {"roleArn", "repositoryUrl"}
    assert "registry" not in prod  # prod registers into the shared registry
    assert shipped_plan("shared").outputs["registry"] == {
        "packageGroups": {"churn": "churn", "fraud": "fraud", "doc-scoring": "doc-scoring"},
        "packageGroupArns": {group: f"arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{group}"
                             for group in ("churn", "fraud", "doc-scoring")},
        "repositoryUrls": {repository: f"444444444444.dkr.ecr.eu-west-1.amazonaws.com/{repository}"
                           for repository in ("churn-training", "fraud-training", "doc-scoring-training")},
        "trackingUri": "arn:aws:sagemaker:eu-west-1:444444444444:mlflow-tracking-server/shared-registry-mlflow",
    }
    staging = shipped_plan("staging").outputs
    assert set(staging["training"]) == {"clusterName", "clusterEndpoint"}
    assert staging["training"]["clusterName"] == "staging-training"


def test_every_prod_endpoint_is_monitored_with_alarms_on_one_encrypted_topic(shipped_plan):
    plan = shipped_plan("prod")
    endpoints = [e.inputs["name"] for e in plan.by_type("aws:sagemaker/endpoint:Endpoint")]
    # (the nightly batch transform's inputs are monitored each morning: test_batch_transform_platform.py)
    schedules = [s for s in plan.by_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule")
                 if not s.name.startswith("prod-churn-nightly-")]
    # data quality for every endpoint; model quality and bias for churn, whose ground truth arrives daily;
    # explainability for fraud
    assert [(s.name, s.inputs["monitoringScheduleConfig"]["monitoringType"]) for s in schedules] == [
        ("prod-churn-monitor-schedule", "DataQuality"), ("prod-churn-monitor-quality", "ModelQuality"),
        ("prod-churn-monitor-bias", "ModelBias"), ("prod-fraud-monitor-schedule", "DataQuality"),
        ("prod-fraud-monitor-explainability", "ModelExplainability"),
        ("prod-doc-scoring-monitor-schedule", "DataQuality")]
    assert len(endpoints) == 3
    for schedule in schedules:
        config = schedule.inputs["monitoringScheduleConfig"]
        assert config["scheduleConfig"]["scheduleExpression"] == "cron(0 * ? * * *)"  # hourly in production
    # the alerts topic; doc-scoring announces its responses on a topic of its own
    topic, responses = plan.by_type("aws:sns/topic:Topic")
    assert responses.name == "prod-doc-scoring-async-success-topic"
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:eu-west-1:333333333333:key/")
    topic_arn = f"arn:aws:sns:eu-west-1:333333333333:{topic.inputs['name']}"
    alarms = [a for a in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "-monitor-" in a.name]
    # the alarm that brings doc-scoring back from zero instances starts its scaling policy instead
    from_zero = plan.get("prod-doc-scoring-primary-scale-out-from-zero").inputs
    assert from_zero["alarmActions"][0].startswith("arn:aws:autoscaling:eu-west-1:333333333333:scalingPolicy:")
    assert alarms and all(a.inputs["alarmActions"] == [topic_arn] for a in alarms)
    # the endpoints' rollback alarms notify the same topic when they fire and when they recover
    rollback = [a for a in plan.by_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                if "-monitor-" not in a.name and "from-zero" not in a.name]
    assert sorted(a.name for a in rollback) == [
        "prod-churn-primary-5xx", "prod-churn-primary-latency", "prod-doc-scoring-primary-5xx",
        "prod-doc-scoring-primary-latency", "prod-fraud-primary-5xx", "prod-fraud-primary-latency"]
    assert all(a.inputs["alarmActions"] == a.inputs["okActions"] == [topic_arn] for a in rollback)
    assert topic.name == "prod-alerts-topic" and topic.parent == plan.get("prod", "emlops:index:MlPlatform").urn
    targets = [t for t in plan.by_type("aws:cloudwatch/eventTarget:EventTarget") if "-monitor-" in t.name]
    # six schedules of the endpoints and the batch transform's one, each with its failures and violations
    assert len(targets) == 14 and all(t.inputs["arn"] == topic_arn for t in targets)
    [subscription] = plan.by_type("aws:sns/topicSubscription:TopicSubscription")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "ml-oncall@example.com")
    image = plan.get("prod-churn-monitor-job").inputs["dataQualityAppSpecification"]["imageUri"]
    assert image == "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer"


def test_a_production_monitor_without_a_baseline_is_a_config_error():
    raw = valid_prod()
    del raw["models"][0]["monitoring"]["baseline"]
    # a model served from a package may use the package's drift-check baselines; one from S3 may not
    raw["models"][0]["source"] = {"s3_uri": "s3://acme-ml-prod-models/churn/model.tar.gz"}
    raw["models"][0]["image"] = {"uri": "333333333333.dkr.ecr.eu-west-1.amazonaws.com/churn-serving:1.4.0"}
    assert error_of(raw) == (f"{AT}.models[0].monitoring.baseline: production monitors need a baseline: add "
                             "statistics_s3_uri and constraints_s3_uri from a baselining job (models served from "
                             "a model package may use the package's drift-check baselines instead)")


def test_every_prod_endpoint_has_a_retraining_pipeline_started_by_its_violations(shipped_plan):
    plan = shipped_plan("prod")
    endpoints = sorted(e.inputs["name"] for e in plan.by_type("aws:sagemaker/endpoint:Endpoint"))
    pipelines = sorted(p.inputs["pipelineName"] for p in plan.by_type("aws:sagemaker/pipeline:Pipeline")
                       if p.name.endswith("-retraining-pipeline"))
    assert pipelines == [f"{endpoint}-retraining" for endpoint in endpoints] == [
        "prod-churn-retraining", "prod-doc-scoring-retraining", "prod-fraud-retraining"]
    for endpoint in endpoints:
        target = plan.get(f"{endpoint}-retraining-on-violations-start")
        assert target.inputs["arn"] == f"arn:aws:sagemaker:eu-west-1:333333333333:pipeline/{endpoint}-retraining"
        # served from the shared package group the pipeline registers into
        model = endpoint.removeprefix("prod-")
        assert plan.get(f"{endpoint}-model").inputs["primaryContainer"]["modelPackageName"] == (
            f"[unknown: arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{model} (latest Approved)]")


def test_prod_fraud_retrains_on_violations_through_an_sdk_built_pipeline(shipped_plan):
    plan = shipped_plan("prod")
    [pipeline] = [p for p in plan.by_type("aws:sagemaker/pipeline:Pipeline")
                  if p.inputs["pipelineName"] == "prod-fraud-retraining"]
    assert pipeline.inputs["pipelineName"] == "prod-fraud-retraining"  # what `emlops retrain prod fraud` starts
    steps = [s["Name"] for s in json.loads(pipeline.inputs["pipelineDefinition"])["Steps"]]
    assert steps[:4] == ["Prepare", "Train", "Evaluate", "CheckMetric"]
    schedule, explainability = [s for s in plan.by_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule")
                                if s.name.startswith("prod-fraud-monitor-")]
    violations = plan.get("prod-fraud-retraining-on-violations")
    # drift, and attributions that drifted from the SHAP baseline's
    assert json.loads(violations.inputs["eventPattern"])["detail"]["MonitoringScheduleArn"] == [
        f"arn:aws:sagemaker:eu-west-1:333333333333:monitoring-schedule/{s.inputs['name']}"
        for s in (schedule, explainability)]
    target = plan.get("prod-fraud-retraining-on-violations-start")
    assert target.inputs["arn"] == "arn:aws:sagemaker:eu-west-1:333333333333:pipeline/prod-fraud-retraining"
    # approvals happen in the shared registry's account, whose EventBridge announces them
    assert [r.name for r in plan.by_type("aws:cloudwatch/eventRule:EventRule") if "approved" in r.name] == []
    shared = shipped_plan("shared")
    approved = json.loads(shared.get("shared-registry-fraud-approved").inputs["eventPattern"])
    assert approved["detail"] == {"ModelPackageGroupName": ["fraud"], "ModelApprovalStatus": ["Approved"]}
    topic = shared.get("shared-alerts-topic").inputs["name"]
    assert shared.get("shared-registry-fraud-approved-notify").inputs["arn"] == (
        f"arn:aws:sns:eu-west-1:444444444444:{topic}")
    # ... and fraud is served from that group's latest approved package
    assert plan.get("prod-fraud-model").inputs["primaryContainer"]["modelPackageName"].startswith(
        "[unknown: arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/fraud")


def test_retraining_needs_sagemaker_training_and_a_pinned_image():
    raw = valid_prod()
    del raw["models"][1]["retraining"]["training_image"]
    assert error_of(raw) == (f"{AT}.models[1].retraining.training_image: field required when retraining is enabled "
                             "(an image of the training repository with an immutable tag)")
    raw = valid_prod()
    raw["training"] = {"kind": "eks", "eks": {"admin_role_arns": ["arn:aws:iam::333333333333:role/admin"]}}
    assert error_of(raw) == (f"{AT}.models[0].retraining.enabled: retraining runs SageMaker jobs in the training "
                             "network and buckets; needs training.kind: sagemaker")


def test_prod_churn_retrains_when_its_model_quality_drops_too(shipped_plan):
    """churn has ground truth: violations of its model-quality schedule start retraining like drift does."""
    plan = shipped_plan("prod")
    schedules = {s.name: f"arn:aws:sagemaker:eu-west-1:333333333333:monitoring-schedule/{s.inputs['name']}"
                 for s in plan.by_type("aws:sagemaker/monitoringSchedule:MonitoringSchedule")}
    churn = json.loads(plan.get("prod-churn-retraining-on-violations").inputs["eventPattern"])["detail"]
    assert churn["MonitoringScheduleArn"] == [schedules["prod-churn-monitor-schedule"],
                                              schedules["prod-churn-monitor-quality"],
                                              schedules["prod-churn-monitor-bias"]]
    fraud = json.loads(plan.get("prod-fraud-retraining-on-violations").inputs["eventPattern"])["detail"]
    assert fraud["MonitoringScheduleArn"] == [schedules["prod-fraud-monitor-schedule"],
                                              schedules["prod-fraud-monitor-explainability"]]
