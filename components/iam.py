"""IAM: one statement builder for every policy in emlops, and least-privilege service roles.

Every policy document in the code base is built from `Statement` objects by `policy_document`, so
the guardrails live in one place: a statement can never allow `"Action": "*"`, and `iam:PassRole`
always names the roles it passes. Grants (`SecureBucket.grant_read`, `KmsKey.grant_decrypt`, ...)
add statements to a `ServiceRole` as named inline policies.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

import pulumi
import pulumi_aws as aws

from emlops.catalog.resources_iam import ROLE
from emlops.components.aws_context import aws_context
from emlops.components.naming import DerivedName, auto_named
from emlops.components.options import child, merge_tags, type_token
from emlops.components.outputs import concat
from emlops.components.outputs import json_document

_ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9*]+$")
# The AWS-managed policies that grant a whole service; emlops never attaches them.
FULL_ACCESS_POLICY = re.compile(r":iam::aws:policy/.*FullAccess")
# AWS-managed policies that allow (nearly) everything: as a permissions boundary they bound nothing
ADMINISTRATOR_POLICY = re.compile(r":iam::aws:policy/(job-function/)?(AdministratorAccess|PowerUserAccess)$")

PrincipalValue = Union[str, Sequence[pulumi.Input[str]]]
# The approval gate: whoever registers a model version (sagemaker:CreateModelPackage) must say, in the
# request, that it waits for a person's approval; a request for `Approved` (or none) is refused.
PENDING_APPROVAL_ONLY = {"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}
# Changing a version without touching its approval (MLflow updating what it registered): the request
# carries no approval status at all.
APPROVAL_UNCHANGED = {"Null": {"sagemaker:ModelApprovalStatus": "true"}}


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement, in AWS terms.

    `resources` and condition values may be Pulumi outputs (ARNs of other resources). `principals`
    maps a principal type (`AWS`, `Service`, `Federated`) to its values, or is the string `"*"`
    (only for Deny statements in resource policies).
    """

    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]] = ()
    effect: Literal["Allow", "Deny"] = "Allow"
    principals: Optional[Union[Literal["*"], Mapping[str, Sequence[pulumi.Input[str]]]]] = None
    conditions: Optional[Mapping[str, Mapping[str, Any]]] = None
    sid: Optional[str] = None

    def __post_init__(self) -> None:
        for label in ("actions", "resources"):
            if isinstance(getattr(self, label), str):
                raise ValueError(f"statement {label} must be a list, e.g. [{getattr(self, label)!r}]")
        if not self.actions:
            named = f"statement {self.sid}" if self.sid else "statement"
            raise ValueError(f"{named} has no actions; name at least one 'service:Action'")
        for action in self.actions:
            if action == "*" or not _ACTION.match(action):
                raise ValueError(
                    f"IAM action {action!r} is not allowed: name a single service action like 's3:GetObject'"
                )
        if self.effect == "Allow":
            # IAM matches actions case-insensitively and expands wildcards: `iam:pass*` is PassRole too.
            passes_roles = any(fnmatch.fnmatchcase("iam:passrole", a.lower()) for a in self.actions)
            if passes_roles and any(isinstance(r, str) and "*" in r for r in self.resources):
                raise ValueError("iam:PassRole on '*' is not allowed: pass only the roles a service needs")
            if self.principals == "*" and not _names_principal_account(self.conditions):
                raise ValueError("an Allow statement may name Principal '*' only with an aws:PrincipalAccount or "
                                 "aws:PrincipalOrgID condition")
            if isinstance(self.principals, Mapping) and any("*" in list(values) for values in self.principals.values()):
                raise ValueError("an Allow statement may not name Principal '*'")
        if self.sid is not None and not re.match(r"^[A-Za-z0-9]+$", self.sid):
            raise ValueError(f"statement id {self.sid!r} must be letters and digits only")

    def to_json(self) -> dict[str, Any]:
        """The statement as AWS's policy grammar spells it (Outputs stay inside for json_dumps)."""
        out: dict[str, Any] = {}
        if self.sid:
            out["Sid"] = self.sid
        out["Effect"] = self.effect
        if self.principals == "*":
            out["Principal"] = "*"
        elif self.principals:
            out["Principal"] = {kind: list(values) for kind, values in self.principals.items()}
        out["Action"] = list(self.actions)
        if self.resources:
            out["Resource"] = list(self.resources)
        if self.conditions:
            out["Condition"] = {op: dict(values) for op, values in self.conditions.items()}
        return out


def _names_principal_account(conditions: Optional[Mapping[str, Mapping[str, Any]]]) -> bool:
    """The conditions pin the principal's account or organization (what a VPC endpoint policy's '*' needs)."""
    return any(key in ("aws:PrincipalAccount", "aws:PrincipalOrgID")
               for operator, values in (conditions or {}).items() if operator.startswith("StringEquals")
               for key in values)


