"""Personas: the IAM roles people assume to work on the platform, one least-privilege role per persona.

- `data-scientist` reads datasets and features, keeps experiments under its own artifacts prefix, runs
  training and processing jobs (in the VPC, encrypted with the data key) and registers model versions
  for approval; it can neither approve a version nor touch an endpoint.
- `ml-engineer` operates models: approves or rejects versions, runs the retraining pipelines, watches
  and invokes endpoints and monitors, reads artifacts; it administers neither IAM nor KMS.
- `platform-admin` runs the platform: changes resources that carry the platform's tags, the roles
  under the platform's name prefix (within the permissions boundary) and the data key's settings,
  reads configuration everywhere else, and is denied the data itself (no decrypt, no dataset reads).

Humans assume these roles, so the trust is built here (ServiceRole trusts AWS services): the principals
listed per persona, or by default any principal of this account tagged `emlops-persona=<persona>`
(e.g. by an Identity Center attribute); MFA in production. No persona may delete stateful resources.
The action lists and the persona policies themselves are built in `components.personas_policies`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import AwsContext, aws_context
from emlops.components.iam import _FULL_ACCESS, Statement, policy_document
from emlops.components.options import child, merge_tags, type_token
from emlops.components.personas_policies import (ADMIN_TAGGED_ACTIONS, ENDPOINT_CHANGES,  # noqa: F401 (re-exported)
                                          KEEP_STATE, KEY_ADMIN_ACTIONS, PERSONA_PATH, READ_ONLY_ACTIONS,
                                          ROLE_GRANT_ACTIONS, ROLE_OTHER_ACTIONS, SAGEMAKER, STATEFUL_DELETIONS,
                                          Policies, _bucket, _data_scientist, _jobs, _ml_engineer, _named,
                                          _packages, _platform_admin)

PERSONAS = ("data-scientist", "ml-engineer", "platform-admin")
PERSONA_TAG = "emlops-persona"
# IAM quotas (characters without whitespace): a role's inline policies together, and its trust policy.
INLINE_POLICIES_LIMIT, TRUST_POLICY_LIMIT = 10240, 2048


# What an argument's ids look like, checked when given as literal strings (Outputs are the platform's own).
_ID_FORMS = {
    "data_key_arn": "arn:aws:kms:<region>:<account>:key/<id>",
    "datasets_bucket_arn": "arn:aws:s3:::<bucket>",
    "artifacts_bucket_arn": "arn:aws:s3:::<bucket>",
    "feature_group_arns": "arn:aws:sagemaker:<region>:<account>:feature-group/<name>",
    "package_group_arns": "arn:aws:sagemaker:<region>:<account>:model-package-group/<name>",
    "shared_group_arns": "arn:aws:sagemaker:<region>:<account>:model-package-group/<name>",
    "endpoint_arns": "arn:aws:sagemaker:<region>:<account>:endpoint/<name>",
    "monitoring_schedule_arns": "arn:aws:sagemaker:<region>:<account>:monitoring-schedule/<name>",
    "pipeline_arns": "arn:aws:sagemaker:<region>:<account>:pipeline/<name>",
    "training_role_arn": "arn:aws:iam::<account>:role/<name>",
    "execution_role_arns": "arn:aws:iam::<account>:role/<name>",
    "permissions_boundary_arn": "arn:aws:iam::<account>:policy/<name>",
    "job_subnet_ids": "subnet-<hex>",
}
_FORM_PARTS = {"arn:aws:": r"arn:aws(-cn|-us-gov)?:", "<region>": r"[a-z]{2}(-[a-z]+)+-\d",
               "<account>": r"(\d{12}|aws)", "<bucket>": r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
               "<id>": r"[a-f0-9-]{36}|mrk-[a-f0-9]{32}", "<name>": r"[\w+=,.@/-]{1,128}", "<hex>": r"[0-9a-f]{8,17}"}


def _id_pattern(form: str) -> re.Pattern:
    pattern = re.escape(form)
    for part, regex in _FORM_PARTS.items():
        pattern = pattern.replace(re.escape(part), f"({regex})")
    return re.compile(pattern)


_PRINCIPAL = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)/[\w+=,.@/*-]+$")
_PRINCIPAL_EXAMPLE = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*"


@dataclass
class PersonasArgs:
    """Arguments of `Personas`: what the personas act on, and who may become each of them."""

    environment: str
    """Environment name (`dev`, `prod`, ...), used in descriptions and the default resource tags."""
    data_key_arn: pulumi.Input[str]
    """KMS key of the datasets and artifacts buckets (and of the jobs' volumes and outputs)."""
    datasets_bucket_arn: pulumi.Input[str]
    """Bucket data scientists read and admins may not read."""
    artifacts_bucket_arn: pulumi.Input[str]
    """Bucket of model artifacts; data scientists write only under `experiments_prefix`."""
    trusted_principal_arns: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Per persona, the IAM role or user ARNs (a `*` may stand in the name, e.g. an Identity Center
    permission-set role pattern) that may assume it; each principal belongs to one persona.
    Default: any principal of this account tagged `emlops-persona=<persona>`."""
    feature_group_arns: Sequence[pulumi.Input[str]] = ()
    """Feature groups data scientists read. Default: none."""
    package_group_arns: Sequence[pulumi.Input[str]] = ()
    """Model package groups: data scientists register versions, ML engineers approve them. Default: none."""
    shared_group_arns: Sequence[pulumi.Input[str]] = ()
    """Model package groups of a shared-services registry (another account): ML engineers and data
    scientists describe them; approving is the registry account's decision. Default: none."""
    shared_group_publisher: bool = False
    """This account publishes into `shared_group_arns`: data scientists may also register versions there
    (for approval). Default: false."""
    endpoint_arns: Sequence[pulumi.Input[str]] = ()
    """Endpoints ML engineers describe and invoke. Default: none."""
    monitoring_schedule_arns: Sequence[pulumi.Input[str]] = ()
    """Monitoring schedules ML engineers describe, start and stop. Default: none."""
    pipeline_arns: Sequence[pulumi.Input[str]] = ()
    """Retraining pipelines ML engineers start and stop. Default: none."""
    training_role_arn: Optional[pulumi.Input[str]] = None
    """Role data scientists and ML engineers pass to training and processing jobs. Default: none (no jobs)."""
    execution_role_arns: Sequence[pulumi.Input[str]] = ()
    """Further roles ML engineers may pass to SageMaker jobs. Default: none."""
    job_subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Subnets jobs must run in. Default: any subnet, but always in a VPC."""
    datasets_prefix: str = ""
    """Key prefix data scientists read in the datasets bucket. Default: the whole bucket."""
    experiments_prefix: str = "experiments/"
    """Key prefix data scientists read and write in the artifacts bucket. Default: `experiments/`."""
    name_prefix: Optional[str] = None
    """Name prefix of the platform's IAM roles and SageMaker resources. Default: `<environment>-`."""
    resource_tags: Optional[Mapping[str, str]] = None
    """Tags that mark the platform's resources for admins. Default: `environment=<environment>` and
    `managed-by=emlops` (what MlPlatform puts on every resource)."""
    permissions_boundary_arn: Optional[pulumi.Input[str]] = None
    """Boundary of the persona roles and of every role admins create or change. Default: none."""
    max_session_hours: int = 4
    """Longest session a persona role allows, 1-12 hours (role chaining caps sessions at 1). Default: 4."""
    require_mfa: Optional[bool] = None
    """Require `aws:MultiFactorAuthPresent` to assume a persona (SAML and Identity Center sessions do not
    carry it: their MFA is the IdP's). Default: in production."""
    production: bool = False
    """Production environment (MFA required by default). Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of the roles. Default: none."""

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$", self.environment):
            raise ValueError(f"environment {self.environment!r} must be 2-16 lowercase letters, digits or '-'")
        hours = self.max_session_hours
        if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 12:
            raise ValueError(f"max_session_hours ({self.max_session_hours!r}) must be a whole number 1-12")
        for label, form in _ID_FORMS.items():
            value, many = getattr(self, label), label.endswith("s")
            if many and isinstance(value, str):
                raise ValueError(f"{label} must be a list, e.g. [{value!r}]")
            for item in value if many else [value]:
                if isinstance(item, str) and not _id_pattern(form).fullmatch(item):
                    raise ValueError(f"{label}: {item!r} must look like {form!r}")
        if isinstance(self.permissions_boundary_arn, str) and _FULL_ACCESS.search(self.permissions_boundary_arn):
            raise ValueError("a *FullAccess managed policy cannot serve as a permissions boundary")
        for label in ("datasets_prefix", "experiments_prefix"):
            prefix = getattr(self, label)
            if prefix and (prefix.startswith("/") or not prefix.endswith("/") or "*" in prefix):
                raise ValueError(f"{label} {prefix!r} must end with '/', not start with '/', and have no '*'")
        if not self.experiments_prefix:
            raise ValueError("experiments_prefix must not be empty: data scientists write only under it")
        if self.name_prefix is not None and not re.fullmatch(r"[\w+=,.@-]{2,32}", self.name_prefix):
            raise ValueError(f"name_prefix {self.name_prefix!r} must be 2-32 letters, digits or '+=,.@_-'")
        check_trusted_principals(self.trusted_principal_arns)

    @property
    def managed_prefix(self) -> str:
        return self.name_prefix or f"{self.environment}-"

    @property
    def platform_tags(self) -> dict[str, str]:
        return dict(self.resource_tags or {"environment": self.environment, "managed-by": "emlops"})

    @property
    def mfa_required(self) -> bool:
        return self.production if self.require_mfa is None else self.require_mfa


def check_trusted_principals(trusted: Mapping[str, Sequence[str]]) -> None:
    """Known personas, IAM role/user ARNs (patterns allowed) and no principal in two personas."""
    owner: dict[str, str] = {}
    for persona, arns in trusted.items():
        if persona not in PERSONAS:
            raise ValueError(f"trusted_principal_arns: unknown persona {persona!r}; personas: {', '.join(PERSONAS)}")
        if isinstance(arns, str):
            raise ValueError(f"trusted_principal_arns[{persona!r}] must be a list, e.g. [{arns!r}]")
        if not arns:
            raise ValueError(f"trusted_principal_arns[{persona!r}] is empty; list who may assume {persona} "
                             "or leave it out")
        for arn in arns:
            if not isinstance(arn, str) or not _PRINCIPAL.match(arn):
                raise ValueError(f"trusted principal {arn!r} of {persona} must be an IAM role or user ARN "
                                 f"('*' allowed in the name), e.g. {_PRINCIPAL_EXAMPLE!r}")
            if owner.setdefault(arn, persona) != persona:
                raise ValueError(f"principal {arn!r} may assume both {owner[arn]} and {persona}; "
                                 "give each principal one persona")


class Personas(pulumi.ComponentResource):
    """One IAM role per persona (`data-scientist`, `ml-engineer`, `platform-admin`), each with its own
    trust and named inline policies; `role_arns` maps each persona to its role."""

    roles: dict[str, aws.iam.Role]
    role_arns: dict[str, pulumi.Output[str]]
    role_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PersonasArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("Personas"), name, None, opts)
        context = aws_context(self)
        self.roles = {}
        for persona in PERSONAS:
            self.roles[persona] = aws.iam.Role(
                f"{name}-{persona}",
                assume_role_policy=_within_limit(f"the {persona} role's trust policy", TRUST_POLICY_LIMIT,
                                                 policy_document(_trust(args, persona, context)),
                                                 "list fewer principals (a '*' pattern can stand for several)"),
                description=f"{persona} persona of the {args.environment} ML platform",
                max_session_duration=args.max_session_hours * 3600,
                path=PERSONA_PATH,
                permissions_boundary=args.permissions_boundary_arn,
                tags=merge_tags(args.tags),
                opts=child(self),
            )
        self.role_arns = {persona: role.arn for persona, role in self.roles.items()}
        self.role_names = {persona: role.name for persona, role in self.roles.items()}
        policies = {
            "data-scientist": _data_scientist(args, context),
            "ml-engineer": _ml_engineer(args, context),
            "platform-admin": _platform_admin(args, context),
        }
        for persona, named in policies.items():
            documents = {policy_name: policy_document(statements) for policy_name, statements in named}
            # IAM counts a role's inline policies together; long resource lists are caught here, not by AWS
            total = _within_limit(f"the {persona} role's inline policies", INLINE_POLICIES_LIMIT,
                                  pulumi.Output.all(*documents.values()).apply("".join),
                                  "give it fewer resources")
            for policy_name, document in documents.items():
                aws.iam.RolePolicy(f"{name}-{persona}-{policy_name}", role=self.roles[persona].id,
                                   policy=pulumi.Output.all(document, total).apply(lambda both: both[0]),
                                   opts=child(self))
        self.register_outputs({"roleArns": self.role_arns, "roleNames": self.role_names})


