"""Reading stack files the way the Pulumi CLI would hand them to the program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emlops.program.stackfile import find_project, load_stack
from emlops.program.config import ConfigError

VALID_STACK = """\
config:
  emlops:platform:
    environment: qa
    account_id: "555555555555"
    region: eu-central-1
    tags:
      owner: ml-team
      cost-center: "cc-9"
      data-classification: internal
"""


def write_stack(project: Path, name: str, text: str) -> None:
    (project / "stacks" / f"Pulumi.{name}.yaml").write_text(text)


def load_error(project: Path, stack: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_stack(find_project(project), stack)
    return str(caught.value)


def test_config_is_passed_as_the_cli_would_objects_as_json(project_copy):
    write_stack(project_copy, "qa", VALID_STACK)
    loaded = load_stack(find_project(project_copy), "qa")
    assert loaded.source == "stacks/Pulumi.qa.yaml"
    assert list(loaded.values) == ["emlops:platform"]
    assert json.loads(loaded.values["emlops:platform"])["region"] == "eu-central-1"
    assert loaded.secret_keys == []
    assert loaded.platform.account_id == "555555555555"


def test_secure_values_are_masked_and_their_key_marked_secret(project_copy):
    text = VALID_STACK + "  emlops:mlflowBackendStoreUri:\n    secure: v1:abc==\n"
    write_stack(project_copy, "qa", text)
    loaded = load_stack(find_project(project_copy), "qa")
    assert loaded.secret_keys == ["emlops:mlflowBackendStoreUri"]
    assert loaded.values["emlops:mlflowBackendStoreUri"] == "[secret]"


def test_a_secure_value_inside_the_platform_is_refused(project_copy):
    """emlops:platform reaches the program as plain settings: a secret there would be written in clear."""
    text = VALID_STACK.replace("owner: ml-team", "owner:\n        secure: v1:abc==")
    write_stack(project_copy, "qa", text)
    assert load_error(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: emlops:platform.tags.owner: a secret (secure:) inside emlops:platform would reach "
        "the plan and the Pulumi state in plaintext; secrets have config keys of their own "
        "(models[].secret_environment, emlops:mlflowBackendStoreUri)")


def test_missing_stack_file_lists_the_stacks(project_copy):
    assert load_error(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: no such stack file; stacks in this project: dev, prod, shared, staging"
    )


def test_misspelt_config_key_is_rejected_with_a_suggestion(project_copy):
    write_stack(project_copy, "qa", VALID_STACK.replace("emlops:platform:", "emlops:platfrom:"))
    assert load_error(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: emlops:platfrom: unknown key; did you mean 'emlops:platform'? "
        "allowed keys: emlops:platform, emlops:mlflowBackendStoreUri"
    )


def test_unknown_top_level_key_is_rejected(project_copy):
    write_stack(project_copy, "qa", "confg:\n  x: 1\n")
    assert load_error(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: confg: unknown key; allowed keys: config, secretsprovider, encryptedkey, "
        "encryptionsalt, environment"
    )


def test_invalid_yaml_names_the_line(project_copy):
    write_stack(project_copy, "qa", "config:\n  emlops:platform: [unclosed\n")
    assert load_error(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: not valid YAML: line 3: expected ',' or ']', but got '<stream end>'"
    )


def test_empty_stack_file_misses_the_platform(project_copy):
    write_stack(project_copy, "qa", "")
    assert load_error(project_copy, "qa") == "stacks/Pulumi.qa.yaml: emlops:platform: field required"


def test_project_is_found_from_a_subfolder(project_copy):
    project = find_project(project_copy / "stacks")
    assert project.root == project_copy
    assert project.stacks() == ["dev", "prod", "shared", "staging"]
