"""FeatureStore: the API's name rules, its settings (a stack file's `feature_groups`) and checks, every child and its
inputs, grants."""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Callable

import pulumi
import pytest
from pydantic import ValidationError

from emlops.components.feature_store import FeatureStore
from emlops.components.feature_store_args import (
    FEATURE_GROUP_NAME_PATTERN,
    FEATURE_NAME_PATTERN,
    FEATURE_TYPES,
    MAX_DESCRIPTION,
    MAX_FEATURES,
    MAX_NAME_LENGTH,
    RESERVED_FEATURE_NAMES,
    TTL_UNITS,
    FeatureGroupSettings,
    FeatureSettings,
    FeatureStoreContext,
    check_feature_groups,
)
from emlops.components.iam import ServiceRole, ServiceRoleArgs
from emlops.components.settings import Governance
from emlops.components.storage import SecureBucket, SecureBucketArgs
from emlops.offline.plan import Plan
from emlops.program.platform import PlatformConfig
from tests.conftest import ACCOUNT, allow, api_problems, policy_statements as statements, REGION, run_components

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:FeatureStore"
KMS_COMPONENT, BUCKET_COMPONENT, ROLE_COMPONENT = "emlops:index:KmsKey", "emlops:index:SecureBucket", "emlops:index:ServiceRole"
KEY, ALIAS = "aws:kms/key:Key", "aws:kms/alias:Alias"
ROLE, ROLE_POLICY = "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"
DATABASE = "aws:glue/catalogDatabase:CatalogDatabase"
FEATURE_GROUP = "aws:sagemaker/featureGroup:FeatureGroup"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_PARTS = ("public-access-block", "ownership", "versioning", "encryption", "policy")
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
VIA_S3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
DECRYPT = ["kms:DescribeKey", "kms:Decrypt"]
ENCRYPT_DECRYPT = ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom",
                   "kms:ReEncryptTo"]
GLUE = f"arn:aws:glue:{REGION}:{ACCOUNT}"
FG_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:feature-group"

def feature(name: str, kind: str) -> dict[str, str]:
    return {"name": name, "type": kind}


CUSTOMER = [feature("customer_id", "String"), feature("event_time", "Fractional"),
            feature("tenure_months", "Integral"), feature("avg_spend", "Fractional")]
PAYMENTS = [feature("payment_id", "Integral"), feature("paid_at", "String"), feature("amount", "Fractional")]
# A stack file's `feature_groups[]` entries, as dicts.
CUSTOMERS: dict[str, Any] = {
    "name": "customers", "description": "Customer profile features", "features": CUSTOMER,
    "record_identifier": "customer_id", "event_time_feature": "event_time",
    "online": {"enabled": True, "ttl_days": 30},
}
PAYMENTS_GROUP: dict[str, Any] = {
    "name": "payments", "features": PAYMENTS, "record_identifier": "payment_id", "event_time_feature": "paid_at",
}


def customers(**changes: Any) -> FeatureGroupSettings:
    return FeatureGroupSettings.model_validate({**CUSTOMERS, **changes})


def payments(**changes: Any) -> FeatureGroupSettings:
    return FeatureGroupSettings.model_validate({**PAYMENTS_GROUP, **changes})


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    assert not isinstance(caught.value, ValidationError)
    return str(caught.value)


