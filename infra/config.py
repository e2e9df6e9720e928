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
from typing import Any, Literal, Optional, TypeVar

from pulumi import RunError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from emlops.catalog.aws import Partition, partition_of, regions_with
from emlops.components.iam import FULL_ACCESS_POLICY
from emlops.components.settings import AtKey, QuotedStr, Settings, error_message
from emlops.program.config_errors import CONFIG_KEY, CONFIG_NAMESPACE, FULL_KEY, describe, printable

# Secrets live in their own keys (`pulumi config set --secret ...`), never inside emlops:platform.
MLFLOW_BACKEND_KEY = "mlflowBackendStoreUri"
SCHEMA_ID = "https://emlops.dev/schemas/platform-config.json"
REQUIRED_TAGS = ("owner", "cost-center", "data-classification")
_TAG_KEY = re.compile(r"^[\w .:/=+\-@]{1,128}$")


class ConfigError(RunError):
    """A stack configuration problem, reported as one line without a traceback.

    It is a `pulumi.RunError`, so the real `pulumi up` also prints just the message. The message is made
    printable on one line, whatever a stack file's keys and values hold (`config_errors.printable`).
    """

    def __init__(self, message: object) -> None:
        super().__init__(printable(str(message)))


class Tags(BaseModel):
    """Tags applied to every resource of the stack. `owner`, `cost-center` and
    `data-classification` are required; any other key is an extra tag."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=False)
    __pydantic_extra__: dict[str, str] = Field(init=False)  # extra tags are strings too

    owner: str = Field(
        min_length=1, max_length=256,
        description="Team or person accountable for the stack's resources (e.g. an e-mail or team alias).",
    )
    cost_center: QuotedStr = Field(
        alias="cost-center", min_length=1, max_length=256,
        description="Cost center that pays for the stack's resources.",
    )
    data_classification: Literal["public", "internal", "confidential", "restricted"] = Field(
        alias="data-classification",
        description="Highest classification of the data the platform processes.",
    )

    @model_validator(mode="after")
    def _check_extra_keys(self) -> "Tags":
        extra = self.__pydantic_extra__ or {}
        for key, value in extra.items():
            if not _TAG_KEY.match(key) or key.lower().startswith("aws:"):
                raise ValueError(
                    f"tag key {key!r} is not allowed: 1-128 letters, digits, spaces or _.:/=+-@, "
                    "not starting with 'aws:'"
                )
            if len(value) > 256:
                raise ValueError(f"tag {key!r}: value is longer than 256 characters")
        # AWS allows 50 tags per resource; emlops adds `environment`, `managed-by` and `pulumi-stack`.
        if len(extra) + len(REQUIRED_TAGS) + 3 > 50:
            raise ValueError(f"at most {50 - 3 - len(REQUIRED_TAGS)} extra tags are allowed (AWS limit 50)")
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
        False,
        description="Production stacks protect and retain every stateful resource. Default: false.",
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
    tags: Tags = Field(description="Tags every resource carries.")
    permission_boundary_arn: Optional[str] = Field(
        None,
        pattern=r"^arn:aws(-cn|-us-gov)?:iam::([0-9]{12}|aws):policy/[A-Za-z0-9_+=,.@/-]{1,128}$",
        description="Managed policy set as the permissions boundary of every IAM role the platform "
        "creates. Default: no boundary.",
        json_schema_extra=error_message(
            "must be an IAM policy ARN, e.g. 'arn:aws:iam::123456789012:policy/ml-boundary'"
        ),
    )

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
        if arn is not None and FULL_ACCESS_POLICY.search(arn):
            raise ValueError("a *FullAccess managed policy cannot serve as a permissions boundary")
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

    source = stack_file(pulumi.get_stack())
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
