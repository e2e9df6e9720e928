"""Training from the feature store: the settings and their one-line errors, the point-in-time query, the retraining
pipeline's Athena workgroup and permissions, its prepare step's Athena input, and prod churn's use of it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from emlops.catalog.requests import ApiRequest, validate_request
from emlops.components.feature_store_args import FeatureGroupSettings
from emlops.components.retraining import RetrainingPipeline
from emlops.components.training_features import FeatureSource, TrainingFeaturesSettings, feature_tables
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, REGION, edit_stack, preview_error, run_components
from tests.test_retraining import FULL, KEY_ARN, ROLE_POLICY, settings

WORKGROUP = "aws:athena/workgroup:Workgroup"
CUSTOMERS = FeatureGroupSettings.model_validate({
    "name": "customers", "record_identifier": "customer_id", "event_time_feature": "event_time",
    "features": [{"name": "customer_id", "type": "String"}, {"name": "event_time", "type": "Fractional"},
                 {"name": "tenure_months", "type": "Integral"}, {"name": "plan", "type": "String"}]})
LABELS = FeatureGroupSettings.model_validate({
    "name": "churn-labels", "record_identifier": "customer_id", "event_time_feature": "event_time",
    "features": [{"name": "customer_id", "type": "String"}, {"name": "event_time", "type": "Fractional"},
                 {"name": "churned", "type": "Integral"}]})
OFFLINE_BUCKET = "arn:aws:s3:::ml-datasets"
ARNS = {g: f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group/dev-features-{g}" for g in ("customers", "churn-labels")}


def features(**changes: Any) -> TrainingFeaturesSettings:
    return TrainingFeaturesSettings.model_validate({"feature_groups": ["customers", "churn-labels"],
                                                    "label": "churned", **changes})


def source(section: TrainingFeaturesSettings = None) -> FeatureSource:
    section = section or features()
    groups = [CUSTOMERS, LABELS]
    return FeatureSource(database="dev_features_features", label=section.label, tables=feature_tables(
        groups, section, {g.name: f"dev-features-{g.name}" for g in groups}, ARNS, "feature-store/"),
        offline_bucket_arn=OFFLINE_BUCKET, kms_key_arn=KEY_ARN)


@pytest.mark.parametrize("changes, groups, problem", [
    ({"feature_groups": ["customers", "orders"]}, [CUSTOMERS, LABELS],
     ("feature_groups[1]", "'orders' is not one of the stack's feature_groups (customers, churn-labels); declare it in "
                           "feature_groups or name one of them")),
    ({"label": "churn"}, [CUSTOMERS, LABELS],
     ("label", "'churn' is not among the features of customers, churn-labels (customer_id, event_time, "
               "tenure_months, plan, customer_id, event_time, churned); name one of them")),
    ({}, [CUSTOMERS, LABELS.model_copy(update={"offline": LABELS.offline.model_copy(update={"enabled": False}),
                                               "online": LABELS.online.model_copy(update={"enabled": True})})],
     ("feature_groups[1]", "'churn-labels' has no offline store, where training sets are read from; enable offline "
                           "on it")),
    ({}, [CUSTOMERS, LABELS.model_copy(update={"record_identifier": "event_time"})],
     ("feature_groups", "the groups are joined on their record identifier, and theirs differ (customer_id, "
                        "event_time); name groups with the same record identifier")),
])
def test_what_the_groups_cannot_give_is_one_problem(changes, groups, problem):
    assert features(**changes).problem(groups) == problem
    assert features().problem([CUSTOMERS, LABELS]) is None


def test_a_label_not_among_the_features_is_one_line_naming_the_stack_file_and_key(project_copy):
    edit_stack(project_copy, "prod", "            feature_groups: [customers, churn-labels]\n            label: churned\n",
               "            feature_groups: [customers, churn-labels]\n            label: cancelled\n")
    assert preview_error(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[0].retraining.features.label: 'cancelled' is not among the "
        "features of customers, churn-labels (customer_id, event_time, tenure_months, monthly_charges, contract_type, "
        "customer_id, event_time, churned); name one of them")


def test_an_unknown_feature_group_is_one_line_naming_the_stack_file_and_key(project_copy):
    edit_stack(project_copy, "prod", "            feature_groups: [customers, churn-labels]\n",
               "            feature_groups: [customers, churn-outcomes]\n")
    assert preview_error(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[0].retraining.features.feature_groups[1]: 'churn-outcomes' is "
        "not one of the stack's feature_groups (customers, churn-labels); declare it in feature_groups or name one of "
        "them")


def test_the_query_joins_each_example_to_what_was_known_then():
    table = source()
    assert [t.group for t in table.tables] == ["churn-labels", "customers"]  # the label's group gives the examples
    assert table.columns() == ["churned", "tenure_months", "plan"]
    db = "dev_features_features"
    assert table.query(db).splitlines() == [
        f'WITH examples AS (SELECT "customer_id", "event_time", "churned" FROM "{db}"."churn_labels" WHERE NOT '
        'is_deleted)',
        ', g1 AS (SELECT e."customer_id", e."event_time", f."tenure_months", f."plan", row_number() OVER (PARTITION BY '
        'e."customer_id", e."event_time" ORDER BY f."event_time" DESC, f.api_invocation_time DESC) AS latest FROM '
        f'examples e JOIN "{db}"."customers" f ON f."customer_id" = e."customer_id" AND f."event_time" <= '
        'e."event_time" WHERE NOT f.is_deleted)',
        'SELECT examples."churned", g1."tenure_months", g1."plan" FROM examples',
        'JOIN g1 ON g1."customer_id" = examples."customer_id" AND g1."event_time" = examples."event_time" AND '
        'g1.latest = 1']
    # one group holding features and label: its own records are the examples, nothing joined
    alone = source(features(feature_groups=["churn-labels"]))
    assert alone.query(db).splitlines() == [
        f'WITH examples AS (SELECT "customer_id", "event_time", "churned" FROM "{db}"."churn_labels" WHERE NOT '
        'is_deleted)', 'SELECT examples."churned" FROM examples']


def plan_with_features() -> Plan:
    return run_components(lambda: RetrainingPipeline("churn-retraining", settings(features=features().model_dump()),
                                                     dataclasses.replace(FULL, features=source())))


def test_the_pipeline_queries_through_a_workgroup_enforcing_its_encrypted_results_location():
    plan = plan_with_features()
    [workgroup] = plan.by_type(WORKGROUP)
    assert workgroup.name == "churn-retraining-features"
    assert {k: v for k, v in workgroup.inputs.items() if k != "name"} == {
        "description": "Training sets of the dev-churn-retraining pipeline, point in time from the feature store",
        "state": "ENABLED", "forceDestroy": False, "tags": {"team": "churn"},
        "configuration": {"enforceWorkgroupConfiguration": True, "publishCloudwatchMetricsEnabled": True,
                          "resultConfiguration": {
                              "outputLocation": "s3://ml-output/models/churn/athena-results/",
                              "encryptionConfiguration": {"encryptionOption": "SSE_KMS", "kmsKeyArn": KEY_ARN}}}}
    arn = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{workgroup.inputs['name']}"
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}"
    found = json.loads(plan.get("churn-retraining-execution-read-features", ROLE_POLICY).inputs["policy"])["Statement"]
    assert found == [
        {"Effect": "Allow", "Action": ["athena:GetQueryExecution", "athena:GetQueryResults", "athena:GetWorkGroup",
                                       "athena:StartQueryExecution", "athena:StopQueryExecution"], "Resource": [arn]},
        {"Effect": "Allow", "Action": ["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"], "Resource": [
            f"{glue}:catalog", f"{glue}:database/dev_features_features",
            f"{glue}:table/dev_features_features/churn_labels", f"{glue}:table/dev_features_features/customers"]},
        {"Effect": "Allow", "Action": ["sagemaker:DescribeFeatureGroup"],
         "Resource": [ARNS["churn-labels"], ARNS["customers"]]},
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": ["arn:aws:s3:::ml-output"]},
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"], "Resource": [OFFLINE_BUCKET],
         "Condition": {"StringLike": {"s3:prefix": ["feature-store/dev-features-churn-labels/*",
                                                    "feature-store/dev-features-customers/*"]}}},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [
            f"{OFFLINE_BUCKET}/feature-store/dev-features-churn-labels/*",
            f"{OFFLINE_BUCKET}/feature-store/dev-features-customers/*"]},
        {"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:Decrypt"], "Resource": [KEY_ARN],
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}}]


def test_the_prepare_step_reads_the_query_as_a_create_processing_job_request():
    plan = plan_with_features()
    workgroup = plan.by_type(WORKGROUP)[0].inputs["name"]
    definition = json.loads(plan.get("churn-retraining-pipeline").inputs["pipelineDefinition"])
    prepare = definition["Steps"][0]
    assert prepare["Name"] == "Prepare"
    assert prepare["Arguments"]["ProcessingInputs"] == [{"InputName": "input", "DatasetDefinition": {
        "AthenaDatasetDefinition": {"Catalog": "AwsDataCatalog", "Database": "dev_features_features",
                                    "QueryString": source().query("dev_features_features"),
                                    "OutputS3Uri": "s3://ml-output/models/churn/athena-results/",
                                    "OutputFormat": "PARQUET", "WorkGroup": workgroup, "KmsKeyId": KEY_ARN},
        "LocalPath": "/opt/ml/processing/input", "DataDistributionType": "FullyReplicated", "InputMode": "File"}}]
    request = ApiRequest("sagemaker", "CreateProcessingJob", {**prepare["Arguments"], "ProcessingJobName": "p-1"})
    assert validate_request(request) == []


def test_prod_churn_trains_from_the_feature_store(shipped_plan):
    plan = shipped_plan("prod")
    [workgroup] = plan.by_type(WORKGROUP)
    assert workgroup.name == "prod-churn-retraining-features"
    assert workgroup.inputs["configuration"]["resultConfiguration"]["encryptionConfiguration"] == {
        "encryptionOption": "SSE_KMS", "kmsKeyArn": plan.outputs["dataKeyArn"]}
    steps = {r.name: json.loads(r.inputs["pipelineDefinition"])["Steps"][0]["Arguments"]["ProcessingInputs"][0]
             for r in plan.by_type("aws:sagemaker/pipeline:Pipeline") if r.name.endswith("-retraining-pipeline")}
    athena = steps.pop("prod-churn-retraining-pipeline")["DatasetDefinition"]["AthenaDatasetDefinition"]
    assert (athena["Database"], athena["WorkGroup"]) == ("prod_features_features", workgroup.inputs["name"])
    assert athena["QueryString"].startswith('WITH examples AS (SELECT "customer_id", "event_time", "churned" FROM '
                                            '"prod_features_features"."churn_labels"')
    # the other models still read their datasets prefix
    assert {name: step["S3Input"]["S3Uri"].split("/", 3)[3] for name, step in steps.items()} == {
        "prod-fraud-retraining-pipeline": "datasets/fraud/",
        "prod-doc-scoring-retraining-pipeline": "datasets/doc-scoring/"}
