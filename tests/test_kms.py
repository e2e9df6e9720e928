"""KmsKey: argument checks, the key and alias it creates, its key policy and its grants."""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable

import pulumi
import pytest
from pydantic import ValidationError

from emlops.components.iam import ServiceRole, ServiceRoleArgs
from emlops.components.kms import KmsKey, KmsKeyArgs, KmsSettings
from emlops.offline.mocks import AwsIdentity
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, IDENTITY, REGION, run_components

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:KmsKey"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
KEY_USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
S3_VIA = f"s3.{REGION}.amazonaws.com"


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def key_plan(name: str = "data", identity: AwsIdentity = IDENTITY,
             grant: Callable[[KmsKey, ServiceRole], Any] | None = None, **args) -> Plan:
    """The plan of one KmsKey (and, with `grant`, a role `app` granted use of it).

    The key's id and ARN and the alias's ARNs are exported so tests can compare them.
    """
    key_args = {"description": "Encrypts data", **args}

    def program() -> None:
        key = KmsKey(name, KmsKeyArgs(**key_args))
        pulumi.export("keyId", key.key_id)
        pulumi.export("keyArn", key.arn)
        pulumi.export("aliasArn", key.alias.arn)
        pulumi.export("aliasTargetKeyArn", key.alias.target_key_arn)
        if grant is not None:
            grant(key, ServiceRole("app", ServiceRoleArgs(services=["sagemaker.amazonaws.com"])))
    return run_components(program, identity=identity)


def key_policy(plan: Plan, name: str = "data-key") -> dict[str, Any]:
    return json.loads(plan.get(name).inputs["policy"])


def root_statement(account: str = ACCOUNT, partition: str = "aws") -> dict[str, Any]:
    return {
        "Sid": "AccountRootManagesKey",
        "Effect": "Allow",
        "Principal": {"AWS": [f"arn:{partition}:iam::{account}:root"]},
        "Action": ["kms:*"],
        "Resource": ["*"],
    }


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# -- KmsKeyArgs -------------------------------------------------------------------------------------

ALIAS_RULE = "must be 1-250 letters, digits, '/', '_' or '-' and not start with 'aws/'"


@pytest.mark.parametrize("changes, message", [
    ({"description": "  "}, "KmsKey needs a description of what it protects"),
    ({"alias": "aws/data"}, f"alias 'aws/data' {ALIAS_RULE}"),
    ({"alias": "AWS/data"}, f"alias 'AWS/data' {ALIAS_RULE}"),
    ({"alias": "ml data"}, f"alias 'ml data' {ALIAS_RULE}"),
    ({"alias": ""}, f"alias '' {ALIAS_RULE}"),
    ({"alias": "a" * 251}, f"alias {'a' * 251!r} {ALIAS_RULE}"),
    ({"alias": "alias/data"}, "alias 'alias/data': give the name without the 'alias/' prefix"),
    ({"service_principals": ["logs"]}, "service principal 'logs' must look like 'logs.eu-west-1.amazonaws.com'"),
])
def test_kms_key_args_reject_with_a_message(changes, message):
    args = {"description": "Encrypts data", **changes}
    assert error_of(lambda: KmsKeyArgs(**args)) == message


@pytest.mark.parametrize("raw, field, message", [
    ({"deletion_window_days": 6}, "deletion_window_days", "Input should be greater than or equal to 7"),
    ({"deletion_window_days": 31}, "deletion_window_days", "Input should be less than or equal to 30"),
    ({"rotation_period_days": 89}, "rotation_period_days", "Input should be greater than or equal to 90"),
    ({"rotation_period_days": 2561}, "rotation_period_days", "Input should be less than or equal to 2560"),
])
def test_kms_settings_reject_with_a_message(raw, field, message):
    with pytest.raises(ValidationError) as caught:
        KmsSettings.model_validate(raw)
    assert [(error["loc"], error["msg"]) for error in caught.value.errors()] == [((field,), message)]


def test_kms_settings_default_to_thirty_days_and_yearly_rotation():
    assert KmsKeyArgs(description="d").settings == KmsSettings(deletion_window_days=30, rotation_period_days=365)


