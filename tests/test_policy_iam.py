"""IAM hardening guardrails: role writes, log reads, the approval gate, people's jobs and passed roles, trust, KMS
grants. Each rule fails a raw resource with the bad setting (`BAD`) and passes the components and shipped stacks."""

from __future__ import annotations

import functools
import json
from typing import Any

import pulumi_aws as aws
import pytest

from emlops.guardrails import RULES, Settings
from emlops.guardrails import iam as iam_rules
from emlops.offline.plan import Plan
from emlops.review.check import evaluate
from tests.conftest import ACCOUNT, SHIPPED_STACKS, run_components

DEV = Settings(production=False, environment="dev")
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
BOUNDED = {"StringEquals": {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/ml-boundary"}}
SAGEMAKER_TRUST = {"Effect": "Allow", "Principal": {"Service": ["sagemaker.amazonaws.com"]}, "Action": "sts:AssumeRole"}
PEOPLE_TRUST = {"Effect": "Allow", "Principal": {"AWS": [ROOT]}, "Action": "sts:AssumeRole",
                "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/people/*"}}}
DATA = "arn:aws:s3:::ml-data"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str], resources: Any = "*", condition: dict | None = None) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
    return {**statement, "Condition": condition} if condition else statement


def findings(plan: Plan, rule: str, settings: Settings = DEV) -> list[tuple[str, str]]:
    return [(v.name, v.message) for v in evaluate(plan, settings, [RULES[rule]])]


BAD: dict[str, list[tuple[str, str]]] = {
    "iam-role-writes-scoped": [
        ("admin-by-name-prefix", f"allows iam:CreateRole on 'arn:aws:iam::{ACCOUNT}:role/dev-*': role writes are "
                                 "scoped to role/emlops/dev/*, not '*' or a name"),
        ("admin-by-name-prefix", "allows iam:CreateRole without an iam:PermissionsBoundary condition: a role it writes "
                                 "could exceed the boundary"),
    ],
    "iam-data-roles-off-the-admin-path": [
        ("data-role-on-admin-path", "role data-role-0000000 is on the admins' path but allows kms:Decrypt, "
                                    "s3:GetObject")],
    "iam-log-reads-scoped": [
        ("reads-every-log", "allows logs:FilterLogEvents on '*': read log events in named log groups only")],
    "sagemaker-register-for-approval-only": [
        ("registers-approved", "allows sagemaker:CreateModelPackage without requiring sagemaker:ModelApprovalStatus "
                               "PendingManualApproval: a version could enter the registry already approved"),
        ("group-policy", "allows sagemaker:CreateModelPackage without requiring sagemaker:ModelApprovalStatus "
                         "PendingManualApproval: a version could enter the registry already approved"),
    ],
    "sagemaker-approval-by-people-only": [
        ("pipeline-role", "role pipeline-role-0000000 (sagemaker.amazonaws.com) may approve model versions "
                          "(sagemaker:UpdateModelPackage with an approval status)")],
    "sagemaker-people-jobs-isolated": [
        ("person-role", "role person-role-0000000 starts CreateProcessingJob without requiring "
                        "sagemaker:VpcSecurityGroupIds, sagemaker:NetworkIsolation")],
    "iam-passrole-no-widening": [
        ("person-role", "role person-role-0000000 passes job-role-0000000, which reads arn:aws:s3:::ml-data/* that "
                        "person-role-0000000 may not")],
    "iam-trust-matches-principal-arn": [
        ("tagged-people", f"trusts every principal of {ROOT} that passes StringEquals aws:PrincipalTag/team: people "
                          "can tag their own sessions; match aws:PrincipalArn (ArnLike) too")],
    "kms-grant-condition-on-grant-actions-only": [
        ("volume-grant", "conditions kms:DescribeKey on kms:GrantIsForAWSResource, which only grant operations "
                         "carry")],
}