def platform_role_path(environment: str) -> str:
    """`/emlops/<environment>/`: the IAM path of the platform's roles that platform admins may change (within the
    permissions boundary). Only the platform uses it, and only for roles that reach none of its data (VPC flow-log
    delivery, EventBridge's pipeline starters) and roles admins create; roles with data access stay at `/`, so no
    admin policy reaches their trust or policies."""
    return f"/emlops/{environment}/"


def name_token(name: str) -> str:
    """A component name as it may appear in a policy name: lowercase letters, digits and '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def policy_size(statements: Sequence[Statement]) -> int:
    """The size IAM counts (characters, whitespace excluded) of the document of `statements`, whose values are all
    plain strings: how a policy is sized from the stack file before anything is deployed."""
    document = json.dumps({"Version": "2012-10-17", "Statement": [s.to_json() for s in statements]})
    return len(re.sub(r"\s", "", document))


def policy_document(statements: Sequence[Statement]) -> pulumi.Input[str]:
    """A policy document (JSON string) from statements; the only way emlops writes policy JSON."""
    if not statements:
        raise ValueError("a policy document needs at least one statement")
    return json_document({"Version": "2012-10-17", "Statement": [s.to_json() for s in statements]})


def kms_usage_statement(key_arn: pulumi.Input[str], *, encrypt: bool, decrypt: bool,
                        via_service: Union[None, pulumi.Input[str], Sequence[pulumi.Input[str]]] = None,
                        sid: Optional[str] = None) -> Statement:
    """Use of one KMS key, optionally only through the AWS services named (`kms:ViaService`, one or a list)."""
    actions = ["kms:DescribeKey"]
    if decrypt:
        actions.append("kms:Decrypt")
    if encrypt:
        actions += ["kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
    services = list(via_service) if isinstance(via_service, (list, tuple)) else via_service
    conditions = {"StringEquals": {"kms:ViaService": services}} if services else None
    return Statement(sid=sid, actions=actions, resources=[key_arn], conditions=conditions)


def prefix_read_statements(bucket_arn: pulumi.Input[str], key: str) -> list[Statement]:
    """Listing and reading the objects under `key` (a folder, ending in "/", or "" for the whole bucket) of the
    bucket `bucket_arn`, and nothing else of it."""
    return [
        Statement(actions=["s3:ListBucket"], resources=[bucket_arn],
                  conditions={"StringLike": {"s3:prefix": [f"{key}*"]}}),
        Statement(actions=["s3:GetObject"], resources=[concat(bucket_arn, "/", key, "*")]),
    ]


def ecr_pull_statements(repository_arns: Sequence[pulumi.Input[str]]) -> list[Statement]:
    """Pulling images from exactly these ECR repositories."""
    return [
        Statement(actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                  resources=list(repository_arns)),
        # GetAuthorizationToken has no resource to scope to; AWS requires "*".
        Statement(actions=["ecr:GetAuthorizationToken"], resources=["*"]),
    ]


@dataclass
class ServiceRoleArgs:
    """Arguments of a `ServiceRole`."""

    services: Sequence[str]
    """Service principals allowed to assume the role, e.g. `sagemaker.amazonaws.com`."""
    description: str = ""
    """Shown in the IAM console. Default: empty."""
    permissions_boundary_arn: Optional[str] = None
    """Managed policy set as the role's permissions boundary. Default: no boundary."""
    source_account_id: Optional[pulumi.Input[str]] = None
    """Account the assuming service must act for (`aws:SourceAccount`, confused-deputy protection).
    Default: the deploying account."""
    max_session_duration_seconds: int = 3600
    """Longest session the role allows, 3600-43200 seconds. Default: 3600."""
    path: str = "/"
    """IAM path of the role. Default: `/`."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the role. Default: none."""

    def __post_init__(self) -> None:
        if isinstance(self.services, str):
            raise ValueError(f"services must be a list, e.g. [{self.services!r}]")
        if not self.services:
            raise ValueError("ServiceRole needs at least one service principal, e.g. 'sagemaker.amazonaws.com'")
        for service in self.services:
            if not re.match(r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$", service):
                raise ValueError(f"service principal {service!r} must look like 'sagemaker.amazonaws.com'")
        if not 3600 <= self.max_session_duration_seconds <= 43200:
            raise ValueError(
                f"max_session_duration_seconds ({self.max_session_duration_seconds}) must be 3600-43200"
            )
        if not re.match(r"^/([\w+=,.@-]+/)*$", self.path):
            raise ValueError(f"role path {self.path!r} must start and end with '/'")
        if self.permissions_boundary_arn and FULL_ACCESS_POLICY.search(self.permissions_boundary_arn):
            raise ValueError("a *FullAccess managed policy cannot serve as a permissions boundary")


def role_logical_name(name: str) -> str:
    """The logical name of a ServiceRole's role (Pulumi auto-names it `<name>-role-<7 hex>`)."""
    return f"{name}-role"


def role_names(name: str) -> list[DerivedName]:
    """The physical names a ServiceRole called `name` derives (naming.py)."""
    return [auto_named(ROLE.token, role_logical_name(name))]


class ServiceRole(pulumi.ComponentResource):
    """An IAM role that one or more AWS services assume, with no permissions until granted.

    Permissions are added as named inline policies, by `add_policy` or by a resource's grant helper
    (`bucket.grant_read(role)`), so each policy in the plan says what it is for.
    """

    role: aws.iam.Role
    arn: pulumi.Output[str]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceRoleArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("ServiceRole"), name, None, opts)
        self._name = name
        self._policy_names: set[str] = set()
        account_id = args.source_account_id
        if account_id is None:
            account_id = aws_context(self).account_id
        trust = Statement(
            actions=["sts:AssumeRole"],
            principals={"Service": list(args.services)},
            conditions={"StringEquals": {"aws:SourceAccount": account_id}},
        )
        self.role = aws.iam.Role(
            role_logical_name(name),
            assume_role_policy=policy_document([trust]),
            description=args.description or None,
            max_session_duration=args.max_session_duration_seconds,
            path=args.path,
            permissions_boundary=args.permissions_boundary_arn,
            tags=merge_tags(args.tags),
            opts=child(self),
        )
        self.arn = self.role.arn
        self.name = self.role.name
        self.register_outputs({"arn": self.arn, "name": self.name})

    def add_policy(self, policy_name: str, statements: Sequence[Statement]) -> aws.iam.RolePolicy:
        """Attach `statements` as the inline policy `<role>-<policy_name>`; names must be unique per role."""
        if not re.match(r"^[a-z0-9][a-z0-9-]*$", policy_name):
            raise ValueError(f"policy name {policy_name!r} must be lowercase letters, digits and '-'")
        if policy_name in self._policy_names:
            raise ValueError(f"role {self._name!r} already has a policy named {policy_name!r}")
        self._policy_names.add(policy_name)
        return aws.iam.RolePolicy(
            f"{self._name}-{policy_name}",
            role=self.role.id,
            policy=policy_document(statements),
            opts=child(self),
        )

    def add_policies(self, policy_name: str, concerns: Mapping[str, Sequence[Statement]]) -> aws.iam.RolePolicy:
        """Attach several concerns as ONE inline policy `<role>-<policy_name>`.

        Each concern's statements get a Sid from its name (`read-artifact` -> `ReadArtifact`, then
        `ReadArtifact2`, ... when it has several), so the single document still reads concern by
        concern. Components that own a role and know all of its permissions up front use this:
        one policy per role is one resource and one IAM call instead of one per concern.
        """
        statements: list[Statement] = []
        for concern, group in concerns.items():
            if not re.match(r"^[a-z0-9][a-z0-9-]*$", concern):
                raise ValueError(f"concern name {concern!r} must be lowercase letters, digits and '-'")
            base = "".join(part.capitalize() for part in concern.split("-"))
            for index, statement in enumerate(group, start=1):
                sid = statement.sid or (base if index == 1 else f"{base}{index}")
                statements.append(dataclasses.replace(statement, sid=sid))
        sids = [statement.sid for statement in statements]
        if len(set(sids)) != len(sids):
            raise ValueError(f"policy {policy_name!r} of role {self._name!r} repeats a statement Sid: {', '.join(sids)}")
        return self.add_policy(policy_name, statements)

    def grant_pass_to(self, grantee: "ServiceRole", service: str) -> aws.iam.RolePolicy:
        """Let `grantee` pass this role to `service` only (e.g. a pipeline starting training jobs)."""
        return grantee.add_policy(
            f"pass-{name_token(self._name)}",
            [Statement(
                actions=["iam:PassRole"],
                resources=[self.arn],
                conditions={"StringEquals": {"iam:PassedToService": service}},
            )],
        )


def sagemaker_job_log_statements(parent: pulumi.Resource) -> list[Statement]:
    """CloudWatch Logs for SageMaker jobs, limited to SageMaker's own log groups in this account."""
    from emlops.components.aws_context import aws_context

    groups = aws_context(parent).arn("logs", "log-group:/aws/sagemaker/*")
    return [
        Statement(actions=["logs:CreateLogGroup"], resources=[groups]),
        Statement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                  resources=[concat(groups, ":log-stream:*")]),
    ]