def test_kms_key_args_accept_the_edges_of_each_range():
    low = KmsKeyArgs(description="d", settings=KmsSettings.model_validate(
        {"deletion_window_days": 7, "rotation_period_days": 90}), alias="a")
    high = KmsKeyArgs(description="d", settings=KmsSettings.model_validate(
        {"deletion_window_days": 30, "rotation_period_days": 2560}), alias="a" * 250,
        service_principals=["logs.cn-north-1.amazonaws.com.cn"])
    assert (low.settings.deletion_window_days, low.settings.rotation_period_days) == (7, 90)
    assert (high.settings.deletion_window_days, high.settings.rotation_period_days) == (30, 2560)


# -- KmsKey -----------------------------------------------------------------------------------------

def test_kms_key_creates_exactly_a_key_and_an_alias_named_after_it():
    plan = key_plan()
    component = plan.get("data", COMPONENT)
    children = [(r.type, r.name, r.custom) for r in plan.children(component.urn)]
    assert children == [(KEY, "data-key", True), (ALIAS, "data-alias", True)]
    assert plan.type_counts() == {STACK: 1, COMPONENT: 1, KEY: 1, ALIAS: 1}


def test_kms_key_defaults_to_a_rotating_symmetric_single_region_key():
    inputs = dict(key_plan().get("data-key").inputs)
    inputs.pop("policy")
    assert inputs == {
        "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
        "deletionWindowInDays": 30,
        "description": "Encrypts data",
        "enableKeyRotation": True,
        "keyUsage": "ENCRYPT_DECRYPT",
        "multiRegion": False,
        "rotationPeriodInDays": 365,
        "tags": {},
    }


def test_kms_key_passes_windows_and_tags_to_the_key():
    settings = KmsSettings(deletion_window_days=7, rotation_period_days=90)
    inputs = key_plan(settings=settings, tags={"owner": "ml-team"}).get("data-key").inputs
    assert (inputs["deletionWindowInDays"], inputs["rotationPeriodInDays"]) == (7, 90)
    assert inputs["tags"] == {"owner": "ml-team"}
    assert inputs["enableKeyRotation"] is True


def test_alias_defaults_to_emlops_and_targets_the_key_id():
    plan = key_plan()
    key_id = plan.outputs["keyId"]
    assert str(uuid.UUID(key_id)) == key_id
    assert plan.get("data-alias").inputs == {"name": "alias/emlops/data", "targetKeyId": key_id}
    assert plan.get("data-alias").dependencies == [plan.get("data-key").urn]


def test_alias_uses_the_given_name_under_alias_prefix():
    assert key_plan(alias="ml/dev/data").get("data-alias").inputs["name"] == "alias/ml/dev/data"


def test_key_and_alias_arns_are_in_kms_format_for_the_account_and_region():
    outputs = key_plan().outputs
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{outputs['keyId']}"
    assert outputs == {
        "keyId": outputs["keyId"],
        "keyArn": key_arn,
        "aliasArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/emlops/data",
        "aliasTargetKeyArn": key_arn,
    }


def test_default_key_policy_trusts_only_the_account_root():
    assert key_policy(key_plan()) == document(root_statement())


def test_key_policy_lets_named_roles_use_the_key():
    reader = f"arn:aws:iam::{ACCOUNT}:role/reader"
    writer = f"arn:aws:iam::{ACCOUNT}:role/writer"
    assert key_policy(key_plan(user_role_arns=[reader, writer])) == document(root_statement(), {
        "Sid": "NamedRolesUseKey",
        "Effect": "Allow",
        "Principal": {"AWS": [reader, writer]},
        "Action": KEY_USE_ACTIONS,
        "Resource": ["*"],
    })


def test_key_policy_lets_services_use_the_key_for_this_account_only():
    plan = key_plan(service_principals=["sns.amazonaws.com"])
    assert key_policy(plan) == document(root_statement(), {
        "Sid": "ServicesUseKeyForThisAccount",
        "Effect": "Allow",
        "Principal": {"Service": ["sns.amazonaws.com"]},
        "Action": KEY_USE_ACTIONS,
        "Resource": ["*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    })


def test_key_policy_scopes_cloudwatch_logs_by_the_log_group_in_the_encryption_context():
    plan = key_plan(service_principals=["logs.eu-west-1.amazonaws.com"])
    assert key_policy(plan) == document(root_statement(), {
        "Sid": "CloudWatchLogsUseKeyForThisAccount",
        "Effect": "Allow",
        "Principal": {"Service": ["logs.eu-west-1.amazonaws.com"]},
        "Action": KEY_USE_ACTIONS,
        "Resource": ["*"],
        "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:*"}},
    })


@pytest.mark.parametrize("identity, principal", [
    (IDENTITY, f"logs.{REGION}.amazonaws.com"),
    (AwsIdentity("210987654321", "cn-north-1"), "logs.cn-north-1.amazonaws.com.cn")])
def test_key_policy_lets_cloudwatch_logs_of_its_region_use_the_key_for_exactly_the_named_log_groups(identity,
                                                                                                     principal):
    partition = "aws-cn" if identity.region.startswith("cn-") else "aws"
    groups = [f"arn:{partition}:logs:{identity.region}:{identity.account_id}:log-group:/emlops/{group}"
              for group in ("a", "b")]
    plan = key_plan(identity=identity, log_group_arns=groups)
    assert key_policy(plan) == document(root_statement(identity.account_id, partition), {
        "Sid": "CloudWatchLogsUseKeyForTheseLogGroups",
        "Effect": "Allow",
        "Principal": {"Service": [principal]},
        "Action": KEY_USE_ACTIONS,
        "Resource": ["*"],
        "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": groups}},
    })