@functools.cache
def bad_plan() -> Plan:
    def program() -> None:
        aws.iam.RolePolicy("admin-by-name-prefix", role="admin", policy=policy(
            allow(["iam:CreateRole", "iam:PutRolePolicy"], [f"arn:aws:iam::{ACCOUNT}:role/dev-*"])))
        data_role = aws.iam.Role("data-role-on-admin-path", name="data-role-0000000", path="/emlops/dev/",
                                 assume_role_policy=policy(SAGEMAKER_TRUST))
        aws.iam.RolePolicy("data-role-reads", role=data_role.name, policy=policy(
            allow(["s3:GetObject", "kms:Decrypt"], [f"{DATA}/*"])))
        aws.iam.RolePolicy("reads-every-log", role="admin", policy=policy(
            allow(["logs:FilterLogEvents", "logs:GetLogEvents"])))
        aws.iam.RolePolicy("registers-approved", role="scientist", policy=policy(
            allow(["sagemaker:CreateModelPackage"], ["arn:aws:sagemaker:eu-west-1:123456789012:model-package/*"])))
        aws.sagemaker.ModelPackageGroupPolicy("group-policy", model_package_group_name="churn", resource_policy=policy(
            {**allow(["sagemaker:CreateModelPackage"], ["*"]), "Principal": {"AWS": ["arn:aws:iam::210987654321:root"]}}))
        pipeline = aws.iam.Role("pipeline-role", name="pipeline-role-0000000",
                                assume_role_policy=policy(SAGEMAKER_TRUST))
        aws.iam.RolePolicy("pipeline-approves", role=pipeline.name, policy=policy(
            allow(["sagemaker:UpdateModelPackage"], ["arn:aws:sagemaker:eu-west-1:123456789012:model-package/*"])))
        job = aws.iam.Role("job-role", name="job-role-0000000", assume_role_policy=policy(SAGEMAKER_TRUST))
        aws.iam.RolePolicy("job-reads", role=job.name, policy=policy(allow(["s3:GetObject"], [f"{DATA}/*"])))
        person = aws.iam.Role("person-role", name="person-role-0000000", assume_role_policy=policy(PEOPLE_TRUST))
        aws.iam.RolePolicy("person-jobs", role=person.name, policy=policy(
            allow(["s3:GetObject"], [f"{DATA}/experiments/*"]),
            allow(["sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob"], "*", {
                "Null": {"sagemaker:VpcSubnets": "false"},
                "ForAllValues:StringEquals": {"sagemaker:VpcSubnets": ["subnet-0123456789abcdef0"]}}),
            allow(["iam:PassRole"], [f"arn:aws:iam::{ACCOUNT}:role/job-role-0000000"])))
        aws.iam.Role("tagged-people", assume_role_policy=policy(
            {**PEOPLE_TRUST, "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ml"}}}))
        aws.iam.RolePolicy("volume-grant", role="jobs", policy=policy(allow(
            ["kms:CreateGrant", "kms:DescribeKey"], ["*"], {"Bool": {"kms:GrantIsForAWSResource": "true"}})))
    return run_components(program)


@pytest.mark.parametrize("rule", sorted(BAD))
def test_a_non_compliant_resource_is_reported_with_its_message(rule):
    assert findings(bad_plan(), rule) == BAD[rule]


def stack_settings(stack: str) -> Settings:
    production = stack in ("prod", "shared")
    return Settings(production=production, environment=stack, permission_boundary_required=stack != "dev")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_shipped_stacks_comply(stack, shipped_plan):
    assert [(v.rule, v.name, v.message) for v in evaluate(shipped_plan(stack), stack_settings(stack),
                                                          iam_rules.POLICIES)] == []


