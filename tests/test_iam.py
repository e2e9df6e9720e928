"""IAM: the statement guardrails, service roles under the mocks, named inline policies and PassRole."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import pytest

from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, kms_usage_statement, policy_document
from emlops.offline.plan import Plan
from tests.conftest import ACCOUNT, run_components

SAGEMAKER = "sagemaker.amazonaws.com"
STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:ServiceRole"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ACTION_HINT = "is not allowed: name a single service action like 's3:GetObject'"


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def role_plan(name: str = "builder", after: Callable[[ServiceRole], Any] = lambda role: None, **args) -> Plan:
    """The plan of one ServiceRole (SageMaker unless `services` is given); `after` may add policies."""
    role_args = {"services": [SAGEMAKER], **args}

    def program() -> None:
        after(ServiceRole(name, ServiceRoleArgs(**role_args)))
    return run_components(program)


def document(plan: Plan, name: str, field: str = "policy") -> dict[str, Any]:
    return json.loads(plan.get(name).inputs[field])


def trust_policy(*services: str, account: str = ACCOUNT) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": list(services)},
        "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }]}


# -- Statement guardrails ---------------------------------------------------------------------------

def test_statement_rejects_the_bare_star_action():
    assert error_of(lambda: Statement(actions=["*"], resources=["*"])) == f"IAM action '*' {ACTION_HINT}"


@pytest.mark.parametrize("action", ["s3GetObject", "S3:GetObject", "s3:", ":GetObject", "s3:Get Object",
                                    "s3:Get-Object", "s3:GetObject:x"])
def test_statement_rejects_actions_not_shaped_service_colon_action(action):
    assert error_of(lambda: Statement(actions=["s3:ListBucket", action])) == f"IAM action {action!r} {ACTION_HINT}"


def test_statement_accepts_service_scoped_actions_and_wildcards():
    statement = Statement(actions=["s3:GetObject", "kms:ReEncrypt*", "sagemaker-geospatial:ListJobs"])
    assert statement.to_json()["Action"] == ["s3:GetObject", "kms:ReEncrypt*", "sagemaker-geospatial:ListJobs"]


def test_statement_rejects_pass_role_on_every_role():
    message = error_of(lambda: Statement(actions=["iam:GetRole", "iam:PassRole"], resources=["*"]))
    assert message == "iam:PassRole on '*' is not allowed: pass only the roles a service needs"


def test_statement_allows_pass_role_on_named_roles_and_denying_it_everywhere():
    allow = Statement(actions=["iam:PassRole"], resources=[f"arn:aws:iam::{ACCOUNT}:role/job"])
    deny = Statement(actions=["iam:PassRole"], resources=["*"], effect="Deny")
    assert allow.to_json()["Resource"] == [f"arn:aws:iam::{ACCOUNT}:role/job"]
    assert deny.to_json() == {"Effect": "Deny", "Action": ["iam:PassRole"], "Resource": ["*"]}


@pytest.mark.parametrize("action", ["iam:passrole", "iam:Pass*", "iam:*"])
def test_statement_rejects_pass_role_on_every_role_however_it_is_spelled(action):
    assert error_of(lambda: Statement(actions=[action], resources=["*"])) == (
        "iam:PassRole on '*' is not allowed: pass only the roles a service needs")


def test_statement_rejects_allow_for_any_principal():
    message = error_of(lambda: Statement(actions=["s3:GetObject"], resources=["*"], principals="*"))
    assert message == ("an Allow statement may name Principal '*' only with an aws:PrincipalAccount or "
                       "aws:PrincipalOrgID condition")


def test_statement_allows_any_principal_of_a_named_account():
    """What a VPC endpoint policy says: any principal, as long as it is one of this account's."""
    condition = {"StringEquals": {"aws:PrincipalAccount": ["123456789012"]}}
    allowed = Statement(actions=["s3:*"], resources=["*"], principals="*", conditions=condition)
    assert allowed.to_json() == {"Effect": "Allow", "Principal": "*", "Action": ["s3:*"], "Resource": ["*"],
                                 "Condition": condition}
    # the key under a negated operator pins nothing
    message = error_of(lambda: Statement(actions=["s3:*"], resources=["*"], principals="*", conditions={
        "StringNotEquals": {"aws:PrincipalAccount": ["123456789012"]}}))
    assert message.startswith("an Allow statement may name Principal '*' only with")


