"""Personas: settings and context checks, each persona's trust and exact policies, how they differ."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from typing import Any, Callable, Optional

import pulumi
import pytest
from pydantic import ValidationError

from emlops.components.iam import Statement
from emlops.components.personas import Personas, PersonasContext, PersonasSettings
from emlops.components.personas_args import PERSONAS
from emlops.components.personas_policies import ADMIN_TAGGED_ACTIONS, KEY_ADMIN_ACTIONS, READ_ONLY_ACTIONS
from emlops.components.settings import Governance
from emlops.offline.plan import Plan
from emlops.program.platform import parse_platform_config
from emlops.program.platform import MlPlatform, PlatformContext
from tests.conftest import ACCOUNT, REGION, ROOT, policy_statements, run_components

STACK = "pulumi:pulumi:Stack"
COMPONENT = "emlops:index:Personas"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
DS, MLE, ADMIN, VIEWER = PERSONAS

SM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-4333-8444-555555555555"
DATASETS, ARTIFACTS = "arn:aws:s3:::dev-datasets-1a2b3c4", "arn:aws:s3:::dev-artifacts-5d6e7f8"
FEATURES = [f"{SM}:feature-group/dev-features-customers"]
GROUPS = [f"{SM}:model-package-group/churn", f"{SM}:model-package-group/fraud"]
PACKAGES = [f"{SM}:model-package/churn/*", f"{SM}:model-package/fraud/*"]
ENDPOINTS = [f"{SM}:endpoint/dev-churn"]
SCHEDULES = [f"{SM}:monitoring-schedule/dev-churn-monitor-9a8b7c6"]
PIPELINES = [f"{SM}:pipeline/dev-churn-retraining"]
TRAINING_ROLE = f"arn:aws:iam::{ACCOUNT}:role/dev-training-role-0f1e2d3"
PIPELINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/dev-churn-retraining-role-4c5b6a7"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
SECURITY_GROUPS = ["sg-0123456789abcdef0"]
IDENTITY_ACCOUNT = "210987654321"
SSO_DS = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*"
SSO_MLE = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_MlEngineer_*"
IDP_MLE = f"arn:aws:iam::{IDENTITY_ACCOUNT}:role/ml-engineers"
TAGS = {"owner": "ml-team", "environment": "dev", "managed-by": "emlops"}

# the context: what the platform supplies
MINIMAL: dict[str, Any] = dict(environment="dev", data_key_arn=KEY_ARN, datasets_bucket_arn=DATASETS,
                               artifacts_bucket_arn=ARTIFACTS)
FULL: dict[str, Any] = dict(
    MINIMAL, feature_group_arns=FEATURES, package_group_arns=GROUPS, endpoint_arns=ENDPOINTS,
    monitoring_schedule_arns=SCHEDULES, pipeline_arns=PIPELINES, training_role_arn=TRAINING_ROLE,
    job_subnet_ids=SUBNETS, job_security_group_ids=SECURITY_GROUPS, production=True,
    governance=Governance(tags=TAGS, permissions_boundary_arn=BOUNDARY))
# the settings: the stack file's `personas` section
FULL_SETTINGS: dict[str, Any] = {"trusted_principal_arns": {DS: [SSO_DS], MLE: [SSO_MLE, IDP_MLE]},
                                 "max_session_hours": 2}

VIA_S3 = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
PERSONA_ROLES = f"arn:aws:iam::{ACCOUNT}:role/personas/*"
JOBS = [f"{SM}:processing-job/*", f"{SM}:training-job/*"]
STATEFUL = ["kms:ScheduleKeyDeletion", "s3:DeleteBucket", "sagemaker:DeleteFeatureGroup",
            "sagemaker:DeleteModelPackageGroup"]
MANAGED_ROLES = f"arn:aws:iam::{ACCOUNT}:role/dev-*"


def error_of(factory: Callable[[], Any]) -> str:
    with pytest.raises(ValueError) as caught:
        factory()
    return str(caught.value)


def personas_plan(settings: Optional[dict[str, Any]] = None, **context: Any) -> Plan:
    """The plan of `Personas` with `settings` (shaped like the stack file's section) and `context`."""
    def program() -> None:
        personas = Personas("dev-personas", PersonasSettings.model_validate(settings or {}),
                            PersonasContext(**context))
        pulumi.export("roleArns", personas.role_arns)
    return run_components(program)


@functools.cache
def full_plan() -> Plan:
    return personas_plan(FULL_SETTINGS, **FULL)


@functools.cache
def minimal_plan() -> Plan:
    return personas_plan(**MINIMAL)


def document(plan: Plan, name: str, type_: str = ROLE_POLICY, field: str = "policy") -> list[dict[str, Any]]:
    parsed = json.loads(plan.get(name, type_).inputs[field])
    assert parsed["Version"] == "2012-10-17"
    return parsed["Statement"]


def policies(plan: Plan, persona: str) -> dict[str, list[dict[str, Any]]]:
    prefix = f"dev-personas-{persona}-"
    return {r.name.removeprefix(prefix): document(plan, r.name) for r in plan.by_type(ROLE_POLICY)
            if r.name.startswith(prefix)}


def allow(actions: list[str], resources: list[str], condition: Optional[dict] = None,
          sid: Optional[str] = None) -> dict[str, Any]:
    statement = {"Sid": sid} if sid else {}
    statement.update({"Effect": "Allow", "Action": actions, "Resource": resources})
    return {**statement, "Condition": condition} if condition else statement


def deny(sid: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Deny", "Action": actions, "Resource": resources}


def actions_of(plan: Plan, persona: str, effect: str = "Allow") -> set[str]:
    return {action for statements in policies(plan, persona).values() for s in statements if s["Effect"] == effect
            for action in s["Action"]}


def reads(bucket: str, prefix: str = "", write: bool = False) -> list[dict[str, Any]]:
    kms = ["kms:DescribeKey", "kms:Decrypt"] + (
        ["kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"] if write else [])
    objects = ["s3:GetObject", "s3:GetObjectVersion"] + (["s3:AbortMultipartUpload", "s3:PutObject"] if write else [])
    return [allow(["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None),
            allow(objects, [f"{bucket}/{prefix}*"]), allow(kms, [KEY_ARN], VIA_S3)]


def read_groups(groups: list[str], packages: list[str]) -> list[dict[str, Any]]:
    """Describing groups, listing and describing their versions (not on '*': ListModelPackages scoped too)."""
    return [allow(["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup",
                   "sagemaker:ListModelPackages"], groups + packages),
            allow(["sagemaker:ListModelPackageGroups"], ["*"])]


def run_jobs(roles: list[str], subnets: Optional[list[str]] = None,
             security_groups: Optional[list[str]] = None) -> list[dict[str, Any]]:
    guard: dict[str, Any] = {"Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                             "Bool": {"sagemaker:NetworkIsolation": "true"},
                             "ArnEquals": {"sagemaker:VolumeKmsKey": KEY_ARN, "sagemaker:OutputKmsKey": KEY_ARN}}
    placement = {}
    if subnets:
        placement["sagemaker:VpcSubnets"] = subnets
    if security_groups:
        placement["sagemaker:VpcSecurityGroupIds"] = security_groups
    if placement:
        guard["ForAllValues:StringEquals"] = placement
    logs = [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/{kind}:*"
            for kind in ("ProcessingJobs", "TrainingJobs")]
    return [
        allow(["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"], JOBS, guard,
              sid="StartJobsInVpcWithDataKey"),
        allow(["sagemaker:AddTags", "sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob",
               "sagemaker:StopProcessingJob", "sagemaker:StopTrainingJob"], JOBS),
        allow(["sagemaker:ListProcessingJobs", "sagemaker:ListTrainingJobs"], ["*"]),
        allow(["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"], logs),
        allow(["iam:PassRole"], roles, {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
              sid="PassJobRolesToSageMaker"),
    ]


# -- settings and context -------------------------------------------------------------------------

ROLE_FORM = "'arn:aws:iam::<account>:role/<name>'"
PRINCIPAL_HINT = ("must be an IAM role or user ARN ('*' allowed in the name), e.g. "
                  "'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*'")
PREFIX_PATTERN = ("must be folders each ending in '/' (not starting with '/'), without '*', '?', '${', control "
                  "characters or '.'/'..' folders, e.g. 'experiments/'")


@pytest.mark.parametrize("changes, message", [
    ({"environment": "Dev"}, "environment 'Dev' must be 2-16 lowercase letters, digits or '-'"),
    ({"environment": "d"}, "environment 'd' must be 2-16 lowercase letters, digits or '-'"),
    ({"data_key_arn": f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/data"},
     f"data_key_arn: 'arn:aws:kms:{REGION}:{ACCOUNT}:alias/data' must look like "
     "'arn:aws:kms:<region>:<account>:key/<id>'"),
    ({"datasets_bucket_arn": "dev-datasets"},
     "datasets_bucket_arn: 'dev-datasets' must look like 'arn:aws:s3:::<bucket>'"),
    ({"artifacts_bucket_arn": "arn:aws:s3:::Artifacts"},
     "artifacts_bucket_arn: 'arn:aws:s3:::Artifacts' must look like 'arn:aws:s3:::<bucket>'"),
    ({"feature_group_arns": FEATURES[0]}, f"feature_group_arns must be a list, e.g. [{FEATURES[0]!r}]"),
    ({"package_group_arns": [f"{SM}:model-package/churn/1"]},
     f"package_group_arns: '{SM}:model-package/churn/1' must look like "
     "'arn:aws:sagemaker:<region>:<account>:model-package-group/<name>'"),
    ({"endpoint_arns": ["dev-churn"]},
     "endpoint_arns: 'dev-churn' must look like 'arn:aws:sagemaker:<region>:<account>:endpoint/<name>'"),
    ({"monitoring_schedule_arns": [ENDPOINTS[0]]},
     f"monitoring_schedule_arns: '{ENDPOINTS[0]}' must look like "
     "'arn:aws:sagemaker:<region>:<account>:monitoring-schedule/<name>'"),
    ({"pipeline_arns": [f"{SM}:pipeline/*"]},
     f"pipeline_arns: '{SM}:pipeline/*' must look like 'arn:aws:sagemaker:<region>:<account>:pipeline/<name>'"),
    ({"training_role_arn": f"arn:aws:iam::{ACCOUNT}:role/*"},
     f"training_role_arn: 'arn:aws:iam::{ACCOUNT}:role/*' must look like {ROLE_FORM}"),
    ({"job_security_group_ids": ["*"]}, "job_security_group_ids: '*' must look like 'sg-<hex>'"),
    ({"job_security_group_ids": "sg-1"}, "job_security_group_ids must be a list, e.g. ['sg-1']"),
    ({"governance": Governance(permissions_boundary_arn="ml-boundary")},
     "permissions_boundary_arn: 'ml-boundary' must look like 'arn:aws:iam::<account>:policy/<name>'"),
    ({"governance": Governance(permissions_boundary_arn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")},
     "a *FullAccess managed policy cannot serve as a permissions boundary"),
    ({"job_subnet_ids": ["sn-1"]}, "job_subnet_ids: 'sn-1' must look like 'subnet-<hex>'"),
    ({"job_subnet_ids": SUBNETS[0]}, f"job_subnet_ids must be a list, e.g. [{SUBNETS[0]!r}]"),
    ({"name_prefix": "dev*"}, "name_prefix 'dev*' must be 2-32 letters, digits or '+=,.@_-'"),
])
def test_context_rejects_with_a_message(changes, message):
    assert error_of(PersonasContext(**{**MINIMAL, **changes}).check) == message


TRUSTED = ("trusted_principal_arns",)


@pytest.mark.parametrize("raw, at, message", [
    ({"max_session_hours": 0}, ("max_session_hours",), "Input should be greater than or equal to 1"),
    ({"max_session_hours": 13}, ("max_session_hours",), "Input should be less than or equal to 12"),
    ({"max_session_hours": 1.5}, ("max_session_hours",),
     "must be a whole number"),
    ({"datasets_prefix": "datasets"}, ("datasets_prefix",), PREFIX_PATTERN),
    ({"experiments_prefix": "/experiments/"}, ("experiments_prefix",), PREFIX_PATTERN),
    ({"experiments_prefix": "exp"}, ("experiments_prefix",), PREFIX_PATTERN),
    # data scientists write only under it
    ({"experiments_prefix": ""}, ("experiments_prefix",), PREFIX_PATTERN),
    # IAM reads '?' and '*' as wildcards and '${...}' as a variable: '??????/' would match 'models/'
    ({"experiments_prefix": "??????/"}, ("experiments_prefix",), PREFIX_PATTERN),
    ({"datasets_prefix": "raw*/"}, ("datasets_prefix",), PREFIX_PATTERN),
    ({"experiments_prefix": "${aws:username}/"}, ("experiments_prefix",), f"Value error, {PREFIX_PATTERN}"),
    ({"datasets_prefix": "raw/../"}, ("datasets_prefix",), f"Value error, {PREFIX_PATTERN}"),
    ({"datasets_prefix": "raw//"}, ("datasets_prefix",), f"Value error, {PREFIX_PATTERN}"),
    ({"experiments_prefix": "exp\n/"}, ("experiments_prefix",), PREFIX_PATTERN),
    ({"experiments_prefix": "models/scratch/"}, ("experiments_prefix",),
     "Value error, 'models/scratch/' is under models/, which only the platform's pipelines and MLflow write; "
     "choose another prefix, e.g. 'experiments/'"),
    ({"experiments_prefix": "mlflow/"}, ("experiments_prefix",),
     "Value error, 'mlflow/' is under mlflow/, which only the platform's pipelines and MLflow write; "
     "choose another prefix, e.g. 'experiments/'"),
    ({"identity_account_ids": ["12345"]}, ("identity_account_ids",),
     "Value error, '12345' is not a 12-digit AWS account id (quote it: '123456789012')"),
    ({"identity_account_ids": [IDENTITY_ACCOUNT, IDENTITY_ACCOUNT]}, ("identity_account_ids",),
     "Value error, account ids must be unique"),
    ({"trusted_principal_arns": {"admin": [SSO_DS]}}, TRUSTED,
     "Value error, unknown persona 'admin'; personas: data-scientist, ml-engineer, platform-admin, business-viewer"),
    ({"trusted_principal_arns": {DS: SSO_DS}}, (*TRUSTED, DS), "Input should be a valid list"),
    ({"trusted_principal_arns": {MLE: []}}, TRUSTED,
     "Value error, trusted_principal_arns['ml-engineer'] is empty; list who may assume ml-engineer or leave it out"),
    ({"trusted_principal_arns": {DS: [f"arn:aws:iam::{ACCOUNT}:root"]}}, TRUSTED,
     f"Value error, trusted principal 'arn:aws:iam::{ACCOUNT}:root' of data-scientist {PRINCIPAL_HINT}"),
    ({"trusted_principal_arns": {ADMIN: ["arn:aws:iam::*:role/admins"]}}, TRUSTED,
     f"Value error, trusted principal 'arn:aws:iam::*:role/admins' of platform-admin {PRINCIPAL_HINT}"),
    ({"trusted_principal_arns": {DS: [SSO_DS], MLE: [SSO_MLE, SSO_DS]}}, TRUSTED,
     f"Value error, principal {SSO_DS!r} may assume both data-scientist and ml-engineer; "
     "give each principal one persona"),
    ({"max_session_hour": 2}, ("max_session_hour",), "Extra inputs are not permitted"),
])
def test_settings_reject_with_a_message(raw, at, message):
    with pytest.raises(ValidationError) as caught:
        PersonasSettings.model_validate(raw)
    assert [(error["loc"], error["msg"]) for error in caught.value.errors()] == [(at, message)]


def test_the_context_is_checked_before_anything_is_created():
    assert error_of(lambda: personas_plan(**{**MINIMAL, "environment": "Dev"})) == (
        "environment 'Dev' must be 2-16 lowercase letters, digits or '-'")


def test_defaults():
    settings, context = PersonasSettings.model_validate({}), PersonasContext(**MINIMAL)
    assert (settings.trusted_principal_arns, settings.max_session_hours, settings.require_mfa,
            settings.datasets_prefix, settings.experiments_prefix, settings.identity_account_ids) == (
        {}, 4, None, "", "experiments/", [])
    assert (context.managed_prefix, context.platform_tags, context.permissions_boundary_arn) == (
        "dev-", {"environment": "dev", "managed-by": "emlops"}, None)
    assert (settings.mfa_required(False), settings.mfa_required(True)) == (False, True)
    chosen = PersonasSettings.model_validate({"trusted_principal_arns": {DS: [SSO_DS]}, "max_session_hours": 1,
                                              "require_mfa": False, "experiments_prefix": "research/"})
    assert (chosen.trusted_principal_arns, chosen.max_session_hours, chosen.mfa_required(True),
            chosen.experiments_prefix) == ({DS: [SSO_DS]}, 1, False, "research/")
    assert PersonasSettings(require_mfa=True).mfa_required(False) is True


# -- children and roles -----------------------------------------------------------------------------

POLICY_NAMES = {
    DS: ["read-datasets", "experiments", "read-features", "register-models", "run-jobs", "guardrails"],
    MLE: ["read-artifacts", "approve-models", "run-pipelines", "operate-endpoints", "guardrails"],
    ADMIN: ["administer-tagged", "administer-roles", "administer-data-key", "read-only", "guardrails"],
    VIEWER: ["view-dashboards", "view-model-cards", "view-approvals", "view-cost", "guardrails"],
}


def test_children_are_four_roles_and_their_named_policies():
    plan = full_plan()
    component = plan.get("dev-personas", COMPONENT)
    assert component.parent == plan.get("emlops-test", STACK).urn
    assert [(r.type, r.name) for r in plan.children(component.urn)] == [
        (ROLE, f"dev-personas-{p}") for p in PERSONAS] + [
        (ROLE_POLICY, f"dev-personas-{p}-{policy}") for p in PERSONAS for policy in POLICY_NAMES[p]]
    assert plan.type_counts() == {STACK: 1, COMPONENT: 1, ROLE: 4, ROLE_POLICY: 21}


def test_without_optional_resources_only_the_unconditional_policies_exist():
    plan = minimal_plan()
    # without a permissions boundary, platform admins have no IAM writes (no administer-roles)
    assert [r.name for r in plan.by_type(ROLE_POLICY)] == [f"dev-personas-{p}-{policy}" for p, policy in [
        (DS, "read-datasets"), (DS, "experiments"), (DS, "guardrails"), (MLE, "read-artifacts"), (MLE, "guardrails"),
        *[(ADMIN, policy) for policy in POLICY_NAMES[ADMIN] if policy != "administer-roles"],
        *[(VIEWER, policy) for policy in POLICY_NAMES[VIEWER] if policy != "view-approvals"]]]


@pytest.mark.parametrize("persona", PERSONAS)
def test_roles_carry_path_boundary_session_limit_and_tags(persona):
    plan = full_plan()
    role = plan.get(f"dev-personas-{persona}", ROLE)
    name = role.inputs["name"]
    assert re.fullmatch(rf"dev-personas-{persona}-[0-9a-f]{{7}}", name)
    assert {k: v for k, v in role.inputs.items() if k not in ("assumeRolePolicy", "name")} == {
        "description": f"{persona} persona of the dev ML platform",
        "maxSessionDuration": 7200,
        "path": "/personas/",
        "permissionsBoundary": BOUNDARY,
        "tags": TAGS,
    }
    assert plan.outputs["roleArns"][persona] == f"arn:aws:iam::{ACCOUNT}:role/personas/{name}"
    policy = plan.get(f"dev-personas-{persona}-guardrails", ROLE_POLICY)
    assert policy.inputs["role"] == name


def test_without_a_boundary_roles_have_none_and_sessions_last_four_hours():
    plan = minimal_plan()
    for persona in PERSONAS:
        inputs = plan.get(f"dev-personas-{persona}", ROLE).inputs
        assert "permissionsBoundary" not in inputs and inputs["maxSessionDuration"] == 14400
    assert sorted(plan.outputs["roleArns"]) == sorted(PERSONAS)


# -- trust ------------------------------------------------------------------------------------------

NOT_A_PERSONA = {"ArnNotLike": {"aws:PrincipalArn": PERSONA_ROLES}}
MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


def trust(roots: list[str], condition: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"Effect": "Allow", "Principal": {"AWS": roots}, "Action": ["sts:AssumeRole", "sts:TagSession"],
             "Condition": condition}]


def trust_of(plan: Plan, persona: str) -> list[dict[str, Any]]:
    return document(plan, f"dev-personas-{persona}", ROLE, "assumeRolePolicy")


def sso_tagged(persona: str, *accounts: str) -> dict[str, Any]:
    """The default trust's conditions: an Identity Center role of these accounts AND the persona's tag."""
    return {"ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{a}:role/aws-reserved/sso.amazonaws.com/*"
                                             for a in accounts]},
            "StringEquals": {"aws:PrincipalTag/emlops-persona": persona}}


@pytest.mark.parametrize("persona", PERSONAS)
def test_default_trust_is_this_accounts_identity_center_roles_tagged_with_the_persona(persona):
    # a tag alone is not enough: people may tag their own sessions
    assert trust_of(minimal_plan(), persona) == trust([f"arn:aws:iam::{ACCOUNT}:root"], {
        **sso_tagged(persona, ACCOUNT), **NOT_A_PERSONA})


def test_default_trust_includes_the_identity_accounts():
    plan = personas_plan({"identity_account_ids": [IDENTITY_ACCOUNT]}, **MINIMAL)
    assert trust_of(plan, DS) == trust([f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{IDENTITY_ACCOUNT}:root"], {
        **sso_tagged(DS, ACCOUNT, IDENTITY_ACCOUNT), **NOT_A_PERSONA})


def test_listed_principals_are_matched_by_arn_and_production_requires_mfa():
    plan = full_plan()
    assert trust_of(plan, DS) == trust([f"arn:aws:iam::{ACCOUNT}:root"], {
        "ArnLike": {"aws:PrincipalArn": [SSO_DS]}, **NOT_A_PERSONA, **MFA})
    # a principal of an identity account: that account's root is trusted, the ARN condition narrows it
    assert trust_of(plan, MLE) == trust([f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{IDENTITY_ACCOUNT}:root"], {
        "ArnLike": {"aws:PrincipalArn": [SSO_MLE, IDP_MLE]}, **NOT_A_PERSONA, **MFA})
    assert trust_of(plan, ADMIN) == trust([f"arn:aws:iam::{ACCOUNT}:root"], {
        **sso_tagged(ADMIN, ACCOUNT), **NOT_A_PERSONA, **MFA})


@pytest.mark.parametrize("settings, production, mfa", [({"require_mfa": False}, True, False),
                                                       ({"require_mfa": True}, False, True), ({}, True, True)])
def test_require_mfa_overrides_the_production_default(settings, production, mfa):
    statement = trust_of(personas_plan(settings, **MINIMAL, production=production), DS)[0]
    assert ("Bool" in statement["Condition"]) is mfa


# -- exact policies ---------------------------------------------------------------------------------

def test_data_scientist_policies():
    assert policies(full_plan(), DS) == {
        "read-datasets": reads(DATASETS),
        "experiments": reads(ARTIFACTS, "experiments/", write=True),
        "read-features": [
            allow(["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord"], FEATURES),
            allow(["sagemaker:ListFeatureGroups"], ["*"]),
            allow(["kms:DescribeKey", "kms:Decrypt"], [KEY_ARN]),
        ],
        "register-models": [
            *read_groups(GROUPS, PACKAGES),
            allow(["sagemaker:CreateModelPackage"], GROUPS + PACKAGES,
                  {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}},
                  sid="RegisterForApprovalOnly"),
        ],
        "run-jobs": run_jobs([TRAINING_ROLE], SUBNETS, SECURITY_GROUPS),
        "guardrails": [
            deny("KeepStatefulResources", STATEFUL, ["*"]),
            deny("NoApprovalNoEndpointChanges", [
                "sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpoint",
                "sagemaker:UpdateEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:UpdateModelPackage"], ["*"]),
        ],
    }


def test_ml_engineer_policies():
    assert policies(full_plan(), MLE) == {
        "read-artifacts": reads(ARTIFACTS),
        "approve-models": [*read_groups(GROUPS, PACKAGES), allow(["sagemaker:UpdateModelPackage"], PACKAGES)],
        "run-pipelines": [
            allow(["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions",
                   "sagemaker:StartPipelineExecution"], PIPELINES),
            allow(["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps",
                   "sagemaker:StopPipelineExecution"], [f"{PIPELINES[0]}/execution/*"]),
            allow(["sagemaker:ListPipelines"], ["*"]),
        ],
        "operate-endpoints": [
            allow(["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"], ENDPOINTS),
            allow(["sagemaker:DescribeEndpointConfig"], [f"{SM}:endpoint-config/dev-*"]),
            allow(["sagemaker:DescribeMonitoringSchedule", "sagemaker:StartMonitoringSchedule",
                   "sagemaker:StopMonitoringSchedule"], SCHEDULES),
            allow(["sagemaker:ListEndpoints", "sagemaker:ListMonitoringExecutions",
                   "sagemaker:ListMonitoringSchedules"], ["*"]),
        ],
        # no run-jobs: every job role reads datasets, which ML engineers may not
        "guardrails": [deny("KeepStatefulResources", STATEFUL, ["*"])],
    }


ROLE_WRITES = ["iam:AttachRolePolicy", "iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePermissionsBoundary",
               "iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy",
               "iam:TagRole", "iam:UntagRole", "iam:UpdateAssumeRolePolicy", "iam:UpdateRole",
               "iam:UpdateRoleDescription"]


def admin_policies(boundary: Optional[str], tags: dict[str, str], prefix: str = "dev-") -> dict[str, Any]:
    roles = f"arn:aws:iam::{ACCOUNT}:role/emlops/dev/*"
    bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    tagged = {"StringEquals": {f"aws:ResourceTag/{k}": v for k, v in tags.items()}}
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    policies = {
        "administer-tagged": [
            allow(ADMIN_TAGGED_ACTIONS, ["*"], tagged, sid="AdministerPlatformResources"),
            allow(["sagemaker:AddTags", "sagemaker:DeleteTags"], ["*"],
                  {**tagged, "ForAllValues:StringNotEquals": {"aws:TagKeys": list(tags)}}, sid="TagPlatformResources"),
        ],
        # roles on the platform's path only (those with data access stay off it), within the boundary
        "administer-roles": [
            allow(["iam:CreateRole", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"],
                  [roles], bounded, sid="GrantOnlyWithinBoundary"),
            allow(["iam:AttachRolePolicy", "iam:DetachRolePolicy"], [roles],
                  {**bounded, "ArnLike": {"iam:PolicyARN": f"arn:aws:iam::{ACCOUNT}:policy/*"}},
                  sid="AttachOwnPoliciesOnly"),
            allow(["iam:DeleteRole", "iam:TagRole", "iam:UntagRole", "iam:UpdateAssumeRolePolicy", "iam:UpdateRole",
                   "iam:UpdateRoleDescription"], [roles], sid="ChangePlatformRoles"),
            deny("KeepBoundaries", ["iam:DeleteRolePermissionsBoundary"], ["*"]),
        ],
        "administer-data-key": [allow(KEY_ADMIN_ACTIONS, [KEY_ARN])],
        "read-only": [
            allow(READ_ONLY_ACTIONS, ["*"], sid="ReadConfiguration"),
            allow(["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"], [
                f"{logs}/emlops/vpc-flow-logs/{prefix}*", f"{logs}/aws/sagemaker/Endpoints/{prefix}*",
                f"{logs}/aws/eks/{prefix}*"], sid="ReadPlatformLogs"),
        ],
        "guardrails": [
            deny("KeepStatefulResources", STATEFUL, ["*"]),
            deny("NoDataKeyUse", ["kms:CreateGrant", "kms:Decrypt", "kms:PutKeyPolicy", "kms:ReEncryptFrom"],
                 [KEY_ARN]),
            deny("NoDatasetReads", ["s3:GetObject", "s3:GetObjectVersion"], [f"{DATASETS}/*"]),
            deny("NoFeatureReads", ["sagemaker:BatchGetRecord", "sagemaker:GetRecord"], ["*"]),
            deny("NoAssumingManagedRoles", ["sts:AssumeRole"], [roles]),
            deny("NoChangesToPersonas", ROLE_WRITES, [PERSONA_ROLES]),
        ],
    }
    if boundary is None:  # nothing would keep a role it writes within bounds: no IAM writes at all
        del policies["administer-roles"]
    return policies


def test_platform_admin_policies():
    assert policies(full_plan(), ADMIN) == admin_policies(BOUNDARY, {"environment": "dev", "managed-by": "emlops"})



VIEWER_DATA = ["kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "logs:FilterLogEvents", "logs:GetLogEvents",
               "logs:StartQuery", "s3:GetObject", "s3:GetObjectVersion", "sagemaker:BatchGetRecord",
               "sagemaker:GetRecord", "sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync"]
VIEWER_CHANGES = ["sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DeleteModelCard",
                  "sagemaker:StartMonitoringSchedule", "sagemaker:StartPipelineExecution",
                  "sagemaker:StopMonitoringSchedule", "sagemaker:UpdateEndpoint", "sagemaker:UpdateModelCard",
                  "sagemaker:UpdateModelPackage"]


def viewer_policies(groups: list[str], packages: list[str], dashboards: str = "emlops-dev",
                    prefix: str = "dev-") -> dict[str, list[dict[str, Any]]]:
    return {
        "view-dashboards": [
            allow(["cloudwatch:GetDashboard"], [f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{dashboards}*"]),
            allow(["cloudwatch:DescribeAlarmHistory", "cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData",
                   "cloudwatch:GetMetricStatistics", "cloudwatch:ListDashboards", "cloudwatch:ListMetrics"], ["*"]),
        ],
        "view-model-cards": [
            allow(["sagemaker:DescribeModelCard", "sagemaker:ListModelCardVersions"], [f"{SM}:model-card/{prefix}*"]),
            allow(["sagemaker:ListModelCards"], ["*"]),
        ],
        **({"view-approvals": read_groups(groups, packages)} if groups else {}),
        "view-cost": [
            allow(["ce:GetCostAndUsage", "ce:GetCostForecast", "ce:GetDimensionValues", "ce:GetTags"], ["*"]),
            allow(["budgets:ViewBudget"], [f"arn:aws:budgets::{ACCOUNT}:budget/*"]),
        ],
        "guardrails": [deny("KeepStatefulResources", STATEFUL, ["*"]), deny("NoData", VIEWER_DATA, ["*"]),
                       deny("NoChanges", VIEWER_CHANGES, ["*"])],
    }


def test_business_viewer_policies():
    assert policies(full_plan(), VIEWER) == viewer_policies(GROUPS, PACKAGES)
    # a registry-less environment has no approval history to show; another dashboard prefix is followed
    plan = personas_plan(**MINIMAL, dashboard_prefix="team-ml", name_prefix="mlp-")
    assert policies(plan, VIEWER) == viewer_policies([], [], dashboards="team-ml", prefix="mlp-")


def test_the_business_viewer_reads_no_data_and_changes_nothing():
    allowed = actions_of(full_plan(), VIEWER)
    # every allowed action is a read: Describe, Get, List or View
    assert [a for a in sorted(allowed) if not a.split(":")[1].startswith(("Describe", "Get", "List", "View"))] == []
    # no object, key, log event, feature record or prediction, even through a policy attached later
    assert not {"s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt", "logs:GetLogEvents", "logs:FilterLogEvents",
                "sagemaker:GetRecord", "sagemaker:BatchGetRecord", "sagemaker:InvokeEndpoint"} & allowed
    assert set(VIEWER_DATA) | set(VIEWER_CHANGES) <= actions_of(full_plan(), VIEWER, effect="Deny")
    # the approval history: describe and list only, never approve
    assert "sagemaker:UpdateModelPackage" not in allowed and "sagemaker:DescribeModelPackage" in allowed

def test_platform_admin_without_a_boundary_has_no_iam_writes_and_uses_its_own_prefix_and_tags():
    plan = personas_plan(**MINIMAL, name_prefix="mlp-", resource_tags={"platform": "mlp"})
    assert policies(plan, ADMIN) == admin_policies(None, {"platform": "mlp"}, prefix="mlp-")
    assert not {a for a in actions_of(plan, ADMIN) if a.startswith("iam:") and not a.startswith(("iam:Get", "iam:List"))}


def test_read_only_and_key_administration_name_every_action():
    assert len(set(READ_ONLY_ACTIONS)) == len(READ_ONLY_ACTIONS) == 77
    assert not [a for a in READ_ONLY_ACTIONS + KEY_ADMIN_ACTIONS + ADMIN_TAGGED_ACTIONS if "*" in a]
    # nothing that reads data, changes configuration, or uses the key
    assert {re.match(r"[A-Z][a-z]+", a.split(":")[1]).group() for a in READ_ONLY_ACTIONS} == {
        "Describe", "Get", "List"}
    # log events are read in the platform's log groups only (ReadPlatformLogs), never in every group
    assert not {a for a in READ_ONLY_ACTIONS if a.startswith("logs:") and a != "logs:DescribeLogGroups"}
    assert not {"s3:GetObject", "sagemaker:GetRecord", "kms:Decrypt"} & set(READ_ONLY_ACTIONS + KEY_ADMIN_ACTIONS)


# -- the personas are distinct ----------------------------------------------------------------------

def test_only_the_ml_engineer_approves_and_only_the_data_scientist_registers():
    plan = full_plan()
    allowed = {p: actions_of(plan, p) for p in PERSONAS}
    assert "sagemaker:UpdateModelPackage" in allowed[MLE]
    assert "sagemaker:UpdateModelPackage" not in allowed[DS] | allowed[ADMIN]
    assert "sagemaker:UpdateModelPackage" in actions_of(plan, DS, "Deny")
    assert "sagemaker:CreateModelPackage" in allowed[DS]
    assert "sagemaker:CreateModelPackage" not in allowed[MLE] | allowed[ADMIN]
    assert not {"sagemaker:InvokeEndpoint", "sagemaker:StartPipelineExecution"} & allowed[DS]
    assert not {a for a in allowed[DS] if re.match(r"sagemaker:(Create|Update|Delete)Endpoint", a)}


def test_the_ml_engineer_administers_neither_iam_nor_kms():
    allowed = actions_of(full_plan(), MLE)
    # nor passes a role: every job role reads datasets
    assert {a for a in allowed if a.startswith("iam:")} == set()
    assert {a for a in allowed if a.startswith("kms:")} == {"kms:DescribeKey", "kms:Decrypt"}
    assert set(STATEFUL) <= actions_of(full_plan(), MLE, "Deny")


def test_the_platform_admin_is_denied_the_data():
    plan = full_plan()
    allowed, denied = actions_of(plan, ADMIN), actions_of(plan, ADMIN, "Deny")
    assert {"kms:Decrypt", "s3:GetObject", "s3:GetObjectVersion", "sagemaker:GetRecord"} <= denied
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "s3:GetObject", "s3:PutObject",
                "s3:ListBucket", "iam:PassRole", "sagemaker:GetRecord", "sagemaker:InvokeEndpoint"} & allowed


def test_each_persona_can_do_something_the_others_cannot():
    allowed = {p: actions_of(full_plan(), p) for p in PERSONAS}
    for persona in PERSONAS:
        others = set().union(*(allowed[p] for p in PERSONAS if p != persona))
        assert allowed[persona] - others, persona
    assert len({frozenset(a) for a in allowed.values()}) == 4


# -- IAM guardrails ---------------------------------------------------------------------------------

def every_statement(plan: Plan) -> list[dict[str, Any]]:
    trusts = [s for p in PERSONAS for s in trust_of(plan, p)]
    return trusts + [s for r in plan.by_type(ROLE_POLICY) for s in document(plan, r.name)]


@pytest.mark.parametrize("plan", [full_plan, minimal_plan])
def test_every_statement_passes_the_statement_checks(plan):
    for s in every_statement(plan()):
        # rebuilding each statement runs components/iam.py's own checks (no "*" action, no PassRole on "*", ...)
        rebuilt = Statement(actions=s["Action"], resources=s.get("Resource", ()), effect=s["Effect"],
                            principals=s.get("Principal"), conditions=s.get("Condition"), sid=s.get("Sid"))
        assert rebuilt.to_json() == s
        assert not any("*" in action for action in s["Action"])
    assert "FullAccess" not in json.dumps([r.inputs for r in plan().resources])


def test_pass_role_names_its_roles_and_sagemaker_only():
    passing = [s for s in every_statement(full_plan()) if "iam:PassRole" in s["Action"]]
    # only data scientists pass a role (the training role); ML engineers pass none
    assert [s["Resource"] for s in passing] == [[TRAINING_ROLE]]
    for s in passing:
        assert s["Action"] == ["iam:PassRole"]
        assert s["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_allowed_wildcard_resources_are_only_for_list_and_tag_scoped_actions():
    for s in every_statement(full_plan()):
        if s["Effect"] == "Allow" and "*" in s.get("Resource", []):
            unscoped = [a for a in s["Action"] if not re.match(r"[a-z0-9-]+:(List|Describe|Get|Filter)", a)]
            assert not unscoped or "aws:ResourceTag/environment" in s["Condition"]["StringEquals"], s


# -- composition with the platform's own resources --------------------------------------------------

def test_an_mlplatform_fills_in_what_it_owns():
    # the stack's choices are the settings; the platform's resources are the context
    stack_choices = PersonasSettings.model_validate({"max_session_hours": 1})
    # a platform with training holds datasets and the model-builder role
    platform_settings = parse_platform_config({
        "environment": "dev", "account_id": ACCOUNT, "region": REGION,
        "tags": {"owner": "ml-team", "cost-center": "cc-1", "data-classification": "internal"},
        "network": {"vpc_id": "vpc-0123456789abcdef0", "private_subnet_ids": SUBNETS}, "training": {}},
        "stacks/Pulumi.dev.yaml")
    platform_tags = {"owner": "ml-team", "cost-center": "cc-1", "data-classification": "internal",
                     "environment": "dev", "managed-by": "emlops"}

    def program() -> None:
        platform = MlPlatform("dev", platform_settings, PlatformContext())
        Personas("dev-personas", stack_choices, PersonasContext(
            environment="dev", data_key_arn=platform.data_key.arn, datasets_bucket_arn=platform.datasets.arn,
            artifacts_bucket_arn=platform.artifacts.arn, training_role_arn=platform.model_builder_role.arn,
            production=True, governance=Governance(tags=platform_tags)))
    plan = run_components(program)
    guardrails = document(plan, "dev-personas-platform-admin-guardrails")
    datasets = plan.get("dev-datasets-bucket", "aws:s3/bucket:Bucket").inputs
    assert guardrails[2]["Resource"] == [f"arn:aws:s3:::{datasets['bucket']}/*"]
    assert re.fullmatch(rf"arn:aws:kms:{REGION}:{ACCOUNT}:key/[0-9a-f-]{{36}}", guardrails[1]["Resource"][0])
    builder = plan.get("dev-model-builder-role", ROLE).inputs["name"]
    assert document(plan, "dev-personas-data-scientist-run-jobs")[-1]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{builder}"]
    assert plan.get(f"dev-personas-{DS}", ROLE).inputs["maxSessionDuration"] == 3600
    assert "Bool" in trust_of(plan, DS)[0]["Condition"]
    # the admin's tag scope is what the platform puts on its resources
    condition = document(plan, "dev-personas-platform-admin-administer-tagged")[0]["Condition"]["StringEquals"]
    assert {key.removeprefix("aws:ResourceTag/"): value for key, value in condition.items()}.items() <= \
        datasets["tags"].items()
    # roles with data access stay off the admins' path, and so do the persona roles (path /personas/)
    assert plan.get("dev-model-builder-role", ROLE).inputs["path"] == "/"
    assert {plan.get(f"dev-personas-{p}", ROLE).inputs["path"] for p in PERSONAS} == {"/personas/"}


# -- IAM's size quotas ------------------------------------------------------------------------------

def failure_of(call: str) -> str:
    """The ValueError of a run that fails inside an Output. It runs in its own process: the mock engine is
    not reusable after an exception inside an apply (see the report on emlops/engine.py)."""
    script = f"from tests.test_personas import *\n{call}\n"
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    # Pulumi re-raises it from whichever registration awaited the Output first, as
    # "ValueError: While processing resource: ..." then "ValueError has risen: <the error>"
    errors = {match[2] for match in re.finditer(r"^ValueError( has risen)?: (?!While processing)(.*)$",
                                                result.stderr, re.MULTILINE)}
    assert len(errors) == 1, result.stderr
    return errors.pop()


def test_inline_policies_over_iams_limit_fail_the_preview():
    endpoints = "[f'{SM}:endpoint/dev-m{i:03d}' for i in range(200)]"
    assert failure_of(f"personas_plan(**MINIMAL, endpoint_arns={endpoints})") == (
        "the ml-engineer role's inline policies would be 13334 characters, over IAM's limit of 10240; "
        "give it fewer resources")


def test_a_trust_policy_over_iams_limit_fails_the_preview():
    assert failure_of("personas_plan({'trusted_principal_arns': {DS: "
                      "[f'arn:aws:iam::{ACCOUNT}:role/scientist-{i:02d}' for i in range(40)]}}, **MINIMAL)") == (
        "the data-scientist role's trust policy would be 2122 characters, over IAM's limit of 2048; "
        "list fewer principals (a '*' pattern can stand for several)")


def test_the_largest_full_plan_stays_well_within_the_limits():
    plan = full_plan()
    for persona in PERSONAS:
        size = sum(len(re.sub(r"\s", "", plan.get(f"dev-personas-{persona}-{p}", ROLE_POLICY).inputs["policy"]))
                   for p in POLICY_NAMES[persona])
        assert size < 7000, (persona, size)


def test_personas_of_an_environment_using_the_shared_registry_read_it_and_register_only_as_publisher(shipped_plan):
    """prod publishes into the shared groups: its data scientists may register there (for approval), its ML
    engineers describe them. Nobody approves shared versions from an environment."""
    shared = ("churn", "fraud", "doc-scoring")
    groups = [f"arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/{g}" for g in shared]
    packages = [f"arn:aws:sagemaker:eu-west-1:444444444444:model-package/{g}/*" for g in shared]
    read = read_groups(groups, packages)
    prod = shipped_plan("prod")
    assert policy_statements(prod, "prod-personas-ml-engineer-read-shared-models") == read
    register = policy_statements(prod, "prod-personas-data-scientist-register-models")
    [create] = [s for s in register if s.get("Sid") == "RegisterForApprovalOnly"]
    assert create["Resource"] == groups + packages
    assert "sagemaker:UpdateModelPackage" not in json.dumps(
        [r.inputs for r in prod.by_type("aws:iam/rolePolicy:RolePolicy") if "ml-engineer" in r.name
         and "444444444444" in json.dumps(r.inputs) and "Allow" in json.dumps(r.inputs)])