def test_key_policy_and_arns_follow_the_partition_of_the_identity():
    plan = key_plan(identity=AwsIdentity("210987654321", "cn-north-1"))
    assert key_policy(plan) == document(root_statement(account="210987654321", partition="aws-cn"))
    assert plan.outputs["keyArn"] == f"arn:aws-cn:kms:cn-north-1:210987654321:key/{plan.outputs['keyId']}"


def protection(plan: Plan) -> dict[str, tuple[bool, bool]]:
    return {r.name: (r.protect, r.retain_on_delete) for r in plan.resources if r.type != STACK}


def test_protect_keeps_the_key_but_not_the_replaceable_alias():
    assert protection(key_plan(protect=True)) == {
        "data": (False, False), "data-key": (True, True), "data-alias": (False, False)}


def test_unprotected_key_is_neither_protected_nor_retained():
    assert protection(key_plan()) == {"data": (False, False), "data-key": (False, False), "data-alias": (False, False)}


# -- grants -----------------------------------------------------------------------------------------

def grant_document(plan: Plan, name: str) -> dict[str, Any]:
    policy = plan.get(name)
    assert policy.type == ROLE_POLICY
    assert policy.parent == plan.get("app", "emlops:index:ServiceRole").urn
    assert policy.inputs["role"] == plan.get("app-role").inputs["name"]
    return json.loads(policy.inputs["policy"])


@pytest.mark.parametrize("via_service, condition", [
    (None, {}),
    (S3_VIA, {"Condition": {"StringEquals": {"kms:ViaService": S3_VIA}}}),
])
def test_grant_decrypt_allows_describe_and_decrypt_on_this_key(via_service, condition):
    plan = key_plan(grant=lambda key, role: key.grant_decrypt(role, via_service=via_service))
    assert grant_document(plan, "app-decrypt-data") == document({
        "Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:Decrypt"],
        "Resource": [plan.outputs["keyArn"]],
        **condition,
    })
    assert plan.type_counts()[ROLE_POLICY] == 1


@pytest.mark.parametrize("via_service, condition", [
    (None, {}),
    (S3_VIA, {"Condition": {"StringEquals": {"kms:ViaService": S3_VIA}}}),
])
def test_grant_encrypt_decrypt_allows_data_key_use_on_this_key(via_service, condition):
    plan = key_plan(grant=lambda key, role: key.grant_encrypt_decrypt(role, via_service=via_service))
    assert grant_document(plan, "app-use-data") == document({
        "Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                   "kms:ReEncryptFrom", "kms:ReEncryptTo"],
        "Resource": [plan.outputs["keyArn"]],
        **condition,
    })
    assert plan.type_counts()[ROLE_POLICY] == 1


def test_both_grants_on_one_role_are_two_separate_policies():
    def grant_both(key: KmsKey, role: ServiceRole) -> None:
        key.grant_decrypt(role)
        key.grant_encrypt_decrypt(role)

    plan = key_plan(grant=grant_both)
    assert [r.name for r in plan.by_type(ROLE_POLICY)] == ["app-decrypt-data", "app-use-data"]


def test_granting_decrypt_twice_to_one_role_is_refused():
    def grant_twice(key: KmsKey, role: ServiceRole) -> None:
        key.grant_decrypt(role)
        key.grant_decrypt(role, via_service=S3_VIA)

    assert error_of(lambda: key_plan(grant=grant_twice)) == "role 'app' already has a policy named 'decrypt-data'"
