"""The typed stack configuration: everything a `stacks/Pulumi.<stack>.yaml` may say.

A stack's whole platform lives under one Pulumi config key, `emlops:platform`. It is validated here,
before any resource is registered, and every problem is reported as one line naming the stack file,
the key path and what is allowed::

    stacks/Pulumi.dev.yaml: emlops:platform.tags.owner: field required

Unknown keys are rejected so that a typo can never be silently ignored. This module holds what every stack
says about itself (`StackConfig`: environment, account, region, tags, boundary) and how a stack's settings
are read and reported; the sections, one per component, are declared beside the stages that build them in
the composition root (`infra/platform.py`, `PlatformConfig`), and the checks across sections in
`infra/rules.py`. The one-line messages are worded from pydantic's errors in `infra/config_errors.py`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any, Literal, Optional, TypeVar

from pulumi import RunError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from emlops.catalog.aws import Partition, partition_of, regions_with
from emlops.components.iam import ADMINISTRATOR_POLICY, FULL_ACCESS_POLICY
from emlops.components.settings import AtKey, QuotedStr, Settings, error_message
from emlops.program.config_errors import CONFIG_KEY, CONFIG_NAMESPACE, FULL_KEY, describe, printable

# Secrets live in their own keys (`pulumi config set --secret ...`), never inside emlops:platform.
MLFLOW_BACKEND_KEY = "mlflowBackendStoreUri"
SCHEMA_ID = "https://emlops.dev/schemas/platform-config.json"
REQUIRED_TAGS = ("owner", "cost-center", "data-classification")
# Tags the platform sets itself on every resource (MlPlatform): a stack's own tag of that key would be overwritten.
PLATFORM_TAGS = ("environment", "managed-by")
# AWS's tag limits (the Tagging API and IAM alike).
TAG_KEY_MAX, TAG_VALUE_MAX, TAGS_PER_RESOURCE = 128, 256, 50
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_TAG_CHARACTERS = "letters, digits, spaces and _ . : / = + - @"
# Values that are secrets whatever key holds them: the stack file is plaintext in git, and the plan shows it.
_SECRET_VALUES = (
    (re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://[^/\s@:]*:[^/\s@]+@"), "a URI with a password"),
    (re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"(?<![A-Za-z0-9])(gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})"), "a GitHub token"),
    (re.compile(r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"), "a Hugging Face token"),
)
_DATABASE_SCHEMES = re.compile(r"^(postgres(ql)?|mysql|mssql|mariadb|oracle|sqlite)(\+\w+)?$")
SECRET_HINT = "secrets go in Pulumi config secrets (`pulumi config set --secret`), never in the stack file"
SECURE_IN_PLATFORM = ("a secret (secure:) inside emlops:platform would reach the plan and the Pulumi state in "
                      "plaintext; secrets have config keys of their own (models[].secret_environment, "
                      "emlops:mlflowBackendStoreUri)")


_CONTAINER_ENVIRONMENT = re.compile(r"^(?P<model>models\[[0-9]+\])\.environment\.(?P<name>.+)$")


def secret_value_problem(text: str, path: str = "") -> Optional[str]:
    """Why `text` (at key path `path`) is a secret that may not sit in a stack file in plaintext, or None."""
    for pattern, what in _SECRET_VALUES:
        found = pattern.search(text)
        if found is None:
            continue
        container = _CONTAINER_ENVIRONMENT.match(path)
        if container:
            return (f"holds {what}; environment values are plaintext in the stack file, the plan and the Pulumi "
                    f"state: move it to {container['model']}.secret_environment ({container['name']}: <config key>) "
                    "and set the key with `pulumi config set --secret emlops:<config key> <value>`")
        if what == "a URI with a password" and _DATABASE_SCHEMES.match(found["scheme"].lower()):
            return (f"holds a database URI with its password; an MLflow backend store URI is a secret: set it with "
                    f"`pulumi config set --secret {CONFIG_NAMESPACE}:mlflowBackendStoreUri <uri>`")
        return f"holds {what}; {SECRET_HINT}"
    return None


def _string_leaves(value: Any, path: str):
    """(key path, text) of every string under `value`, paths as the config errors write them."""
    if isinstance(value, dict):
        for key, item in value.items():
            key = printable(str(key), quote=True)
            yield from _string_leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def _tag_character_problem(text: str) -> Optional[str]:
    """The first character AWS does not allow in a tag (Unicode letters, numbers and space separators, and
    `_ . : / = + - @`), or None. Tabs, line breaks and other control characters are never allowed."""
    for char in text:
        if not (char.isalnum() or char in _TAG_PUNCTUATION or unicodedata.category(char) == "Zs"):
            return char
    return None


def _tag_value_problem(value: str) -> Optional[str]:
    char = _tag_character_problem(value)
    if char is not None:
        return f"has {char!r}, which AWS does not allow in a tag value ({_TAG_CHARACTERS})"
    if len(value) > TAG_VALUE_MAX:
        return f"is {len(value)} characters long; AWS allows at most {TAG_VALUE_MAX} in a tag value"
    return None


class ConfigError(RunError):
    """A stack configuration problem, reported as one line without a traceback.

    It is a `pulumi.RunError`, so the real `pulumi up` also prints just the message. The message is made
    printable on one line, whatever a stack file's keys and values hold (`config_errors.printable`).
    """

    def __init__(self, message: object) -> None:
        super().__init__(printable(str(message)))


class Tags(BaseModel):
    """Tags applied to every resource of the stack. `owner`, `cost-center` and
    `data-classification` are required; any other key is an extra tag. Keys and values follow AWS's tag rules:
    keys of 1-128 and values of at most 256 letters, digits, spaces and `_ . : / = + - @`, no key starting with
    `aws:`, no two keys that differ only in case (IAM compares them case-insensitively)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=False)
    __pydantic_extra__: dict[str, str] = Field(init=False)  # extra tags are strings too

    owner: str = Field(
        min_length=1,
        description="Team or person accountable for the stack's resources (e.g. an e-mail or team alias).",
    )
    cost_center: QuotedStr = Field(
        alias="cost-center", min_length=1,
        description="Cost center that pays for the stack's resources.",
    )
    data_classification: Literal["public", "internal", "confidential", "restricted"] = Field(
        alias="data-classification",
        description="Highest classification of the data the platform processes.",
    )

    @field_validator("owner", "cost_center")
    @classmethod
    def _required_value(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            who = "the team or person accountable" if info.field_name == "owner" else "the cost center that pays"
            raise ValueError(f"must not be blank; name {who}")
        problem = _tag_value_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _check_extra_keys(self) -> "Tags":
        extra = self.__pydantic_extra__ or {}
        seen = {key.lower(): key for key in REQUIRED_TAGS}
        for key, value in extra.items():
            at = printable(key, quote=True)
            char = _tag_character_problem(key)
            if char is not None:
                raise AtKey(at, f"tag key has {char!r}, which AWS does not allow in a tag key ({_TAG_CHARACTERS})")
            if not 1 <= len(key) <= TAG_KEY_MAX:
                raise AtKey(at, f"tag key is {len(key)} characters long; AWS allows 1-{TAG_KEY_MAX}")
            if key.lower().startswith("aws:"):
                raise AtKey(at, "tag keys starting with 'aws:' are reserved for AWS; choose another key")
            if key in PLATFORM_TAGS:
                raise AtKey(at, f"the platform sets the {key!r} tag itself on every resource; drop it")
            if key.lower() in seen:
                raise AtKey(at, f"differs from tag {seen[key.lower()]!r} only in case; IAM compares tag keys "
                            "case-insensitively, so a role cannot carry both")
            seen[key.lower()] = key
            problem = _tag_value_problem(value)
            if problem:
                raise AtKey(at, problem)
        # emlops adds its own tags (PLATFORM_TAGS) and keeps one spare for the deploy tooling.
        most = TAGS_PER_RESOURCE - len(PLATFORM_TAGS) - 1 - len(REQUIRED_TAGS)
        if len(extra) > most:
            raise ValueError(f"at most {most} extra tags are allowed (AWS allows {TAGS_PER_RESOURCE} tags per "
                             f"resource; the platform adds {len(PLATFORM_TAGS)})")
        return self

    def as_dict(self) -> dict[str, str]:
        """All tags, with AWS tag keys (`cost-center`, ...)."""
        return {**self.model_dump(by_alias=True), **(self.__pydantic_extra__ or {})}


class StackConfig(Settings):
    """What every stack says about itself: its environment, account, region, tags and IAM boundary. The
    platform's settings (`infra.platform.PlatformConfig`) add a section per component."""

    environment: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$",
        description="Environment name, used in resource names and tags (e.g. `dev`, `prod`).",
        json_schema_extra=error_message(
            "must be 2-16 lowercase letters, digits or '-', starting with a letter"
        ),
    )
    production: bool = Field(
        False, strict=True,
        description="Production stacks protect and retain every stateful resource (`true` or `false`, unquoted). "
        "Default: false.",
    )
    account_id: QuotedStr = Field(
        pattern=r"^[0-9]{12}$",
        description="The 12-digit AWS account the stack deploys into.",
        json_schema_extra=error_message("must be a 12-digit AWS account id, e.g. '123456789012'"),
    )
    region: str = Field(
        description="AWS region of the stack; must be a region where SageMaker is available.",
    )
    deploy_role_arn: Optional[str] = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$",
        description="IAM role in `account_id` that the stack's AWS provider assumes (for example from CI's "
        "OIDC session in a tooling account). Default: the caller's credentials are used as they are.",
        json_schema_extra=error_message(
            "must be an IAM role ARN, e.g. 'arn:aws:iam::123456789012:role/emlops-deploy'"),
    )
    tags: Tags = Field(description="Tags every resource carries, by AWS's tag rules: keys of 1-128 and values of at "
                       "most 256 letters, digits, spaces and `_ . : / = + - @`; no key starting with `aws:`, no two "
                       "keys that differ only in case, not `environment` or `managed-by` (the platform sets those).")
    permission_boundary_arn: Optional[str] = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::([0-9]{12}|aws):policy/[A-Za-z0-9_+=,.@/-]{1,128}$",
        description="Managed policy set as the permissions boundary of every IAM role the platform "
        "creates. Default: no boundary.",
        json_schema_extra=error_message(
            "must be an IAM policy ARN, e.g. 'arn:aws:iam::123456789012:policy/ml-boundary'"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _no_plaintext_secrets(cls, data: Any) -> Any:
        """No password, access key, private key or token anywhere in the stack file (it is plaintext in git)."""
        for path, text in _string_leaves(data, "") if isinstance(data, dict) else ():
            problem = secret_value_problem(text, path)
            if problem:
                raise AtKey(path, problem)
        return data

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        known = regions_with("sagemaker")
        if region not in known:
            close = difflib.get_close_matches(region, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{region!r} is not a region with SageMaker; {hint}allowed: {', '.join(known)}")
        return region

    @field_validator("permission_boundary_arn")
    @classmethod
    def _not_full_access(cls, arn: Optional[str]) -> Optional[str]:
        if arn is not None and (FULL_ACCESS_POLICY.search(arn) or ADMINISTRATOR_POLICY.search(arn)):
            raise ValueError("an AWS-managed AdministratorAccess, PowerUserAccess or *FullAccess policy cannot serve "
                             "as a permissions boundary: it bounds nothing; name your organisation's boundary policy")
        return arn

    @model_validator(mode="after")
    def _boundary_in_partition(self) -> "StackConfig":
        arn = self.permission_boundary_arn
        if arn and arn.split(":")[1] != self.partition.name:
            raise ValueError(
                f"permission_boundary_arn is in partition {arn.split(':')[1]!r} but region "
                f"{self.region!r} is in {self.partition.name!r}"
            )
        return self

    @model_validator(mode="after")
    def _deploy_role_in_the_account(self) -> "StackConfig":
        arn = self.deploy_role_arn
        if arn and arn.split(":")[4] != self.account_id:
            raise AtKey("deploy_role_arn", f"is in account {arn.split(':')[4]!r} but the stack deploys into "
                        f"{self.account_id!r}; the provider assumes a role in the stack's own account")
        if arn and arn.split(":")[1] != self.partition.name:
            raise AtKey("deploy_role_arn", f"is in partition {arn.split(':')[1]!r} but region {self.region!r} "
                        f"is in {self.partition.name!r}")
        return self

    @property
    def partition(self) -> Partition:
        """The AWS partition of the stack's region."""
        return partition_of(self.region)


StackSettings = TypeVar("StackSettings", bound=StackConfig)


# --------------------------------------------------------------------------------------------------
# Loading and one-line errors


def stack_file(stack: str) -> str:
    """The stack file a stack's config comes from, as users see it (relative to the project)."""
    return f"stacks/Pulumi.{stack}.yaml"


def parse_config(model: type[StackSettings], raw: Any, source: str) -> StackSettings:
    """Validate the `emlops:platform` value of a stack as `model`; raise ConfigError with one line on failure."""
    if raw is None:
        raise ConfigError(f"{source}: {FULL_KEY}: field required")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # A misspelt key also makes the real key "missing"; the unknown key explains both.
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
        raise ConfigError(f"{source}: {describe(errors[0], model)}") from None


def load_config(model: type[StackSettings]) -> StackSettings:
    """Read and validate the running Pulumi program's stack config as `model`."""
    import json

    import pulumi

    from pulumi.runtime.config import is_config_secret

    source = stack_file(pulumi.get_stack())
    if is_config_secret(FULL_KEY):
        raise ConfigError(f"{source}: {FULL_KEY}: {SECURE_IN_PLATFORM}")
    text = pulumi.Config(CONFIG_NAMESPACE).get(CONFIG_KEY)
    if text is None:
        raise ConfigError(f"{source}: {FULL_KEY}: field required")
    try:
        raw = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        raise ConfigError(f"{source}: {FULL_KEY}: must be a mapping of settings, got {text!r}") from None
    except _RepeatedKey as exc:
        raise ConfigError(f"{source}: {FULL_KEY}: key {exc} appears twice; keep one") from None
    return parse_config(model, raw, source)


class _RepeatedKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys appear once (the stack file's YAML reader refuses repeats the same way)."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(repr(key))
        found[key] = value
    return found


def config_json_schema(model: type[StackConfig]) -> dict[str, Any]:
    """The JSON Schema of `emlops:platform` as `model` reads it, for editors and the README's reference."""
    schema = model.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
