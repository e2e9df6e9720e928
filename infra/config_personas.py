"""Stack config for the persona roles people assume: `personas` (data-scientist, ml-engineer, platform-admin).

The section joins `PlatformConfig` as `personas: Optional[PersonasConfig]`; `personas_args` turns it into
`PersonasArgs` whose platform-owned fields (key, buckets, groups, endpoints, roles, boundary, tags) are left
for MlPlatform to fill in with `dataclasses.replace`, as it does for the feature store and monitors.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field, field_validator

from emlops.components.settings import Settings

from emlops.components.personas import PERSONA_TAG, PERSONAS, PersonasArgs, check_trusted_principals


class PersonasConfig(Settings):
    """IAM roles for the people who work on the platform, one least-privilege role per persona."""

    trusted_principal_arns: dict[str, list[str]] = Field(
        default_factory=dict,
        description=f"Per persona ({', '.join(PERSONAS)}), the IAM role or user ARNs that may assume it; a `*` "
        "may stand in the name, e.g. an Identity Center permission-set role "
        "`arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*`. "
        f"Each principal belongs to one persona. Default: principals of the stack's account tagged "
        f"`{PERSONA_TAG}=<persona>`.")
    max_session_hours: int = Field(
        4, ge=1, le=12,
        description="Longest session a persona role allows, in hours (sessions reached by role chaining, "
        "e.g. from Identity Center, last at most 1 hour). Default: 4.")
    require_mfa: Optional[bool] = Field(
        None,
        description="Require MFA (`aws:MultiFactorAuthPresent`) to assume a persona. SAML and Identity Center "
        "sessions do not carry the key (the IdP does the MFA): set false for them. Default: true in production.")
    experiments_prefix: str = Field(
        "experiments/", pattern=r"^[^/*][^*]*/$",
        description="Key prefix of the artifacts bucket data scientists read and write. Default: `experiments/`.",
        json_schema_extra={"errorMessage": "must end with '/', not start with '/', and have no '*'"})

    @field_validator("trusted_principal_arns")
    @classmethod
    def _principals(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        try:
            check_trusted_principals(value)
        except ValueError as exc:  # the error's key path already ends in trusted_principal_arns
            raise ValueError(str(exc).removeprefix("trusted_principal_arns: ")) from None
        return value


def personas_args(config: PersonasConfig, *, environment: str, production: bool) -> PersonasArgs:
    """The stack's choices; MlPlatform fills in the resources the personas act on."""
    return PersonasArgs(
        environment=environment, data_key_arn=None, datasets_bucket_arn=None, artifacts_bucket_arn=None,
        trusted_principal_arns={persona: list(arns) for persona, arns in config.trusted_principal_arns.items()},
        max_session_hours=config.max_session_hours, require_mfa=config.require_mfa,
        experiments_prefix=config.experiments_prefix, production=production)
