"""What `Personas` take: their settings (a stack file's `personas` section) and their context (what the
personas act on: the platform's key, buckets, groups, endpoints, schedules, pipelines and job roles)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi
from pydantic import Field, field_validator

from emlops.components.iam import FULL_ACCESS_POLICY
from emlops.components.settings import Governance, Settings, error_message

PERSONAS = ("data-scientist", "ml-engineer", "platform-admin", "business-viewer")
PERSONA_TAG = "emlops-persona"
# Where IAM Identity Center creates the roles of its permission sets in an account (people sign in through them).
IDENTITY_CENTER_ROLES = "/aws-reserved/sso.amazonaws.com/*"
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
    "permissions_boundary_arn": "arn:aws:iam::<account>:policy/<name>",
    "job_subnet_ids": "subnet-<hex>",
    "job_security_group_ids": "sg-<hex>",
}
_FORM_PARTS = {"arn:aws:": r"arn:aws(-cn|-us-gov)?:", "<region>": r"[a-z]{2}(-[a-z]+)+-\d",
               "<account>": r"(\d{12}|aws)", "<bucket>": r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
               "<id>": r"[a-f0-9-]{36}|mrk-[a-f0-9]{32}", "<name>": r"[\w+=,.@/-]{1,128}", "<hex>": r"[0-9a-f]{8,17}"}


def _id_pattern(form: str) -> re.Pattern:
    pattern = re.escape(form)
    for part, regex in _FORM_PARTS.items():
        pattern = pattern.replace(re.escape(part), f"({regex})")
    return re.compile(pattern)


# A key prefix that means exactly itself in an IAM policy: folders ending in '/', no IAM wildcard ('*', '?'), no
# policy variable ('${'), no '.', '..' or empty folder, no control character.
# (the pattern has the shape and characters; `_literal_prefix` the folders and '${', which need look-arounds)
_PREFIX = r"[^/*?\x00-\x1f\x7f][^*?\x00-\x1f\x7f]*/"
_PREFIX_HELP = ("must be folders each ending in '/' (not starting with '/'), without '*', '?', '${', control "
                "characters or '.'/'..' folders, e.g. 'experiments/'")
# What the platform keeps under the artifacts bucket (registered model artifacts, MLflow's store).
RESERVED_ARTIFACT_PREFIXES = ("models/", "mlflow/")

PRINCIPAL_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):(role|user)/[\w+=,.@/*-]+$")
_PRINCIPAL_EXAMPLE = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*"


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
            if not isinstance(arn, str) or not PRINCIPAL_ARN.match(arn):
                raise ValueError(f"trusted principal {arn!r} of {persona} must be an IAM role or user ARN "
                                 f"('*' allowed in the name), e.g. {_PRINCIPAL_EXAMPLE!r}")
            if owner.setdefault(arn, persona) != persona:
                raise ValueError(f"principal {arn!r} may assume both {owner[arn]} and {persona}; "
                                 "give each principal one persona")


class PersonasSettings(Settings):
    """IAM roles for the people who work on the platform, one least-privilege role per persona."""

    trusted_principal_arns: dict[str, list[str]] = Field(
        default_factory=dict,
        description=f"Per persona ({', '.join(PERSONAS)}), the IAM role or user ARNs that may assume it; a `*` "
        "may stand in the name, e.g. an Identity Center permission-set role "
        "`arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*`. "
        "Each principal belongs to one persona and is in the stack's account or one of `identity_account_ids`. "
        "Default: Identity Center permission-set roles (`role/aws-reserved/sso.amazonaws.com/*`) of those "
        f"accounts whose principal carries the tag `{PERSONA_TAG}=<persona>` (a tag alone is never enough).")
    max_session_hours: int = Field(
        4, ge=1, le=12, strict=True,
        description="Longest session a persona role allows, in hours (sessions reached by role chaining, "
        "e.g. from Identity Center, last at most 1 hour). Default: 4.")
    require_mfa: Optional[bool] = Field(
        None,
        description="Require MFA (`aws:MultiFactorAuthPresent`) to assume a persona. SAML and Identity Center "
        "sessions do not carry the key (the IdP does the MFA): set false for them. Default: true in production.")
    datasets_prefix: str = Field(
        "", pattern=f"^({_PREFIX})?$",
        description="Key prefix of the datasets bucket data scientists (and the training jobs they start) read. "
        "Default: the whole bucket.", json_schema_extra=error_message(_PREFIX_HELP))
    experiments_prefix: str = Field(
        "experiments/", pattern=f"^{_PREFIX}$",
        description="Key prefix of the artifacts bucket data scientists (and the training jobs they start) read and "
        f"write; not under {' or '.join(RESERVED_ARTIFACT_PREFIXES)} (the registry's). Default: `experiments/`.",
        json_schema_extra=error_message(_PREFIX_HELP))
    identity_account_ids: list[str] = Field(
        default_factory=list,
        description="Accounts besides the stack's own whose principals may be trusted (e.g. the account people "
        "sign in to through Identity Center); every principal in `trusted_principal_arns` is in the stack's "
        "account or one of these. Default: none.")

    @field_validator("datasets_prefix", "experiments_prefix")
    @classmethod
    def _literal_prefix(cls, value: str) -> str:
        if "${" in value or any(folder in ("", ".", "..") for folder in value.split("/")[:-1]):
            raise ValueError(_PREFIX_HELP)
        return value

    @field_validator("experiments_prefix")
    @classmethod
    def _not_the_registrys(cls, value: str) -> str:
        for reserved in RESERVED_ARTIFACT_PREFIXES:
            if value.startswith(reserved):
                raise ValueError(f"{value!r} is under {reserved}, which only the platform's pipelines and MLflow "
                                 "write; choose another prefix, e.g. 'experiments/'")
        return value

    @field_validator("identity_account_ids")
    @classmethod
    def _accounts(cls, value: list[str]) -> list[str]:
        for account in value:
            if not re.fullmatch(r"[0-9]{12}", account):
                raise ValueError(f"{account!r} is not a 12-digit AWS account id (quote it: '123456789012')")
        if len(set(value)) != len(value):
            raise ValueError("account ids must be unique")
        return value

    @field_validator("trusted_principal_arns")
    @classmethod
    def _principals(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        try:
            check_trusted_principals(value)
        except ValueError as exc:  # the error's key path already ends in trusted_principal_arns
            raise ValueError(str(exc).removeprefix("trusted_principal_arns: ")) from None
        return value

    def mfa_required(self, production: bool) -> bool:
        """Whether assuming a persona needs MFA: as set, else in production."""
        return production if self.require_mfa is None else self.require_mfa


@dataclass(frozen=True)
class PersonasContext:
    """What the platform supplies to `Personas`: what the personas act on."""

    environment: str
    """Environment name (`dev`, `prod`, ...), used in descriptions and the default resource tags."""
    data_key_arn: pulumi.Input[str]
    """KMS key of the datasets and artifacts buckets (and of the jobs' volumes and outputs)."""
    datasets_bucket_arn: Optional[pulumi.Input[str]]
    """Bucket data scientists read and admins may not read (none in a registry-only stack)."""
    artifacts_bucket_arn: pulumi.Input[str]
    """Bucket of model artifacts; data scientists write only under the experiments prefix."""
    feature_group_arns: Sequence[pulumi.Input[str]] = ()
    """Feature groups data scientists read. Default: none."""
    package_group_arns: Sequence[pulumi.Input[str]] = ()
    """Model package groups: data scientists register versions, ML engineers approve them. Default: none."""
    shared_group_arns: Sequence[pulumi.Input[str]] = ()
    """Model package groups of a shared-services registry (another account): ML engineers and data scientists
    describe them; approving is the registry account's decision. Default: none."""
    shared_group_publisher: bool = False
    """This account publishes into `shared_group_arns`: data scientists may also register versions there (for
    approval). Default: false."""
    endpoint_arns: Sequence[pulumi.Input[str]] = ()
    """Endpoints ML engineers describe and invoke. Default: none."""
    monitoring_schedule_arns: Sequence[pulumi.Input[str]] = ()
    """Monitoring schedules ML engineers describe, start and stop. Default: none."""
    pipeline_arns: Sequence[pulumi.Input[str]] = ()
    """Pipelines (retraining, batch transform) ML engineers start and stop. Default: none."""
    training_role_arn: Optional[pulumi.Input[str]] = None
    """Role data scientists pass to their training and processing jobs; it must read and write no more than they
    may (the datasets prefix, the experiments prefix). Default: none (no jobs)."""
    job_subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Subnets jobs must run in. Default: any subnet, but always in a VPC."""
    job_security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups jobs must run in (all of their groups among these). Default: any, but at least one."""
    name_prefix: Optional[str] = None
    """Name prefix of the platform's IAM roles and SageMaker resources. Default: `<environment>-`."""
    dashboard_prefix: Optional[str] = None
    """Name prefix of the platform's CloudWatch dashboards, which business viewers see. Default:
    `emlops-<environment>` (the platform's dashboards, `infra/dashboards.py`)."""
    resource_tags: Optional[Mapping[str, str]] = None
    """Tags that mark the platform's resources for admins. Default: `environment=<environment>` and
    `managed-by=emlops` (what the platform puts on every resource)."""
    production: bool = False
    """Production environment (MFA required by default). Default: false."""
    governance: Governance = field(default_factory=Governance)
    """Tags of the roles, and the boundary of the persona roles and of every role admins create or change."""

    @property
    def permissions_boundary_arn(self) -> Optional[str]:
        return self.governance.permissions_boundary_arn

    @property
    def managed_prefix(self) -> str:
        return self.name_prefix or f"{self.environment}-"

    @property
    def platform_tags(self) -> dict[str, str]:
        return dict(self.resource_tags or {"environment": self.environment, "managed-by": "emlops"})

    def check(self) -> None:
        """ValueError in one line when the context cannot work (before anything exists): environment names, and
        ids given as literal strings of the wrong shape (Outputs are the platform's own)."""
        if not re.match(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$", self.environment):
            raise ValueError(f"environment {self.environment!r} must be 2-16 lowercase letters, digits or '-'")
        for label, form in _ID_FORMS.items():
            value, many = getattr(self, label), label.endswith("s")
            if many and isinstance(value, str):
                raise ValueError(f"{label} must be a list, e.g. [{value!r}]")
            for item in value if many else [value]:
                if isinstance(item, str) and not _id_pattern(form).fullmatch(item):
                    raise ValueError(f"{label}: {item!r} must look like {form!r}")
        if isinstance(self.permissions_boundary_arn, str) and FULL_ACCESS_POLICY.search(self.permissions_boundary_arn):
            raise ValueError("a *FullAccess managed policy cannot serve as a permissions boundary")
        if self.name_prefix is not None and not re.fullmatch(r"[\w+=,.@-]{2,32}", self.name_prefix):
            raise ValueError(f"name_prefix {self.name_prefix!r} must be 2-32 letters, digits or '+=,.@_-'")
        if self.dashboard_prefix is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", self.dashboard_prefix):
            raise ValueError(f"dashboard_prefix {self.dashboard_prefix!r} must be letters, digits, '_' or '-' "
                             "(CloudWatch dashboard names)")
