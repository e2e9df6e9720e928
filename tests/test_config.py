"""The stack config schema: accepted values, exact one-line errors, the JSON Schema."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml

from emlops.program.config import ConfigError
from emlops.program.platform import PlatformConfig, json_schema, parse_platform_config
from tests.conftest import ROOT, SHIPPED_STACKS

# every key of emlops:platform, as an unknown key's message lists them (a new section joins the list)
TOP_LEVEL_KEYS = ", ".join(PlatformConfig.model_fields)

SOURCE = "stacks/Pulumi.dev.yaml"
VALID: dict[str, Any] = {
    "environment": "dev",
    "account_id": "111111111111",
    "region": "eu-west-1",
    "tags": {"owner": "ml-team", "cost-center": "cc-1", "data-classification": "internal"},
}


def with_change(path: str, value: Any = None, delete: bool = False) -> dict[str, Any]:
    config = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    if delete:
        del node[last]
    else:
        node[last] = value
    return config


def error_of(raw: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_platform_config(raw, SOURCE)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_minimal_config_gets_documented_defaults():
    config = parse_platform_config(VALID, SOURCE)
    assert config.production is False
    assert config.permission_boundary_arn is None
    assert config.kms.deletion_window_days == 30
    assert config.storage.noncurrent_version_retention_days == 90
    assert config.storage.access_log_retention_days == 365
    assert config.partition.name == "aws"
    assert config.tags.as_dict() == {"owner": "ml-team", "cost-center": "cc-1", "data-classification": "internal"}


def test_extra_tags_are_kept_after_the_required_ones():
    config = parse_platform_config(with_change("tags.compliance", "soc2"), SOURCE)
    assert config.tags.as_dict() == {
        "owner": "ml-team", "cost-center": "cc-1", "data-classification": "internal", "compliance": "soc2",
    }


def test_region_decides_the_partition():
    assert parse_platform_config(with_change("region", "cn-north-1"), SOURCE).partition.name == "aws-cn"
    assert parse_platform_config(with_change("region", "us-gov-west-1"), SOURCE).partition.name == "aws-us-gov"


@pytest.mark.parametrize("raw, expected", [
    (with_change("tags.owner", delete=True),
     "stacks/Pulumi.dev.yaml: emlops:platform.tags.owner: field required"),
    (with_change("region", delete=True),
     "stacks/Pulumi.dev.yaml: emlops:platform.region: field required"),
    (with_change("regoin", "eu-west-1"),
     "stacks/Pulumi.dev.yaml: emlops:platform.regoin: unknown key; did you mean 'region'? allowed keys: "
     + TOP_LEVEL_KEYS),
    (with_change("kms.deletion_window", 7),
     "stacks/Pulumi.dev.yaml: emlops:platform.kms.deletion_window: unknown key; did you mean "
     "'deletion_window_days'? allowed keys: deletion_window_days, rotation_period_days"),
    (with_change("account_id", "12345"),
     "stacks/Pulumi.dev.yaml: emlops:platform.account_id: must be a 12-digit AWS account id, "
     "e.g. '123456789012', got '12345'"),
    (with_change("account_id", 111111111111),
     "stacks/Pulumi.dev.yaml: emlops:platform.account_id: must be a quoted string (YAML reads "
     "111111111111 unquoted as a number; write '111111111111')"),
    (with_change("production", "sometimes"),
     "stacks/Pulumi.dev.yaml: emlops:platform.production: must be true or false, got 'sometimes'"),
    (with_change("kms.deletion_window_days", "thirty"),
     "stacks/Pulumi.dev.yaml: emlops:platform.kms.deletion_window_days: must be a whole number, "
     "got 'thirty'"),
    (with_change("kms.deletion_window_days", 3),
     "stacks/Pulumi.dev.yaml: emlops:platform.kms.deletion_window_days: must be greater than or equal "
     "to 7, got 3"),
    (with_change("tags.data-classification", "secret"),
     "stacks/Pulumi.dev.yaml: emlops:platform.tags.data-classification: must be 'public', 'internal', "
     "'confidential' or 'restricted', got 'secret'"),
    (with_change("environment", "Dev_1"),
     "stacks/Pulumi.dev.yaml: emlops:platform.environment: must be 2-16 lowercase letters, digits or '-', "
     "starting with a letter, got 'Dev_1'"),
    (with_change("permission_boundary_arn", "arn:aws:iam::1:policy/b"),
     "stacks/Pulumi.dev.yaml: emlops:platform.permission_boundary_arn: must be an IAM policy ARN, e.g. "
     "'arn:aws:iam::123456789012:policy/ml-boundary', got 'arn:aws:iam::1:policy/b'"),
    (with_change("permission_boundary_arn", "arn:aws-cn:iam::111111111111:policy/b"),
     "stacks/Pulumi.dev.yaml: emlops:platform: permission_boundary_arn is in partition 'aws-cn' but "
     "region 'eu-west-1' is in 'aws'"),
    (with_change("tags.aws:owner", "x"),
     "stacks/Pulumi.dev.yaml: emlops:platform.tags.aws:owner: tag keys starting with 'aws:' are reserved for AWS; "
     "choose another key"),
    (with_change("tags.team", 7),
     "stacks/Pulumi.dev.yaml: emlops:platform.tags.team: must be a string, got 7"),
    (with_change("tags", "everyone"),
     "stacks/Pulumi.dev.yaml: emlops:platform.tags: must be a mapping of settings, got 'everyone'"),
    (None, "stacks/Pulumi.dev.yaml: emlops:platform: field required"),
    ("just text", "stacks/Pulumi.dev.yaml: emlops:platform: must be a mapping of settings, got 'just text'"),
])
def test_invalid_config_fails_with_one_exact_line(raw, expected):
    assert error_of(raw) == expected


def test_unknown_region_suggests_the_closest_and_lists_the_allowed():
    message = error_of(with_change("region", "eu-west-9"))
    assert message.startswith(
        "stacks/Pulumi.dev.yaml: emlops:platform.region: 'eu-west-9' is not a region with SageMaker; "
        "did you mean 'eu-west-3'? allowed: af-south-1, "
    )
    assert message.endswith(", us-west-1, us-west-2")


def test_json_schema_is_a_valid_draft_2020_12_schema():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["environment", "account_id", "region", "tags"]
    assert schema["$defs"]["Tags"]["required"] == ["owner", "cost-center", "data-classification"]
    assert schema["$defs"]["Tags"]["additionalProperties"] == {"type": "string"}
    assert schema["properties"]["account_id"]["pattern"] == "^[0-9]{12}$"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_satisfy_the_json_schema_and_the_model(stack):
    document = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    raw = document["config"]["emlops:platform"]
    jsonschema.validate(raw, json_schema())
    assert isinstance(parse_platform_config(raw, f"stacks/Pulumi.{stack}.yaml"), PlatformConfig)


def test_json_schema_rejects_what_the_model_rejects():
    validator = jsonschema.Draft202012Validator(json_schema())
    assert not validator.is_valid(with_change("regoin", "eu-west-1"))
    assert not validator.is_valid(with_change("tags.owner", delete=True))
    assert not validator.is_valid(with_change("account_id", "12345"))


@pytest.mark.parametrize("role, expected", [
    ("arn:aws:iam::222222222222:role/emlops-deploy",
     "stacks/Pulumi.dev.yaml: emlops:platform.deploy_role_arn: is in account '222222222222' but the stack deploys "
     "into '111111111111'; the provider assumes a role in the stack's own account"),
    ("arn:aws-cn:iam::111111111111:role/emlops-deploy",
     "stacks/Pulumi.dev.yaml: emlops:platform.deploy_role_arn: is in partition 'aws-cn' but region 'eu-west-1' "
     "is in 'aws'"),
    ("emlops-deploy",
     "stacks/Pulumi.dev.yaml: emlops:platform.deploy_role_arn: must be an IAM role ARN, e.g. "
     "'arn:aws:iam::123456789012:role/emlops-deploy', got 'emlops-deploy'"),
])
def test_deploy_role_must_be_a_role_in_the_stacks_own_account(role, expected):
    assert error_of(with_change("deploy_role_arn", role)) == expected


@pytest.mark.parametrize("section, value, expected", [
    ("personas", {"max_session_hours": 13},
     "personas.max_session_hours: must be less than or equal to 12, got 13"),
    ("personas", {"experiments_prefix": "exp"},
     "personas.experiments_prefix: must be folders each ending in '/' (not starting with '/'), without '*', '?', '${', control characters or '.'/'..' folders, e.g. 'experiments/', got 'exp'"),
    ("personas", {"trusted_principal_arns": {"admins": ["arn:aws:iam::111111111111:role/x"]}},
     "personas.trusted_principal_arns: unknown persona 'admins'; personas: data-scientist, ml-engineer, "
     "platform-admin, business-viewer"),
    ("guardrails", {"suppressions": [{"rule": "s3-bucket-versioning", "resource": "x", "reason": "short"}]},
     "guardrails.suppressions[0].reason: a suppression needs a written reason of at least 10 characters (why the "
     "rule does not apply and who accepted it)"),
    ("guardrails", {"allowed_instance_types": ["ml.m5.huge"]},
     "guardrails.allowed_instance_types: 'ml.m5.huge' is not a SageMaker instance type; did you mean 'ml.m5.large'?"),
])
def test_personas_and_guardrails_errors_name_the_stack_file_and_key(section, value, expected):
    assert error_of(with_change(section, value)) == f"stacks/Pulumi.dev.yaml: emlops:platform.{expected}"


def test_the_top_level_keys_are_the_stacks_own_then_a_section_per_component():
    from emlops.program.config import StackConfig

    assert list(StackConfig.model_fields) == [
        "environment", "production", "account_id", "region", "deploy_role_arn", "tags", "permission_boundary_arn"]
    keys = list(PlatformConfig.model_fields)
    assert keys[:len(StackConfig.model_fields)] == list(StackConfig.model_fields)
    # the sections follow, in the order of the stages that build them (a new component adds its own)
    assert keys[len(StackConfig.model_fields):][:13] == [
        "kms", "storage", "network", "registry", "feature_groups", "training", "models", "batch_transforms",
        "data_pipelines", "personas", "audit", "guardrails", "alerts"]