def _within_limit(what: str, limit: int, text: pulumi.Output[str], fix: str) -> pulumi.Output[str]:
    def check(value: str) -> str:
        size = len(re.sub(r"\s", "", value))  # IAM does not count whitespace
        if size > limit:
            raise ValueError(f"{what} would be {size} characters, over IAM's limit of {limit}; {fix}")
        return value
    return text.apply(check)


def _trust(args: PersonasArgs, persona: str, context: AwsContext) -> list[Statement]:
    listed = args.trusted_principal_arns.get(persona)
    if listed:
        # IAM allows no wildcard in Principal: trust the principals' accounts, match the ARNs in a condition.
        roots = sorted({f"arn:{m.group(1)}:iam::{m.group(2)}:root" for m in map(_PRINCIPAL.match, listed)})
        conditions: dict = {"ArnLike": {"aws:PrincipalArn": list(listed)}}
    else:
        roots = [context.arn("iam", "root", regional=False)]
        conditions = {"StringEquals": {f"aws:PrincipalTag/{PERSONA_TAG}": persona}}
    # a persona's session never becomes another persona (of any environment)
    conditions["ArnNotLike"] = {"aws:PrincipalArn": context.arn("iam", f"role{PERSONA_PATH}*", regional=False)}
    if args.mfa_required:
        conditions["Bool"] = {"aws:MultiFactorAuthPresent": "true"}
    return [Statement(actions=["sts:AssumeRole", "sts:TagSession"], principals={"AWS": roots},
                      conditions=conditions)]
