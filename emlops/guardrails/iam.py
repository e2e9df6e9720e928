"""IAM hardening rules: who may change roles, who registers and approves model versions, what people's roles
may start and pass, and whom a role trusts.

- Role writes (create a role, change its policies, trust or boundary) name the platform's role path, never `*` or a
  name prefix, and carry the permissions boundary where IAM can check it; no role with data access is on that path.
- Log events are read in named log groups, never in every group of the account.
- Model versions enter the registry only as `PendingManualApproval`, and no role an AWS service assumes approves one.
- Roles people assume start SageMaker jobs only in the platform's subnets and security groups with network
  isolation, and pass no role that reads or writes more than they may.
- A role that trusts a whole account also matches the principal's ARN (a tag alone is not enough).
- A statement conditioned on `kms:GrantIsForAWSResource` holds grant actions only.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from typing import Any, Optional

from pulumi_policy import PolicyResource

from emlops.catalog import resources_iam as iam
from emlops.catalog.resources_sagemaker import MODEL_PACKAGE_GROUP_POLICY
from emlops.guardrails.helpers import (
    UNKNOWN,
    Finding,
    Settings,
    actions_match,
    allow_statements,
    as_list,
    get,
    of_type,
    parse_json,
    resource_rule,
    stack_rule,
    text,
)

ROLE, ROLE_POLICY = iam.ROLE.token, iam.ROLE_POLICY.token
POLICY_DOCUMENTS = {ROLE_POLICY: "policy", iam.POLICY.token: "policy", iam.USER_POLICY.token: "policy",
                    iam.GROUP_POLICY.token: "policy", MODEL_PACKAGE_GROUP_POLICY.token: "resourcePolicy"}
# IAM evaluates iam:PermissionsBoundary for these role writes (the boundary the role has or will have).
BOUNDED_ROLE_WRITES = ("iam:AttachRolePolicy", "iam:CreateRole", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
                       "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy")
ROLE_WRITES = BOUNDED_ROLE_WRITES + ("iam:DeleteRole", "iam:DeleteRolePermissionsBoundary", "iam:TagRole",
                                     "iam:UntagRole", "iam:UpdateAssumeRolePolicy", "iam:UpdateRole",
                                     "iam:UpdateRoleDescription")
LOG_READS = ("logs:FilterLogEvents", "logs:GetLogEvents", "logs:GetLogRecord", "logs:StartLiveTail",
             "logs:StartQuery")
JOB_STARTS = ("sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob")
PENDING = "PendingManualApproval"
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")


def _document(props: Any, resource_type: str) -> Any:
    return parse_json(get(props, POLICY_DOCUMENTS.get(resource_type, "policy")))


def _conditions(statement: Mapping[str, Any]) -> Mapping[str, Any]:
    condition = get(statement, "Condition")
    return condition if isinstance(condition, Mapping) else {}


def _condition_values(statement: Mapping[str, Any], operator_prefix: str, key: str) -> Optional[list[Any]]:
    """The values `key` is compared with under an operator starting with `operator_prefix`, or None."""
    for operator, values in _conditions(statement).items():
        if operator.startswith(operator_prefix) and isinstance(values, Mapping) and key in values:
            return as_list(values[key])
    return None


def _resources(statement: Mapping[str, Any]) -> list[Any]:
    return as_list(get(statement, "Resource"))


def _role_part(arn: str) -> Optional[str]:
    """What follows `:role/` in a role ARN pattern (path and name), or None when it is not one."""
    match = re.match(r"^arn:[^:]*:iam::[^:]*:role/(.*)$", arn)
    return match.group(1) if match else ("*" if arn == "*" else None)


# ------------------------------------------------------------------------------------------------
# Role writes and log reads


@resource_rule("iam-role-writes-scoped", types=tuple(POLICY_DOCUMENTS), severity="critical",
               config=["environment"], with_args=True,
               description="IAM role writes name the platform's role path (role/emlops/<environment>/*, not '*' or a "
                           "name prefix, so roles with data access, which stay off it, are out of reach) and require "
                           "the permissions boundary where IAM checks it.",
               remediation="Build admin policies with Personas (platform_admin_policies does): no IAM writes without "
                           "emlops:platform.permission_boundary_arn.")
def role_writes_scoped(props: Any, settings: Settings, args: Any) -> Iterator[str]:
    document = _document(props, args.resource_type)
    path = f"emlops/{settings.environment}/" if settings.environment else None
    for statement in allow_statements(document):
        writes = [action for action in ROLE_WRITES if actions_match(statement, action)]
        if not writes:
            continue
        for resource in _resources(statement):
            role = _role_part(resource) if isinstance(resource, str) else None
            if resource is UNKNOWN or role is None:
                continue
            if "/" not in role.rstrip("*") or (path and not role.startswith(path)):
                where = f"role/{path}*" if path else "a role path (role/<path>/*)"
                yield f"allows {writes[0]} on {resource!r}: role writes are scoped to {where}, not '*' or a name"
        bounded = _condition_values(statement, "StringEquals", "iam:PermissionsBoundary") or \
            _condition_values(statement, "ArnEquals", "iam:PermissionsBoundary")
        unbounded = [action for action in writes if action in BOUNDED_ROLE_WRITES]
        if unbounded and not bounded:
            yield (f"allows {unbounded[0]} without an iam:PermissionsBoundary condition: a role it writes could "
                   "exceed the boundary")


@resource_rule("iam-log-reads-scoped", types=tuple(t for t in POLICY_DOCUMENTS if t != MODEL_PACKAGE_GROUP_POLICY.token),
               severity="high", with_args=True,
               description="Log events are read in named log groups only, never in every group of the account (a "
                           "job's or application's log may print the data it works on).",
               remediation="Name the log groups (Personas grants admins the platform's own groups only).")
def log_reads_scoped(props: Any, settings: Settings, args: Any) -> Iterator[str]:
    for statement in allow_statements(_document(props, args.resource_type)):
        reads = [action for action in LOG_READS if actions_match(statement, action)]
        broad = [r for r in _resources(statement) if isinstance(r, str) and (
            r == "*" or re.fullmatch(r"arn:[^:]*:logs:[^:]*:[^:]*:(\*|log-group:\*)(:.*)?", r))]
        if reads and broad:
            yield f"allows {reads[0]} on {broad[0]!r}: read log events in named log groups only"


DATA_ACTIONS = ("s3:GetObject", "s3:PutObject", "kms:Decrypt", "sagemaker:GetRecord")


@stack_rule("iam-data-roles-off-the-admin-path", severity="high", config=["environment"],
            description="No role on the path platform admins change (/emlops/<environment>/) reads or writes data "
                        "(S3 objects, KMS decrypt, feature records): the trust and policies of roles with data access "
                        "are changed by deploys only.",
            remediation="Leave the role at path '/' (Governance.role_path is for roles that reach no data).")
def data_roles_off_the_admin_path(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    if not settings.environment:
        return
    for role, name, statements in _roles(resources):
        if text(get(role.props, "path")) != f"/emlops/{settings.environment}/":
            continue
        reaches = sorted({a for s in statements if get(s, "Effect") == "Allow" for a in DATA_ACTIONS
                          if actions_match(s, a)})
        if reaches:
            yield f"role {name} is on the admins' path but allows {', '.join(reaches)}", role.urn


# ------------------------------------------------------------------------------------------------
# The approval gate


@resource_rule("sagemaker-register-for-approval-only", types=tuple(POLICY_DOCUMENTS), severity="critical",
               with_args=True,
               description="Model versions enter the registry only as PendingManualApproval: every grant of "
                           "sagemaker:CreateModelPackage (role and group policies) requires it "
                           "(sagemaker:ModelApprovalStatus).",
               remediation="Condition CreateModelPackage on {'StringEquals': {'sagemaker:ModelApprovalStatus': "
                           "'PendingManualApproval'}} (emlops.components.iam.PENDING_APPROVAL_ONLY).")
def register_for_approval_only(props: Any, settings: Settings, args: Any) -> Iterator[str]:
    for statement in allow_statements(_document(props, args.resource_type)):
        if not actions_match(statement, "sagemaker:CreateModelPackage"):
            continue
        pending = (_condition_values(statement, "StringEquals", "sagemaker:ModelApprovalStatus")
                   or _condition_values(statement, "StringEqualsIfExists", "sagemaker:ModelApprovalStatus"))
        none = _condition_values(statement, "Null", "sagemaker:ModelApprovalStatus")
        if pending != [PENDING] and none not in (["true"], [True]):
            yield ("allows sagemaker:CreateModelPackage without requiring sagemaker:ModelApprovalStatus "
                   f"{PENDING}: a version could enter the registry already approved")


def _trusted(role: PolicyResource) -> tuple[list[Any], list[Any]]:
    """(service principals, AWS principals) a role's trust policy allows."""
    services, accounts = [], []
    for statement in allow_statements(parse_json(get(role.props, "assumeRolePolicy"))):
        principal = get(statement, "Principal")
        if isinstance(principal, Mapping):
            services += as_list(get(principal, "Service"))
            accounts += as_list(get(principal, "AWS"))
    return services, accounts