def test_statement_allows_deny_for_any_principal():
    deny = Statement(actions=["s3:*"], resources=["*"], effect="Deny", principals="*")
    assert deny.to_json() == {"Effect": "Deny", "Principal": "*", "Action": ["s3:*"], "Resource": ["*"]}


def test_statement_rejects_allow_for_any_aws_principal():
    message = error_of(lambda: Statement(actions=["s3:GetObject"], resources=["*"], principals={"AWS": ["*"]}))
    assert message == "an Allow statement may not name Principal '*'"


def test_statement_without_actions_names_its_sid():
    message = error_of(lambda: Statement(actions=[], sid="ReadData"))
    assert message == "statement ReadData has no actions; name at least one 'service:Action'"


def test_statement_without_actions_or_sid_reads_cleanly():
    message = error_of(lambda: Statement(actions=[]))
    assert message == "statement has no actions; name at least one 'service:Action'"


@pytest.mark.parametrize("sid", ["Read-Data", "read data", "Read_Data", ""])
def test_statement_rejects_sids_that_are_not_alphanumeric(sid):
    message = error_of(lambda: Statement(actions=["s3:GetObject"], sid=sid))
    assert message == f"statement id {sid!r} must be letters and digits only"


def test_statement_json_uses_aws_key_order_and_plain_lists():
    statement = Statement(
        sid="LogsDeliver",
        effect="Allow",
        principals={"Service": ("logs.amazonaws.com",)},
        actions=("s3:PutObject",),
        resources=("arn:aws:s3:::b/*",),
        conditions={"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    )
    out = statement.to_json()
    assert list(out) == ["Sid", "Effect", "Principal", "Action", "Resource", "Condition"]
    assert out == {
        "Sid": "LogsDeliver",
        "Effect": "Allow",
        "Principal": {"Service": ["logs.amazonaws.com"]},
        "Action": ["s3:PutObject"],
        "Resource": ["arn:aws:s3:::b/*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    }


def test_statement_json_leaves_out_what_was_not_given():
    assert Statement(actions=["sts:GetCallerIdentity"]).to_json() == {
        "Effect": "Allow", "Action": ["sts:GetCallerIdentity"]}


def test_policy_document_needs_a_statement():
    assert error_of(lambda: policy_document([])) == "a policy document needs at least one statement"


def test_kms_usage_statement_for_decrypt_only():
    statement = kms_usage_statement("arn:aws:kms:eu-west-1:123456789012:key/k", encrypt=False, decrypt=True)
    assert statement.to_json() == {
        "Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:Decrypt"],
        "Resource": ["arn:aws:kms:eu-west-1:123456789012:key/k"],
    }


def test_kms_usage_statement_for_encryption_through_one_service():
    statement = kms_usage_statement("arn:k", encrypt=True, decrypt=True,
                                    via_service="s3.eu-west-1.amazonaws.com", sid="UseKey")
    assert statement.to_json() == {
        "Sid": "UseKey",
        "Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey",
                   "kms:ReEncryptFrom", "kms:ReEncryptTo"],
        "Resource": ["arn:k"],
        "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}},
    }


# -- ServiceRoleArgs --------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"services": []}, "ServiceRole needs at least one service principal, e.g. 'sagemaker.amazonaws.com'"),
    ({"services": [SAGEMAKER, "sagemaker"]}, "service principal 'sagemaker' must look like 'sagemaker.amazonaws.com'"),
    ({"services": ["arn:aws:iam::123456789012:root"]},
     "service principal 'arn:aws:iam::123456789012:root' must look like 'sagemaker.amazonaws.com'"),
    ({"max_session_duration_seconds": 3599}, "max_session_duration_seconds (3599) must be 3600-43200"),
    ({"max_session_duration_seconds": 43201}, "max_session_duration_seconds (43201) must be 3600-43200"),
    ({"path": "ml"}, "role path 'ml' must start and end with '/'"),
    ({"path": "/ml"}, "role path '/ml' must start and end with '/'"),
    ({"path": "ml/"}, "role path 'ml/' must start and end with '/'"),
    ({"path": "/ml//"}, "role path '/ml//' must start and end with '/'"),
    ({"permissions_boundary_arn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
     "a *FullAccess managed policy cannot serve as a permissions boundary"),
    ({"permissions_boundary_arn": "arn:aws-cn:iam::aws:policy/AmazonSageMakerFullAccess"},
     "a *FullAccess managed policy cannot serve as a permissions boundary"),
])
def test_service_role_args_reject_with_a_message(changes, message):
    args = {"services": [SAGEMAKER], **changes}
    assert error_of(lambda: ServiceRoleArgs(**args)) == message


def test_service_role_args_accept_the_edges_of_each_range():
    low = ServiceRoleArgs(services=["sagemaker.amazonaws.com.cn"], max_session_duration_seconds=3600)
    high = ServiceRoleArgs(services=[SAGEMAKER], max_session_duration_seconds=43200, path="/ml/jobs/",
                           permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/NotFullAccessBoundary")
    assert (low.max_session_duration_seconds, high.max_session_duration_seconds) == (3600, 43200)
    assert high.path == "/ml/jobs/"


# -- ServiceRole under the mocks --------------------------------------------------------------------

def test_service_role_creates_exactly_one_role_named_after_it():
    plan = role_plan()
    component = plan.get("builder", COMPONENT)
    assert [(r.type, r.name, r.custom) for r in plan.children(component.urn)] == [(ROLE, "builder-role", True)]
    assert plan.type_counts() == {STACK: 1, COMPONENT: 1, ROLE: 1}


def test_service_role_defaults_trust_the_service_for_this_account_only():
    plan = role_plan()
    inputs = dict(plan.get("builder-role").inputs)
    assert re.fullmatch(r"builder-role-[0-9a-f]{7}", inputs.pop("name"))
    assert json.loads(inputs.pop("assumeRolePolicy")) == trust_policy(SAGEMAKER)
    assert inputs == {"maxSessionDuration": 3600, "path": "/", "tags": {}}


def test_service_role_passes_every_argument_to_the_role():
    plan = role_plan(
        services=[SAGEMAKER, "states.amazonaws.com"],
        description="Training jobs",
        permissions_boundary_arn=f"arn:aws:iam::{ACCOUNT}:policy/boundary",
        source_account_id="210987654321",
        max_session_duration_seconds=7200,
        path="/ml/",
        tags={"owner": "ml-team"},
    )
    inputs = dict(plan.get("builder-role").inputs)
    inputs.pop("name")
    assert json.loads(inputs.pop("assumeRolePolicy")) == trust_policy(
        SAGEMAKER, "states.amazonaws.com", account="210987654321")
    assert inputs == {
        "description": "Training jobs",
        "maxSessionDuration": 7200,
        "path": "/ml/",
        "permissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/boundary",
        "tags": {"owner": "ml-team"},
    }


def test_add_policy_creates_a_named_inline_policy_on_the_role():
    statement = Statement(sid="ReadData", actions=["s3:GetObject"], resources=["arn:aws:s3:::data/*"])
    plan = role_plan(after=lambda role: role.add_policy("read-data", [statement]))
    component, role = plan.get("builder", COMPONENT), plan.get("builder-role")
    policy = plan.get("builder-read-data")
    assert (policy.type, policy.parent) == (ROLE_POLICY, component.urn)
    assert [r.name for r in plan.children(component.urn)] == ["builder-role", "builder-read-data"]
    assert policy.inputs["role"] == role.inputs["name"]
    assert re.fullmatch(r"builder-read-data-[0-9a-f]{7}", policy.inputs["name"])
    assert role.urn in policy.dependencies
    assert document(plan, "builder-read-data") == {"Version": "2012-10-17", "Statement": [{
        "Sid": "ReadData", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::data/*"],
    }]}


def test_add_policy_refuses_a_second_policy_of_the_same_name():
    statement = Statement(actions=["s3:GetObject"], resources=["arn:aws:s3:::data/*"])

    def twice(role: ServiceRole) -> None:
        role.add_policy("read", [statement])
        role.add_policy("read", [statement])

    assert error_of(lambda: role_plan(after=twice)) == "role 'builder' already has a policy named 'read'"


@pytest.mark.parametrize("policy_name", ["ReadData", "read_data", "-read", "read data", ""])
def test_add_policy_rejects_names_that_are_not_lowercase_words(policy_name):
    statement = Statement(actions=["s3:GetObject"], resources=["arn:aws:s3:::data/*"])
    message = error_of(lambda: role_plan(after=lambda role: role.add_policy(policy_name, [statement])))
    assert message == f"policy name {policy_name!r} must be lowercase letters, digits and '-'"


def pass_role_plan(job_name: str = "job", **job_args) -> Plan:
    def program() -> None:
        job = ServiceRole(job_name, ServiceRoleArgs(services=[SAGEMAKER], **job_args))
        pipeline = ServiceRole("pipeline", ServiceRoleArgs(services=["states.amazonaws.com"]))
        job.grant_pass_to(pipeline, SAGEMAKER)
    return run_components(program)


@pytest.mark.parametrize("path", ["/", "/ml/"])
def test_grant_pass_to_lets_the_grantee_pass_only_this_role_to_one_service(path):
    plan = pass_role_plan(path=path)
    job_role_name = plan.get("job-role").inputs["name"]
    policy = plan.get("pipeline-pass-job")
    assert policy.parent == plan.get("pipeline", COMPONENT).urn
    assert policy.inputs["role"] == plan.get("pipeline-role").inputs["name"]
    assert document(plan, "pipeline-pass-job") == {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": [f"arn:aws:iam::{ACCOUNT}:role{path}{job_role_name}"],
        "Condition": {"StringEquals": {"iam:PassedToService": SAGEMAKER}},
    }]}
    assert plan.type_counts()[ROLE_POLICY] == 1


def test_grant_pass_to_works_for_any_component_name():
    plan = pass_role_plan(job_name="TrainingJob")
    assert plan.type_counts()[ROLE_POLICY] == 1


@pytest.mark.parametrize("factory, message", [
    (lambda: Statement(actions="s3:GetObject"), "statement actions must be a list, e.g. ['s3:GetObject']"),
    (lambda: Statement(actions=["s3:GetObject"], resources="arn:aws:s3:::b/*"),
     "statement resources must be a list, e.g. ['arn:aws:s3:::b/*']"),
    (lambda: ServiceRoleArgs(services="sagemaker.amazonaws.com"),
     "services must be a list, e.g. ['sagemaker.amazonaws.com']"),
])
def test_a_single_string_where_a_list_belongs_is_named_as_such(factory, message):
    assert error_of(factory) == message


def test_add_policies_puts_every_concern_in_one_policy_with_a_sid_per_statement():
    def program():
        role = ServiceRole("svc", ServiceRoleArgs(services=["sagemaker.amazonaws.com"], description="d"))
        role.add_policies("permissions", {
            "read-data": [Statement(actions=["s3:GetObject"], resources=["arn:aws:s3:::b/*"]),
                          Statement(actions=["s3:ListBucket"], resources=["arn:aws:s3:::b"])],
            "logs": [Statement(actions=["logs:PutLogEvents"], resources=["arn:aws:logs:eu-west-1:123456789012:*"])],
        })

    plan = run_components(program)
    [policy] = plan.by_type("aws:iam/rolePolicy:RolePolicy")
    assert policy.name == "svc-permissions"
    assert [s["Sid"] for s in json.loads(policy.inputs["policy"])["Statement"]] == ["ReadData", "ReadData2", "Logs"]


def test_add_policies_rejects_a_bad_concern_name():
    def program():
        role = ServiceRole("svc", ServiceRoleArgs(services=["sagemaker.amazonaws.com"], description="d"))
        role.add_policies("permissions", {"Read_Data": [Statement(actions=["s3:GetObject"], resources=["*"])]})

    with pytest.raises(Exception, match="concern name 'Read_Data' must be lowercase letters, digits and '-'"):
        run_components(program)