def test_compliant_forms_pass():
    """What the rules accept: the platform's path with the boundary, holding a role without data access; named log groups;
    registrations that wait for approval (StringEquals, or IfExists for MLflow); updates without a status; jobs in
    named subnets and groups with network isolation; a passed role no wider than its passer; trust by ARN."""
    pending = {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}

    def program() -> None:
        aws.iam.RolePolicy("admin", role="admin", policy=policy(
            allow(["iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"], [f"arn:aws:iam::{ACCOUNT}:role/emlops/dev/*"],
                  BOUNDED)))
        events = aws.iam.Role("events-role", name="events-role-0000000", path="/emlops/dev/", assume_role_policy=policy(
            {**SAGEMAKER_TRUST, "Principal": {"Service": ["events.amazonaws.com"]}}))
        aws.iam.RolePolicy("events-start", role=events.name, policy=policy(
            allow(["sagemaker:StartPipelineExecution"], ["*"])))
        aws.iam.RolePolicy("reads-own-logs", role="admin", policy=policy(allow(
            ["logs:GetLogEvents"], ["arn:aws:logs:eu-west-1:123456789012:log-group:/emlops/vpc-flow-logs/dev-*"])))
        aws.iam.RolePolicy("registers", role="scientist", policy=policy(
            allow(["sagemaker:CreateModelPackage"], ["*"], pending),
            allow(["sagemaker:CreateModelPackage", "sagemaker:AddTags"], ["*"],
                  {"StringEqualsIfExists": pending["StringEquals"]})))
        pipeline = aws.iam.Role("pipeline-role", name="pipeline-role-0000000",
                                assume_role_policy=policy(SAGEMAKER_TRUST))
        aws.iam.RolePolicy("pipeline-updates", role=pipeline.name, policy=policy(allow(
            ["sagemaker:UpdateModelPackage"], ["*"], {"Null": {"sagemaker:ModelApprovalStatus": "true"}})))
        job = aws.iam.Role("job-role", name="job-role-0000000", path="/jobs/",
                           assume_role_policy=policy(SAGEMAKER_TRUST))
        aws.iam.RolePolicy("job-reads", role=job.name, policy=policy(allow(["s3:GetObject"], [f"{DATA}/experiments/*"])))
        person = aws.iam.Role("person-role", name="person-role-0000000", assume_role_policy=policy(PEOPLE_TRUST))
        subnets, groups = ["subnet-0123456789abcdef0"], ["sg-0123456789abcdef0"]
        aws.iam.RolePolicy("person-jobs", role=person.name, policy=policy(
            allow(["s3:GetObject"], [f"{DATA}/*"]),
            allow(["sagemaker:CreateTrainingJob"], "*", {
                "Null": {"sagemaker:VpcSubnets": "false", "sagemaker:VpcSecurityGroupIds": "false"},
                "Bool": {"sagemaker:NetworkIsolation": "true"},
                "ForAllValues:StringEquals": {"sagemaker:VpcSubnets": subnets, "sagemaker:VpcSecurityGroupIds": groups}}),
            allow(["iam:PassRole"], [f"arn:aws:iam::{ACCOUNT}:role/jobs/job-role-0000000"])))
        aws.iam.RolePolicy("volume-grant", role="jobs", policy=policy(
            allow(["kms:CreateGrant"], ["*"], {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
            allow(["kms:DescribeKey"], ["*"])))
    plan = run_components(program)
    assert [(v.rule, v.name, v.message) for v in evaluate(plan, DEV, iam_rules.POLICIES)] == []


def test_without_an_environment_role_writes_need_a_path_and_values_unknown_offline_pass():
    def program() -> None:
        aws.iam.RolePolicy("under-a-path", role="admin", policy=policy(
            allow(["iam:PutRolePolicy"], [f"arn:aws:iam::{ACCOUNT}:role/platform/*"], BOUNDED)))
        aws.iam.RolePolicy("on-every-role", role="admin", policy=policy(allow(["iam:Update*"], "*")))
        aws.iam.RolePolicy("unknown", role="admin", policy="[unknown: x]")
    plan = run_components(program)
    assert findings(plan, "iam-role-writes-scoped", Settings()) == [
        ("on-every-role", "allows iam:UpdateAssumeRolePolicy on '*': role writes are scoped to a role path "
                          "(role/<path>/*), not '*' or a name")]