def _policies_by_role(resources: list[PolicyResource]) -> dict[str, list[Mapping[str, Any]]]:
    """Each role's name -> the statements of its inline policies (RolePolicy joins by the role's name)."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for policy in of_type(resources, ROLE_POLICY):
        role = text(get(policy.props, "role"))
        document = parse_json(get(policy.props, "policy"))
        if role and document is not UNKNOWN:
            out.setdefault(role, []).extend(s for s in as_list(get(document, "Statement")) if isinstance(s, Mapping))
    return out


def _roles(resources: list[PolicyResource]) -> Iterator[tuple[PolicyResource, str, list[Mapping[str, Any]]]]:
    policies = _policies_by_role(resources)
    for role in of_type(resources, ROLE):
        name = text(get(role.props, "name"))
        if name:
            yield role, name, policies.get(name, [])


@stack_rule("sagemaker-approval-by-people-only", severity="critical",
            description="No role an AWS service assumes (pipelines, MLflow, jobs) may approve a model version: "
                        "sagemaker:UpdateModelPackage only without an approval status (Null "
                        "sagemaker:ModelApprovalStatus); approving is a person's, in the registry's account.",
            remediation="Grant approval to the ml-engineer persona only; give service roles UpdateModelPackage with "
                        "emlops.components.iam.APPROVAL_UNCHANGED.")
def approval_by_people_only(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    for role, name, statements in _roles(resources):
        services, _ = _trusted(role)
        if not services:
            continue
        for statement in (s for s in statements if get(s, "Effect") == "Allow"):
            if actions_match(statement, "sagemaker:UpdateModelPackage") and _condition_values(
                    statement, "Null", "sagemaker:ModelApprovalStatus") not in (["true"], [True]):
                yield (f"role {name} ({', '.join(map(str, services))}) may approve model versions "
                       "(sagemaker:UpdateModelPackage with an approval status)", role.urn)


# ------------------------------------------------------------------------------------------------
# What people's roles start and pass


def _people(resources: list[PolicyResource]) -> Iterator[tuple[PolicyResource, str, list[Mapping[str, Any]]]]:
    """Roles people assume: their trust names AWS principals (accounts, roles, users), not services."""
    for role, name, statements in _roles(resources):
        services, people = _trusted(role)
        if people and not services:
            yield role, name, statements


@stack_rule("sagemaker-people-jobs-isolated", severity="high",
            description="Roles people assume start SageMaker training and processing jobs only in named subnets and "
                        "security groups with network isolation (sagemaker:VpcSubnets, sagemaker:VpcSecurityGroupIds, "
                        "sagemaker:NetworkIsolation).",
            remediation="Give Personas the platform's job subnets and the training security group "
                        "(PersonasContext.job_subnet_ids, job_security_group_ids).")
def people_jobs_isolated(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    for role, name, statements in _people(resources):
        for statement in (s for s in statements if get(s, "Effect") == "Allow"):
            starts = [action for action in JOB_STARTS if actions_match(statement, action)]
            if not starts:
                continue
            missing = [key for key in ("sagemaker:VpcSubnets", "sagemaker:VpcSecurityGroupIds")
                       if not _condition_values(statement, "ForAllValues:StringEquals", key)
                       or _condition_values(statement, "Null", key) not in (["false"], [False])]
            if _condition_values(statement, "Bool", "sagemaker:NetworkIsolation") not in (["true"], [True]):
                missing.append("sagemaker:NetworkIsolation")
            if missing:
                yield (f"role {name} starts {starts[0].split(':')[1]} without requiring {', '.join(missing)}",
                       role.urn)


def _object_access(statements: list[Mapping[str, Any]], action: str) -> list[str]:
    return [r for s in statements if get(s, "Effect") == "Allow" and actions_match(s, action)
            for r in _resources(s) if isinstance(r, str)]


def _covered(pattern: str, allowed: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(pattern, mine) for mine in allowed)


@stack_rule("iam-passrole-no-widening", severity="critical",
            description="A role people assume passes only roles that read and write no more S3 objects than it may "
                        "itself (a persona that may not read datasets may not pass a role that can).",
            remediation="Scope the passed role to the persona's prefixes (TrainingContext.input_prefix, "
                        "output_prefix) or stop passing it.")
def passrole_no_widening(resources: list[PolicyResource], settings: Settings) -> Iterator[Finding]:
    roles = {name: (role, statements) for role, name, statements in _roles(resources)}
    arns: dict[str, str] = {}
    for name, (role, _) in roles.items():
        path = text(get(role.props, "path")) or "/"
        arns[f"role{path}{name}"] = name
    for role, name, statements in _people(resources):
        passed = {arns[r.split(":", 5)[5]] for r in _object_access(statements, "iam:PassRole")
                  if r.count(":") >= 5 and r.split(":", 5)[5] in arns}
        for other in sorted(passed - {name}):
            other_statements = roles[other][1]
            for action, verb in (("s3:GetObject", "reads"), ("s3:PutObject", "writes")):
                mine = _object_access(statements, action)
                for pattern in _object_access(other_statements, action):
                    if not _covered(pattern, mine):
                        yield (f"role {name} passes {other}, which {verb} {pattern} that {name} may not", role.urn)


# ------------------------------------------------------------------------------------------------
# Trust and KMS grants


@resource_rule("iam-trust-matches-principal-arn", types=(ROLE,), severity="high",
               description="A role that trusts a whole account (arn:...:root) also matches the principal's ARN "
                           "(aws:PrincipalArn): people can tag their own sessions, so a tag alone is not enough.",
               remediation="List the principals (personas.trusted_principal_arns) or rely on the default Identity "
                           "Center roles (Personas matches aws:PrincipalArn).")
def trust_matches_principal_arn(props: Any, settings: Settings) -> Iterator[str]:
    for statement in allow_statements(parse_json(get(props, "assumeRolePolicy"))):
        principal = get(statement, "Principal")
        roots = [p for p in as_list(get(principal, "AWS")) if isinstance(p, str) and p.endswith(":root")] \
            if isinstance(principal, Mapping) else []
        if roots and not any(_condition_values(statement, op, "aws:PrincipalArn") is not None and not op.startswith(
                ("ArnNot", "StringNot")) for op in _conditions(statement)):
            checks = sorted(f"{operator} {key}" for operator, values in _conditions(statement).items()
                            if isinstance(values, Mapping) for key in values)
            yield (f"trusts every principal of {', '.join(roots)}" + (f" that passes {', '.join(checks)}" if checks
                                                                      else "")
                   + ": people can tag their own sessions; match aws:PrincipalArn (ArnLike) too")


@resource_rule("kms-grant-condition-on-grant-actions-only", types=tuple(POLICY_DOCUMENTS), severity="low",
               with_args=True,
               description="A statement conditioned on kms:GrantIsForAWSResource holds grant actions only (other "
                           "actions never carry the key, so they would silently never be allowed).",
               remediation="Give the other actions (kms:DescribeKey, ...) a statement of their own.")
def grant_condition_on_grant_actions_only(props: Any, settings: Settings, args: Any) -> Iterator[str]:
    for statement in allow_statements(_document(props, args.resource_type)):
        if _condition_values(statement, "Bool", "kms:GrantIsForAWSResource") is None:
            continue
        others = [a for a in as_list(get(statement, "Action")) if isinstance(a, str) and a not in GRANT_ACTIONS]
        if others:
            yield f"conditions {', '.join(others)} on kms:GrantIsForAWSResource, which only grant operations carry"


POLICIES = [role_writes_scoped, data_roles_off_the_admin_path, log_reads_scoped, register_for_approval_only, approval_by_people_only,
            people_jobs_isolated, passrole_no_widening, trust_matches_principal_arn,
            grant_condition_on_grant_actions_only]