def settings_error(model: type[FeatureSettings | FeatureGroupSettings], data: dict[str, Any]) -> tuple[tuple, str]:
    """(location, message) of the one error validating `data` (pydantic's own message, exactly)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return tuple(errors[0]["loc"]), errors[0]["msg"]


# -- the API's own rules ------------------------------------------------------------------------------

def test_name_rules_and_limits_are_create_feature_groups_own():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    request = model.operation_model("CreateFeatureGroup").input_shape
    group_name, feature_name = model.shape_for("FeatureGroupName"), model.shape_for("FeatureName")
    assert (group_name.metadata["pattern"], group_name.metadata["max"]) == (FEATURE_GROUP_NAME_PATTERN, MAX_NAME_LENGTH)
    assert (feature_name.metadata["pattern"], feature_name.metadata["max"]) == (FEATURE_NAME_PATTERN, MAX_NAME_LENGTH)
    assert tuple(model.shape_for("FeatureType").enum) == FEATURE_TYPES
    assert request.members["FeatureDefinitions"].metadata["max"] == MAX_FEATURES
    assert request.members["Description"].metadata["max"] == MAX_DESCRIPTION
    assert set(TTL_UNITS) <= set(model.shape_for("TtlDurationUnit").enum)
    documentation = request.members["FeatureDefinitions"].documentation
    assert re.findall(r"cannot be any of the following: (.*?)</p>", documentation) == [
        ", ".join(f"<code>{name}</code>" for name in RESERVED_FEATURE_NAMES) + " "]
    assert "An <code>EventTime</code> can be a <code>String</code> or <code>Fractional</code>" in (
        request.members["EventTimeFeatureName"].documentation)


# -- settings (a stack file's `feature_groups[]` entry) ------------------------------------------------

NAME_RULE = "1-64 ASCII letters, digits, '-' or '_', starting and ending with a letter or digit"
RESERVED = "is reserved by SageMaker Feature Store (is_deleted, write_time, api_invocation_time); rename it"
FEATURE_TYPE = "Input should be 'Integral', 'Fractional' or 'String'"


@pytest.mark.parametrize("name, kind, loc, message", [
    ("customer id", "String", ("name",), f"Value error, feature name 'customer id' must be {NAME_RULE}"),
    ("_id", "String", ("name",), f"Value error, feature name '_id' must be {NAME_RULE}"),
    ("id-", "String", ("name",), f"Value error, feature name 'id-' must be {NAME_RULE}"),
    ("", "String", ("name",), f"Value error, feature name '' must be {NAME_RULE}"),
    ("a" * 65, "String", ("name",), f"Value error, feature name {'a' * 65!r} must be {NAME_RULE}"),
    ("a" + "_" * 63 + "b", "String", ("name",),
     f"Value error, feature name {'a' + '_' * 63 + 'b'!r} must be {NAME_RULE}"),
    ("kosten€", "String", ("name",), f"Value error, feature name 'kosten€' must be {NAME_RULE}"),
    ("is_deleted", "String", ("name",), f"Value error, feature name 'is_deleted' {RESERVED}"),
    ("write_time", "Fractional", ("name",), f"Value error, feature name 'write_time' {RESERVED}"),
    ("API_Invocation_Time", "String", ("name",), f"Value error, feature name 'API_Invocation_Time' {RESERVED}"),
    ("spend", "Float", ("type",), FEATURE_TYPE),
    ("spend", "string", ("type",), FEATURE_TYPE),
])
def test_feature_rejects_with_a_message(name, kind, loc, message):
    assert settings_error(FeatureSettings, feature(name, kind)) == (loc, message)


def test_feature_rejects_unknown_keys():
    assert settings_error(FeatureSettings, {**feature("spend", "Fractional"), "kind": "x"}) == (
        ("kind",), "Extra inputs are not permitted")


def test_the_longest_names_are_accepted():
    assert FeatureSettings.model_validate(feature("a" * 64, "String")).name == "a" * 64
    assert FeatureSettings.model_validate(feature("a-_b", "Integral")).type == "Integral"


@pytest.mark.parametrize("changes, loc, message", [
    ({"name": "customer profiles"}, ("name",),
     f"Value error, feature group name 'customer profiles' must be {NAME_RULE}"),
    ({"name": "-customers"}, ("name",), f"Value error, feature group name '-customers' must be {NAME_RULE}"),
    ({"name": "a" * 65}, ("name",), f"Value error, feature group name {'a' * 65!r} must be {NAME_RULE}"),
    ({"features": []}, (), "Value error, feature group 'customers' needs at least one feature"),
    ({"features": feature("customer_id", "String")}, ("features",), "Input should be a valid list"),
    ({"features": [feature("customer_id", "String"), feature("event_time", "String")]
                  + [feature(f"f{i}", "Integral") for i in range(2499)]}, (),
     "Value error, feature group 'customers' has 2501 features; SageMaker allows at most 2500"),
    ({"features": [*CUSTOMER, feature("Avg_Spend", "Integral"), feature("event_time", "String")]}, (),
     "Value error, feature group 'customers': feature names must be unique (ignoring case); repeated: avg_spend, "
     "Avg_Spend, event_time"),
    ({"features": [*CUSTOMER, feature("Customer_ID", "String")]}, (),
     "Value error, feature group 'customers': feature names must be unique (ignoring case); repeated: customer_id, "
     "Customer_ID"),
    ({"features": [feature("customer_id", "String"), feature("write_time", "String")]}, ("features", 1, "name"),
     f"Value error, feature name 'write_time' {RESERVED}"),
    ({"features": [feature("customer_id", "Float")]}, ("features", 0, "type"), FEATURE_TYPE),
    ({"record_identifier": "id"}, (),
     "Value error, feature group 'customers': record_identifier 'id' is not one of its features; declare it in "
     "features"),
    ({"event_time_feature": "updated_at"}, (),
     "Value error, feature group 'customers': event_time_feature 'updated_at' is not one of its features; declare it "
     "in features"),
    ({"event_time_feature": "tenure_months"}, (),
     "Value error, feature group 'customers': event_time_feature 'tenure_months' is Integral; it must be Fractional "
     "(Unix seconds) or String (ISO-8601)"),
    ({"description": "x" * 129}, (),
     "Value error, feature group 'customers': description is 129 characters; SageMaker allows at most 128"),
    ({"online": {"enabled": False}, "offline": {"enabled": False}}, (),
     "Value error, feature group 'customers' needs a store: enable online, offline or both"),
    ({"online": {"enabled": False, "ttl_days": 3}}, ("online",),
     "Value error, a TTL needs the online store: set enabled: true or drop the TTL"),
    ({"online": {"enabled": True, "ttl_days": 3, "ttl_hours": 2}}, ("online",),
     "Value error, give ttl_days or ttl_hours, not both"),
    ({"online": {"enabled": True, "ttl_days": 0}}, ("online", "ttl_days"),
     "Input should be greater than or equal to 1"),
    ({"online": {"enabled": True, "ttl_hours": 0}}, ("online", "ttl_hours"),
     "Input should be greater than or equal to 1"),
    ({"online": {"enabled": True, "ttl_weeks": 2}}, ("online", "ttl_weeks"), "Extra inputs are not permitted"),
    ({"offline": {"enabled": True, "format": "Glue"}}, ("offline", "format"), "Extra inputs are not permitted"),
    ({"online_store": True}, ("online_store",), "Extra inputs are not permitted"),
])
def test_feature_group_rejects_with_a_message(changes, loc, message):
    assert settings_error(FeatureGroupSettings, {**CUSTOMERS, **changes}) == (loc, message)


def test_group_defaults_are_offline_only():
    group = payments()
    assert (group.online.enabled, group.offline.enabled, group.online.ttl_days, group.online.ttl_hours,
            group.description, group.ttl()) == (False, True, None, None, "", None)


def test_the_ttl_is_given_to_the_api_in_days_or_hours():
    assert customers().ttl() == {"unit": "Days", "value": 30}
    assert customers(online={"enabled": True, "ttl_hours": 12}).ttl() == {"unit": "Hours", "value": 12}
    assert customers(online={"enabled": True}).ttl() is None


def test_the_stack_file_embeds_the_settings():
    assert PlatformConfig.model_fields["feature_groups"].annotation == list[FeatureGroupSettings]


def test_schema_carries_the_api_patterns_for_editors():
    schema = FeatureGroupSettings.model_json_schema()
    assert schema["properties"]["name"]["pattern"] == f"^{FEATURE_GROUP_NAME_PATTERN}$"
    assert schema["properties"]["features"]["maxItems"] == MAX_FEATURES
    feature_schema = schema["$defs"]["FeatureSettings"]["properties"]
    assert (feature_schema["name"]["pattern"], feature_schema["name"]["maxLength"]) == (f"^{FEATURE_NAME_PATTERN}$", 64)
    assert feature_schema["type"]["enum"] == list(FEATURE_TYPES)


# -- the groups together --------------------------------------------------------------------------------

def test_groups_are_checked_together_with_the_key_to_fix():
    assert check_feature_groups("dev-features", []) is None
    assert check_feature_groups("dev-features", [customers(), payments()]) is None
    assert check_feature_groups("dev-features", [customers(), payments(), customers()]) == (
        "", "feature group names must be unique; repeated: customers")
    assert check_feature_groups("dev-features", [payments(name="card-payments"), payments(name="card_payments")]) == (
        "", "feature groups 'card-payments' and 'card_payments' would share the Glue table 'card_payments'; rename one")
    assert check_feature_groups("dev-features", [customers(), customers(name="c" * 60)]) == (
        "[1].name", f"feature group name {'dev-features-' + 'c' * 60!r} is 73 characters; SageMaker allows at most "
        f"64: shorten the feature store name 'dev-features' or the group name {'c' * 60!r}")


@pytest.mark.parametrize("groups, message", [
    ([], "a feature store needs at least one feature group (a list of FeatureGroupSettings)"),
    (payments(), "a feature store needs at least one feature group (a list of FeatureGroupSettings)"),  # one, no list
    ([customers(), payments(), customers()], "feature group names must be unique; repeated: customers"),
    ([payments(name="card-payments"), payments(name="card_payments")],
     "feature groups 'card-payments' and 'card_payments' would share the Glue table 'card_payments'; rename one"),
    ([payments(name="Payments"), payments()],
     "feature groups 'Payments' and 'payments' would share the Glue table 'payments'; rename one"),
])
def test_feature_store_rejects_its_groups_with_a_message(groups, message):
    # outside a Pulumi program, registering the component would fail: this error comes before any registration
    assert error_of(lambda: FeatureStore("churn", groups, FeatureStoreContext())) == message


@pytest.mark.parametrize("store, group, message", [
    ("ml-" + "x" * 40, "customer_profiles_daily",
     f"feature group name {'ml-' + 'x' * 40 + '-customer_profiles_daily'!r} is 67 characters; SageMaker allows at "
     f"most 64: shorten the feature store name {'ml-' + 'x' * 40!r} or the group name 'customer_profiles_daily'"),
    ("dev-", "payments", "feature store name 'dev-' must be ASCII letters, digits, '-' or '_', starting and ending "
     "with a letter or digit"),
    ("dev features", "payments", "feature store name 'dev features' must be ASCII letters, digits, '-' or '_', "
     "starting and ending with a letter or digit"),
])
def test_sagemaker_names_are_checked_before_anything_is_created(store, group, message):
    # outside a Pulumi program, registering the component would fail: this error comes before any registration
    assert error_of(lambda: FeatureStore(store, [payments(name=group)], FeatureStoreContext())) == message


# -- an online+offline group and an offline-only group, protected ---------------------------------------------

TAGS = {"team": "growth", "feature-store": "churn"}


@functools.cache
def store_plan() -> Plan:
    def program() -> None:
        store = FeatureStore("churn", [customers(), payments()], FeatureStoreContext(
            governance=Governance({"team": "growth"}, permissions_boundary_arn=BOUNDARY, protect=True)))
        reader = ServiceRole("reader", ServiceRoleArgs(services=["sagemaker.amazonaws.com"]))
        writer = ServiceRole("writer", ServiceRoleArgs(services=["sagemaker.amazonaws.com"]))
        for group in ("customers", "payments"):
            store.grant_read(reader, group)
            store.grant_write(writer, group)
        pulumi.export("names", store.feature_group_names)
        pulumi.export("arns", store.feature_group_arns)
        pulumi.export("roleArn", store.role_arn)
        pulumi.export("kmsKeyArn", store.kms_key_arn)
        pulumi.export("offlineStoreUri", store.offline_store_uri)
        pulumi.export("glueDatabase", store.glue_database_name)
    return run_components(program)


def bucket_name(plan: Plan) -> str:
    return plan.get("churn-offline-bucket", BUCKET).inputs["bucket"]


def key_arn(plan: Plan) -> str:
    return plan.outputs["kmsKeyArn"]


def test_feature_store_children_are_named_after_it():
    plan = store_plan()
    component = plan.get("churn", COMPONENT)
    assert component.parent == plan.get("emlops-test", STACK).urn
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (KMS_COMPONENT, "churn-key"), (BUCKET_COMPONENT, "churn-offline"), (ROLE_COMPONENT, "churn-execution"),
        (DATABASE, "churn-database"), (FEATURE_GROUP, "churn-customers"), (FEATURE_GROUP, "churn-payments")]
    assert [(r.type, r.name) for r in plan.children(plan.get("churn-execution", ROLE_COMPONENT).urn)] == [
        (ROLE, "churn-execution-role"), (ROLE_POLICY, "churn-execution-offline-store"),
        (ROLE_POLICY, "churn-execution-glue-catalog")]
    assert [(r.type, r.name) for r in plan.children(plan.get("churn-key", KMS_COMPONENT).urn)] == [
        (KEY, "churn-key-key"), (ALIAS, "churn-key-alias")]
    # (the bucket's own children are SecureBucket's, tested in test_storage)
    assert {t: n for t, n in plan.type_counts().items() if not t.startswith("aws:s3/")} == {
        STACK: 1, COMPONENT: 1, KMS_COMPONENT: 1, KEY: 1, ALIAS: 1, BUCKET_COMPONENT: 1, ROLE_COMPONENT: 3, ROLE: 3,
        ROLE_POLICY: 6, DATABASE: 1, FEATURE_GROUP: 2}


def test_only_the_feature_groups_key_bucket_and_glue_database_are_protected_and_retained():
    plan = store_plan()
    stateful = {"churn-customers", "churn-payments", "churn-key-key", "churn-offline-bucket", "churn-database"}
    assert {r.name for r in plan.resources if r.protect} == stateful
    assert {r.name for r in plan.resources if r.retain_on_delete} == stateful


def test_the_offline_bucket_is_encrypted_with_the_feature_store_key():
    plan = store_plan()
    encryption = plan.get("churn-offline-encryption").inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert encryption == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn(plan)}
    assert plan.get("churn-key-key").inputs["description"] == (
        "Encrypts the online and offline stores of the churn feature store")
    assert plan.get("churn-key-key").inputs["tags"] == TAGS


def offline_config(plan: Plan, group: str, key: str) -> dict[str, Any]:
    return {"s3StorageConfig": {"s3Uri": f"s3://{bucket_name(plan)}/feature-store/churn-{group}", "kmsKeyId": key},
            "dataCatalogConfig": {"catalog": "AwsDataCatalog", "database": "churn_features", "tableName": group},
            "tableFormat": "Iceberg", "disableGlueTableCreation": False}


def test_online_and_offline_group_has_an_encrypted_online_store_with_ttl_and_an_iceberg_offline_store():
    plan = store_plan()
    group = plan.get("churn-customers", FEATURE_GROUP)
    assert group.inputs == {
        "featureGroupName": "churn-customers", "description": "Customer profile features",
        "recordIdentifierFeatureName": "customer_id", "eventTimeFeatureName": "event_time",
        "featureDefinitions": [{"featureName": "customer_id", "featureType": "String"},
                               {"featureName": "event_time", "featureType": "Fractional"},
                               {"featureName": "tenure_months", "featureType": "Integral"},
                               {"featureName": "avg_spend", "featureType": "Fractional"}],
        "roleArn": plan.outputs["roleArn"],
        "onlineStoreConfig": {"enableOnlineStore": True, "securityConfig": {"kmsKeyId": key_arn(plan)},
                              "ttlDuration": {"unit": "Days", "value": 30}},
        "offlineStoreConfig": offline_config(plan, "customers", key_arn(plan)),
        "tags": TAGS}
    assert api_problems(group) == []


def test_offline_only_group_has_no_online_store():
    plan = store_plan()
    group = plan.get("churn-payments", FEATURE_GROUP)
    assert group.inputs == {
        "featureGroupName": "churn-payments",
        "recordIdentifierFeatureName": "payment_id", "eventTimeFeatureName": "paid_at",
        "featureDefinitions": [{"featureName": "payment_id", "featureType": "Integral"},
                               {"featureName": "paid_at", "featureType": "String"},
                               {"featureName": "amount", "featureType": "Fractional"}],
        "roleArn": plan.outputs["roleArn"],
        "offlineStoreConfig": offline_config(plan, "payments", key_arn(plan)),
        "tags": TAGS}
    assert api_problems(group) == []


@pytest.mark.parametrize("group", ["churn-customers", "churn-payments"])
def test_feature_groups_wait_for_the_role_policies_and_the_whole_bucket(group):
    plan = store_plan()
    bucket_parts = {plan.get(f"churn-offline-{part}").urn for part in BUCKET_PARTS}
    expected = {plan.get(name).urn for name in (
        "churn-key-key", "churn-offline-bucket", "churn-execution-role", "churn-execution-offline-store",
        "churn-execution-glue-catalog", "churn-database")} | bucket_parts
    assert set(plan.get(group, FEATURE_GROUP).dependencies) == expected


def test_glue_database_has_an_athena_friendly_name():
    plan = store_plan()
    assert plan.get("churn-database", DATABASE).inputs == {
        "name": "churn_features", "tags": TAGS,
        "description": "Offline store tables of the churn feature store (created by SageMaker)"}


def test_outputs_name_the_groups_role_uri_and_database():
    plan = store_plan()
    role_name = plan.get("churn-execution-role").inputs["name"]
    assert plan.outputs == {
        "names": {"customers": "churn-customers", "payments": "churn-payments"},
        "arns": {"customers": f"{FG_ARN}/churn-customers", "payments": f"{FG_ARN}/churn-payments"},
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role_name}",
        "kmsKeyArn": key_arn(plan),
        "offlineStoreUri": f"s3://{bucket_name(plan)}/feature-store/",
        "glueDatabase": "churn_features"}
    assert re.fullmatch(rf"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}", key_arn(plan))


def test_role_is_assumed_by_sagemaker_within_the_boundary():
    plan = store_plan()
    role = plan.get("churn-execution-role").inputs
    assert role["permissionsBoundary"] == BOUNDARY
    assert role["description"] == "SageMaker Feature Store: writes the offline store of churn"
    assert role["tags"] == TAGS
    assert json.loads(role["assumeRolePolicy"])["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]}, "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]


def test_role_writes_only_under_the_prefix_with_the_key_through_s3_and_only_its_glue_tables():
    plan = store_plan()
    bucket = f"arn:aws:s3:::{bucket_name(plan)}"
    assert statements(plan, "churn-execution-offline-store") == [
        allow(["s3:GetBucketAcl"], [bucket]),
        allow(["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": ["feature-store/*"]}}),
        allow(["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"],
              [f"{bucket}/feature-store/*"]),
        allow(ENCRYPT_DECRYPT, [key_arn(plan)], VIA_S3)]
    assert statements(plan, "churn-execution-glue-catalog") == [
        allow(["glue:CreateTable", "glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"],
              [f"{GLUE}:catalog", f"{GLUE}:database/churn_features", f"{GLUE}:table/churn_features/*"])]


def test_grant_read_reads_online_records_and_the_groups_offline_prefix_and_table():
    plan = store_plan()
    bucket = f"arn:aws:s3:::{bucket_name(plan)}"
    glue = [f"{GLUE}:catalog", f"{GLUE}:database/churn_features"]
    assert statements(plan, "reader-read-features-churn-customers") == [
        allow(["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord"],
              [f"{FG_ARN}/churn-customers"]),
        allow(["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": ["feature-store/churn-customers/*"]}}),
        allow(["s3:GetObject"], [f"{bucket}/feature-store/churn-customers/*"]),
        allow(["glue:GetDatabase", "glue:GetTable"], [*glue, f"{GLUE}:table/churn_features/customers"]),
        # the online store's data-plane callers need the key itself (CreateFeatureGroup's documentation)
        allow(DECRYPT, [key_arn(plan)])]
    assert statements(plan, "reader-read-features-churn-payments") == [
        allow(["sagemaker:DescribeFeatureGroup"], [f"{FG_ARN}/churn-payments"]),
        allow(["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": ["feature-store/churn-payments/*"]}}),
        allow(["s3:GetObject"], [f"{bucket}/feature-store/churn-payments/*"]),
        allow(["glue:GetDatabase", "glue:GetTable"], [*glue, f"{GLUE}:table/churn_features/payments"]),
        allow(DECRYPT, [key_arn(plan)], VIA_S3)]


def test_grant_write_puts_and_deletes_records_of_one_group():
    plan = store_plan()
    actions = ["sagemaker:DeleteRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"]
    assert statements(plan, "writer-write-features-churn-customers") == [
        allow(actions, [f"{FG_ARN}/churn-customers"]), allow(DECRYPT, [key_arn(plan)])]
    assert statements(plan, "writer-write-features-churn-payments") == [allow(actions, [f"{FG_ARN}/churn-payments"])]


@pytest.mark.parametrize("grant", ["grant_read", "grant_write"])
def test_grants_reject_an_unknown_group(grant):
    def program() -> None:
        store = FeatureStore("churn", [customers(), payments()], FeatureStoreContext())
        role = ServiceRole("reader", ServiceRoleArgs(services=["sagemaker.amazonaws.com"]))
        getattr(store, grant)(role, "orders")
    assert error_of(lambda: run_components(program)) == (
        "feature store 'churn' has no feature group 'orders'; it has: customers, payments")


# -- bring your own, online only, defaults ------------------------------------------------------------

def test_own_key_and_bucket_are_used_and_nothing_is_protected_by_default():
    def program() -> None:
        bucket = SecureBucket("datasets", SecureBucketArgs(kms_key_arn=KEY_ARN))
        FeatureStore("churn", [payments()], FeatureStoreContext(kms_key_arn=KEY_ARN, offline_bucket=bucket))
    plan = run_components(program)
    assert [(r.type, r.name) for r in plan.children(plan.get("churn", COMPONENT).urn)] == [
        (ROLE_COMPONENT, "churn-execution"), (DATABASE, "churn-database"), (FEATURE_GROUP, "churn-payments")]
    bucket = plan.get("datasets-bucket").inputs["bucket"]
    group = plan.get("churn-payments", FEATURE_GROUP)
    assert group.inputs["offlineStoreConfig"]["s3StorageConfig"] == {
        "s3Uri": f"s3://{bucket}/feature-store/churn-payments", "kmsKeyId": KEY_ARN}
    assert statements(plan, "churn-execution-offline-store")[2:] == [
        allow(["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject", "s3:PutObjectAcl"],
              [f"arn:aws:s3:::{bucket}/feature-store/*"]),
        allow(ENCRYPT_DECRYPT, [KEY_ARN], VIA_S3)]
    assert group.inputs["tags"] == {"feature-store": "churn"}
    assert [r.name for r in plan.resources if r.protect or r.retain_on_delete] == []
    assert api_problems(group) == []


def test_online_only_store_has_no_bucket_database_or_role_policies():
    def program() -> None:
        store = FeatureStore("rt", [customers(offline={"enabled": False}, online={"enabled": True, "ttl_hours": 6},
                                              description="")], FeatureStoreContext())
        pulumi.export("noOfflineStore", [store.offline_store_uri is None, store.glue_database_name is None,
                                         store.offline_bucket is None, store.glue_database is None])
    plan = run_components(program)
    assert [(r.type, r.name) for r in plan.children(plan.get("rt", COMPONENT).urn)] == [
        (KMS_COMPONENT, "rt-key"), (ROLE_COMPONENT, "rt-execution"), (FEATURE_GROUP, "rt-customers")]
    assert plan.by_type(ROLE_POLICY) == []
    group = plan.get("rt-customers", FEATURE_GROUP)
    assert "offlineStoreConfig" not in group.inputs and "description" not in group.inputs
    assert group.inputs["onlineStoreConfig"]["ttlDuration"] == {"unit": "Hours", "value": 6}
    assert set(group.dependencies) == {plan.get("rt-key-key").urn, plan.get("rt-execution-role").urn}
    assert plan.outputs == {"noOfflineStore": [True, True, True, True]}
    assert api_problems(group) == []


def test_the_longest_sagemaker_name_is_accepted():
    plan = run_components(lambda: FeatureStore("s" * 30, [payments(name="p" * 33)], FeatureStoreContext()))
    group = plan.get("s" * 30 + "-" + "p" * 33, FEATURE_GROUP)
    assert len(group.inputs["featureGroupName"]) == 64
    assert plan.get("s" * 30 + "-database").inputs["name"] == "s" * 30 + "_features"
    assert api_problems(group) == []


def test_a_bad_boundary_is_rejected_before_anything_is_created():
    boundary = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    context = FeatureStoreContext(governance=Governance(permissions_boundary_arn=boundary))
    assert error_of(lambda: FeatureStore("churn", [payments()], context)) == (
        "a *FullAccess managed policy cannot serve as a permissions boundary")
