"""Malformed stack files, one defect each, through `emlops preview`: exactly one line on stderr, exit 2, the file
and the key named, and no plan written. Reading (repeated keys, aliases, encodings, files that are not files),
one-line messages, tags, strict types and the account rule."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from tests.conftest import ROOT, edit_stack

runner = CliRunner()
DEV = "stacks/Pulumi.dev.yaml"
AT = f"{DEV}: emlops:platform"
ALLOWED_TOP = ("environment, production, account_id, region, deploy_role_arn, tags, permission_boundary_arn, kms, "
               "storage, network, registry, feature_groups, training, models, batch_transforms, data_pipelines, "
               "personas, audit, guardrails, alerts")
TAG_CHARACTERS = "letters, digits, spaces and _ . : / = + - @"


def preview_fails(project: Path, stack: str = "dev", *args: str) -> str:
    """The one stderr line of `emlops preview STACK --json plan.json` in `project`, which must fail with exit 2,
    print nothing on stdout and write no plan."""
    plan = project / "plan.json"
    result = runner.invoke(app, ["preview", stack, "--json", str(plan), *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert not plan.exists()
    assert result.stderr.endswith("\n") and len(result.stderr.splitlines()) == 1, repr(result.stderr)
    return result.stderr[:-1]


def append_to_stack(project: Path, stack: str, data: bytes) -> None:
    with open(project / "stacks" / f"Pulumi.{stack}.yaml", "ab") as handle:
        handle.write(data)


# (old text of stacks/Pulumi.dev.yaml, new text, the one line) -- one defect each
DEV_CASES = {
    # a repeated key, at any depth: YAML would keep the last one silently
    "repeated top-level setting": (
        "    production: false\n", "    production: false\n    production: true\n",
        f"{AT}.production: appears twice (lines 5 and 6); keep one (YAML would silently use the last)"),
    "repeated tag": (
        "      owner: ml-platform@example.com\n",
        "      owner: ml-platform@example.com\n      owner: someone@example.com\n",
        f"{AT}.tags.owner: appears twice (lines 11 and 12); keep one (YAML would silently use the last)"),
    "repeated key in a list item": (
        "      - name: fraud\n", "      - name: fraud\n        name: churn\n",
        f"{AT}.models[1].name: appears twice (lines 75 and 76); keep one (YAML would silently use the last)"),
    "repeated quoted and plain key": (
        "    kms:\n", '    "kms": {}\n    kms:\n',
        f"{AT}.kms: appears twice (lines 14 and 15); keep one (YAML would silently use the last)"),
    "repeated config key": (
        "config:\n", "config: {}\nconfig:\n",
        f"{DEV}: config: appears twice (lines 2 and 3); keep one (YAML would silently use the last)"),
    # YAML beyond what JSON (and so the Pulumi program) holds
    "binary tag": (
        "      owner: ml-platform@example.com\n", "      owner: !!binary aGVsbG8=\n",
        f"{DEV}: line 11: emlops:platform.tags.owner: YAML tag !!binary is not supported; write a "
        "plain value (a stack file holds strings, numbers, booleans, lists and mappings)"),
    "set tag": (
        "    kms:\n", "    alerts: !!set {a, b}\n    kms:\n",
        f"{DEV}: line 14: emlops:platform.alerts: YAML tag !!set is not supported; write a plain "
        "value (a stack file holds strings, numbers, booleans, lists and mappings)"),
    "number as a key": (
        "      owner: ml-platform@example.com\n", "      owner: ml-platform@example.com\n      123: x\n",
        f"{DEV}: line 12: emlops:platform.tags: key 123 is not a string; quote it"),
    "recursive alias": (
        "    kms:\n", "    alerts: &loop {email: [*loop]}\n    kms:\n",
        f"{DEV}: line 14: alias *loop refers to the block that contains it; a stack file cannot hold a recursive "
        "structure"),
    # one line whatever a key or value holds
    "unknown key with a newline": (
        "    kms:\n", '    "kms\\nextra": 1\n    kms:\n',
        f"{AT}.'kms\\nextra': unknown key; allowed keys: {ALLOWED_TOP}"),
    "unknown key with a terminal escape": (
        "    kms:\n", '    "\\e[2Jkms": 1\n    kms:\n',
        f"{AT}.'\\x1b[2Jkms': unknown key; did you mean 'kms'? allowed keys: {ALLOWED_TOP}"),
    "unknown config key with a line separator": (
        "config:\n", 'config:\n  "emlops:x\\Ly": 1\n',
        f"{DEV}: emlops:x\\u2028y: unknown key; allowed keys: emlops:platform, emlops:mlflowBackendStoreUri"),
    "value with a paragraph separator": (
        "      owner: ml-platform@example.com\n", '      owner: "ml-platform\\Pexample.com"\n',
        f"{AT}.tags.owner: has '\\u2029', which AWS does not allow in a tag value ({TAG_CHARACTERS})"),
    # AWS's tag rules
    "blank owner": (
        "      owner: ml-platform@example.com\n", '      owner: "  "\n',
        f"{AT}.tags.owner: must not be blank; name the team or person accountable"),
    "empty cost center": (
        '      cost-center: "cc-1042"\n', '      cost-center: ""\n',
        f"{AT}.tags.cost-center: must have at least 1 character, got ''"),
    "blank cost center": (
        '      cost-center: "cc-1042"\n', '      cost-center: "\\t"\n',
        f"{AT}.tags.cost-center: must not be blank; name the cost center that pays"),
    "owner with a tab": (
        "      owner: ml-platform@example.com\n", '      owner: "ml\\tplatform"\n',
        f"{AT}.tags.owner: has '\\t', which AWS does not allow in a tag value ({TAG_CHARACTERS})"),
    "owner with a character outside AWS's set": (
        "      owner: ml-platform@example.com\n", "      owner: ml-platform<ops>\n",
        f"{AT}.tags.owner: has '<', which AWS does not allow in a tag value ({TAG_CHARACTERS})"),
    "owner too long": (
        "      owner: ml-platform@example.com\n", f"      owner: {'o' * 257}\n",
        f"{AT}.tags.owner: is 257 characters long; AWS allows at most 256 in a tag value"),
    "tag key with a star": (
        "      owner: ml-platform@example.com\n", "      owner: ml-platform@example.com\n      team*: ml\n",
        f"{AT}.tags.team*: tag key has '*', which AWS does not allow in a tag key ({TAG_CHARACTERS})"),
    "tag key too long": (
        "      owner: ml-platform@example.com\n", f"      owner: ml-platform@example.com\n      {'k' * 129}: x\n",
        f"{AT}.tags.{'k' * 129}: tag key is 129 characters long; AWS allows 1-128"),
    "tag value too long": (
        "      owner: ml-platform@example.com\n", f"      owner: ml-platform@example.com\n      team: {'v' * 257}\n",
        f"{AT}.tags.team: is 257 characters long; AWS allows at most 256 in a tag value"),
    "tag key reserved for AWS": (
        "      owner: ml-platform@example.com\n", "      owner: ml-platform@example.com\n      AWS:team: ml\n",
        f"{AT}.tags.AWS:team: tag keys starting with 'aws:' are reserved for AWS; choose another key"),
    "tag key differing only in case": (
        "      owner: ml-platform@example.com\n", "      owner: ml-platform@example.com\n      Owner: ml\n",
        f"{AT}.tags.Owner: differs from tag 'owner' only in case; IAM compares tag keys case-insensitively, so a "
        "role cannot carry both"),
    "tag the platform sets": (
        "      owner: ml-platform@example.com\n", "      owner: ml-platform@example.com\n      managed-by: me\n",
        f"{AT}.tags.managed-by: the platform sets the 'managed-by' tag itself on every resource; drop it"),
    "tag value with a newline": (
        "      owner: ml-platform@example.com\n", '      owner: ml-platform@example.com\n      team: "a\\nb"\n',
        f"{AT}.tags.team: has '\\n', which AWS does not allow in a tag value ({TAG_CHARACTERS})"),
    # strict booleans: YAML 1.2 reads yes/on as strings (as the Pulumi CLI does), and nothing becomes true by luck
    "production quoted": (
        "    production: false\n", '    production: "true"\n',
        f"{AT}.production: must be true or false, got 'true'"),
    "production yes": (
        "    production: false\n", "    production: yes\n",
        f"{AT}.production: must be true or false, got 'yes'"),
    "production one": (
        "    production: false\n", "    production: 1\n",
        f"{AT}.production: must be true or false, got 1"),
    "production off": (
        "    production: false\n", "    production: off\n",
        f"{AT}.production: must be true or false, got 'off'"),
    # one account per stack
    "another stack's account": (
        '    account_id: "111111111111"\n    # CI assumes this role in the account (OIDC session from the tooling '
        'account); see README\n    deploy_role_arn: arn:aws:iam::111111111111:role/emlops-deploy\n',
        '    account_id: "333333333333"\n    deploy_role_arn: arn:aws:iam::333333333333:role/emlops-deploy\n',
        f"{AT}.account_id: '333333333333' is the account of stacks/Pulumi.prod.yaml (environment 'prod'); each "
        "stack deploys into an account of its own"),
    "the shared stack's account": (
        '    account_id: "111111111111"\n    # CI assumes this role in the account (OIDC session from the tooling '
        'account); see README\n    deploy_role_arn: arn:aws:iam::111111111111:role/emlops-deploy\n',
        '    account_id: "444444444444"\n',
        f"{AT}.account_id: '444444444444' is the account of stacks/Pulumi.shared.yaml (environment 'shared'); each "
        "stack deploys into an account of its own"),
}


@pytest.mark.parametrize("old, new, expected", DEV_CASES.values(), ids=DEV_CASES.keys())
def test_a_malformed_dev_stack_is_one_line_and_no_plan(project_copy, monkeypatch, old, new, expected):
    edit_stack(project_copy, "dev", old, new)
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == expected


def test_a_repeated_key_in_prod_cannot_drop_its_protection(project_copy, monkeypatch):
    """The issue's example: `production: false` after `production: true` used to win silently."""
    edit_stack(project_copy, "prod", "    production: true\n", "    production: true\n    production: false\n")
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy, "prod") == (
        "stacks/Pulumi.prod.yaml: emlops:platform.production: appears twice (lines 5 and 6); keep one (YAML would "
        "silently use the last)")


ALIAS_BOMB = "\n".join(
    ['  lol: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"  l{n}: &{chr(98 + n)} [{', '.join([f'*{chr(97 + n)}'] * 9)}]" for n in range(8)]) + "\n"


def test_an_alias_bomb_fails_fast_in_one_line(project_copy, monkeypatch):
    """A 3-line "billion laughs" would expand to 9^9 strings; the aliases' budget stops it while it is read."""
    (project_copy / "stacks" / "Pulumi.dev.yaml").write_text("config:\n" + ALIAS_BOMB)
    monkeypatch.chdir(project_copy)
    started = time.monotonic()
    assert preview_fails(project_copy) == (
        f"{DEV}: line 6: alias *d makes the file's aliases repeat more than 10000 values; aliases may reuse a block, "
        "not multiply it")
    assert time.monotonic() - started < 5


def test_aliases_of_long_text_are_bounded_too(project_copy, monkeypatch):
    long = "x" * 100_000
    text = f"config:\n  text: &t {long}\n  copies: [{', '.join(['*t'] * 11)}]\n"
    (project_copy / "stacks" / "Pulumi.dev.yaml").write_text(text)
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == (
        f"{DEV}: line 3: alias *t makes the file's aliases repeat more than 1 MiB of text; aliases may reuse a "
        "block, not multiply it")


def test_reusing_a_block_with_an_alias_and_a_merge_key_works(project_copy):
    from emlops.program.stackfile import find_project, load_stack

    edit_stack(project_copy, "dev", "        serverless:\n",
               "        alarms: &alarms {model_latency_ms: 250, invocation_5xx_errors: 3}\n        serverless:\n")
    edit_stack(project_copy, "dev", "        variants:\n          - name: primary\n            instance_type: ml.m5.large",
               "        alarms: {<<: *alarms, invocation_5xx_errors: 9}\n        variants:\n          - name: primary\n"
               "            instance_type: ml.m5.large")
    churn, fraud, _ = load_stack(find_project(project_copy), "dev").platform.models
    assert (churn.alarms.model_latency_ms, churn.alarms.invocation_5xx_errors) == (250, 3)
    assert (fraud.alarms.model_latency_ms, fraud.alarms.invocation_5xx_errors) == (250, 9)


def test_a_byte_that_is_not_utf8_names_the_file_and_line(project_copy, monkeypatch):
    append_to_stack(project_copy, "dev", b"    # caf\xe9\n")
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == f"{DEV}: not valid UTF-8: byte 0xe9 on line 104; save the file as UTF-8"


def test_a_directory_in_place_of_a_stack_file(project_copy, monkeypatch):
    (project_copy / "stacks" / "Pulumi.qa.yaml").mkdir()
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy, "qa") == "stacks/Pulumi.qa.yaml: is a directory, not a stack file"


def test_a_stack_file_that_cannot_be_read(project_copy, monkeypatch):
    (project_copy / "stacks" / "Pulumi.qa.yaml").symlink_to("Pulumi.qa.yaml")  # a link to itself
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: cannot be read: Too many levels of symbolic links")


def test_a_stack_file_without_read_permission(project_copy, monkeypatch):
    original = open

    def denied(path, *args, **kwargs):
        if str(path).endswith("Pulumi.dev.yaml"):
            raise PermissionError(13, "Permission denied", str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == f"{DEV}: cannot be read: Permission denied"


def test_a_fifo_in_place_of_a_stack_file_is_not_read(project_copy, monkeypatch):
    os.mkfifo(project_copy / "stacks" / "Pulumi.qa.yaml")  # reading it would wait forever
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy, "qa") == (
        "stacks/Pulumi.qa.yaml: is not a regular file; a stack file is a YAML file")


def test_a_huge_stack_file_is_not_read(project_copy, monkeypatch):
    append_to_stack(project_copy, "dev", b"#" * (4 * 1024 * 1024))
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == f"{DEV}: is larger than 4 MiB; a stack file is a few KB"


def test_a_broken_project_file_names_it(project_copy, monkeypatch):
    (project_copy / "Pulumi.yaml").write_text("name: emlops\nname: other\n")
    monkeypatch.chdir(project_copy / "stacks")
    result = runner.invoke(app, ["preview", "dev"])
    assert result.exit_code == 2
    assert result.stderr == (f"{project_copy.resolve()}/Pulumi.yaml: name: appears twice (lines 1 and 2); keep one "
                             "(YAML would silently use the last)\n")


def test_a_broken_sibling_does_not_break_the_preview_of_another_stack(project_copy, monkeypatch):
    """A stray byte in staging used to break `preview dev` without naming staging. Dev is still previewed and
    checked against every stack file that can be read; the account rule says which one it skipped."""
    append_to_stack(project_copy, "staging", b"\xff\n")
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app, ["preview", "dev"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert ("warning: stacks/Pulumi.staging.yaml: not valid UTF-8: byte 0xff on line 112; save the file as UTF-8 (so "
            "the account rule could not compare stacks/Pulumi.dev.yaml with it)") in result.stdout
    assert preview_fails(project_copy, "staging") == (
        "stacks/Pulumi.staging.yaml: not valid UTF-8: byte 0xff on line 112; save the file as UTF-8")


def test_a_broken_sibling_does_not_hide_the_account_rule_of_the_others(project_copy, monkeypatch):
    append_to_stack(project_copy, "staging", b"\xff\n")
    edit_stack(project_copy, "dev", *DEV_CASES["another stack's account"][:2])
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == (
        f"{AT}.account_id: '333333333333' is the account of stacks/Pulumi.prod.yaml (environment 'prod'); each stack "
        "deploys into an account of its own")


def test_a_broken_shared_stack_is_named_by_the_stacks_that_use_it(project_copy, monkeypatch):
    edit_stack(project_copy, "shared", "    region: eu-west-1\n", "    region: eu-west-1\n    region: eu-west-2\n")
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy, "staging") == (
        "stacks/Pulumi.shared.yaml: emlops:platform.region: appears twice (lines 12 and 13); keep one (YAML would "
        "silently use the last)")


def test_another_stacks_deploy_role_is_refused(project_copy, monkeypatch):
    """Even where a sibling's own file is wrong about its account, a deploy role is never shared."""
    edit_stack(project_copy, "staging", "deploy_role_arn: arn:aws:iam::222222222222:role/emlops-deploy",
               "deploy_role_arn: arn:aws:iam::111111111111:role/emlops-deploy")
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == (
        f"{AT}.deploy_role_arn: 'arn:aws:iam::111111111111:role/emlops-deploy' is the deploy role of "
        "stacks/Pulumi.staging.yaml (environment 'staging'); each stack deploys with a role of its own account")


def test_yaml_12_scalars_dates_and_sexagesimals_stay_strings(project_copy):
    from emlops.program.stackfile import find_project

    edit_stack(project_copy, "dev", "      owner: ml-platform@example.com\n",
               "      owner: ml-platform@example.com\n      review: 2026-11-20\n      window: 1:30\n      on: on\n")
    document = find_project(project_copy).read_stack("dev")
    assert {key: document["config"]["emlops:platform"]["tags"][key] for key in ("review", "window", "on")} == {
        "review": "2026-11-20", "window": "1:30", "on": "on"}


@pytest.mark.parametrize("command, exit_code, expected", [
    (["preview", "dev"], 1, "emlops: internal error while previewing dev: RuntimeError: first\\nsecond\\x1b[0m "
     "(rerun with --debug for the traceback)"),
    (["check", "dev"], 1, "emlops: internal error while checking dev: RuntimeError: first\\nsecond\\x1b[0m "
     "(rerun with --debug for the traceback)"),
])
def test_an_internal_error_quoting_several_lines_is_one_line(monkeypatch, mocker, command, exit_code, expected):
    from tests.conftest import ROOT

    monkeypatch.chdir(ROOT)
    mocker.patch("emlops.offline.preview.run_program", side_effect=RuntimeError("first\nsecond\x1b[0m"))
    result = runner.invoke(app, command)
    assert (result.exit_code, result.stderr) == (exit_code, expected + "\n")


def test_a_check_of_a_malformed_stack_is_one_line(project_copy, monkeypatch):
    edit_stack(project_copy, "dev", *DEV_CASES["unknown key with a newline"][:2])
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app, ["check", "dev"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == DEV_CASES["unknown key with a newline"][2] + "\n"


def test_a_file_read_again_is_the_same_document_and_each_reader_gets_its_own_copy(tmp_path: Path) -> None:
    from emlops.program.yaml_files import read_yaml

    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  emlops:platform:\n    models: [{name: churn}]\n", encoding="utf-8")
    first = read_yaml(path, "stacks/Pulumi.dev.yaml")
    first["config"]["emlops:platform"]["models"].append({"name": "changed by the first reader"})
    assert read_yaml(path, "stacks/Pulumi.dev.yaml") == {"config": {"emlops:platform": {"models": [{"name": "churn"}]}}}


def test_a_file_that_failed_fails_again_when_read_again(tmp_path: Path) -> None:
    from emlops.program.config import ConfigError
    from emlops.program.yaml_files import read_yaml

    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text("config:\n  a: 1\n  a: 2\n", encoding="utf-8")
    messages = []
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            read_yaml(path, "stacks/Pulumi.dev.yaml")
        messages.append(str(caught.value))
    assert messages == ["stacks/Pulumi.dev.yaml: config.a: appears twice (lines 2 and 3); keep one (YAML would silently use the last)"] * 2


# -- libyaml reads, PyYAML words the errors -------------------------------------------------------------------

READ_CASES = {
    "aliases and a merge key": "a: &a {x: 1, y: [2, 3]}\nb: {<<: *a, y: 4}\nc: [*a, *a]\n",
    "YAML 1.2 scalars": "when: 2026-11-20\nwindow: 1:30\non: on\nyes: [yes, no, true, False, 0o17, 0x1f, 1_000, .5, -.inf]\n",
    "quoting and block text": "a: '1'\nb: \"x\\ty\"\nc: |\n  two\n  lines\nd: >-\n  folded\n  text\n'e f': ~\n",
    "empty": "",
}
READ_ERRORS = {
    "repeated key": ("config:\n  a: 1\n  a: 2\n",
                     "f.yaml: config.a: appears twice (lines 2 and 3); keep one (YAML would silently use the last)"),
    "recursive alias": ("a: &loop {b: [*loop]}\n",
                        "f.yaml: line 1: alias *loop refers to the block that contains it; a stack file cannot hold "
                        "a recursive structure"),
    "alias bomb": ("config:\n" + ALIAS_BOMB,
                   "f.yaml: line 6: alias *d makes the file's aliases repeat more than 10000 values; aliases may "
                   "reuse a block, not multiply it"),
    "tag": ("a: !!binary aGVsbG8=\n",
            "f.yaml: line 1: a: YAML tag !!binary is not supported; write a plain value (a stack file holds strings, "
            "numbers, booleans, lists and mappings)"),
    # libyaml says "found character that cannot start any token": PyYAML's words are the ones reported
    "tab": ("a:\n\tb: 1\n", "f.yaml: not valid YAML: line 2: found character '\\t' that cannot start any token"),
    "unclosed list": ("a: [1, 2\n", "f.yaml: not valid YAML: line 2: expected ',' or ']', but got '<stream end>'"),
    # what libyaml alone would accept (the first three) or refuse in other words (the tag): PyYAML decides
    "tab inside a value": ("a: b\tc\n", "f.yaml: not valid YAML: line 1: found character '\\t' that cannot start any "
                                        "token"),
    "'?' inside a value in a list": ("a: [b, c?d]\n", "f.yaml: not valid YAML: line 1: expected ',' or ']', but got '?'"),
    "comment right after a block scalar's header": (
        "a: >+2#\n  x\n", "f.yaml: not valid YAML: line 1: expected chomping or indentation indicators, but found '#'"),
    "tag before a comma": ("a: {b: !c, d: 1}\n", "f.yaml: not valid YAML: line 1: expected ',' or '}', but got ':'"),
}


def test_libyaml_is_what_reads_the_project_files() -> None:
    import yaml

    from emlops.program import yaml_files

    assert yaml.__with_libyaml__ and yaml_files._FastStrictLoader is not None  # the locked PyYAML wheel has it


SHIPPED_FILES = {path.name: path.read_text(encoding="utf-8") for path in
                 sorted([ROOT / "Pulumi.yaml", *(ROOT / "stacks").glob("Pulumi.*.yaml")])}


@pytest.mark.parametrize("text", [*READ_CASES.values(), *SHIPPED_FILES.values()], ids=[*READ_CASES, *SHIPPED_FILES])
def test_libyaml_and_pyyaml_read_the_same_document(text: str) -> None:
    from emlops.program.yaml_files import _FastStrictLoader, _read_with, _StrictLoader, dotted

    fast, pure = (_read_with(loader, text, dotted) for loader in (_FastStrictLoader, _StrictLoader))
    assert fast == pure and repr(fast) == repr(pure)  # the same values of the same types, keys in the same order


def test_a_byte_order_mark_inside_a_file_reads_as_pyyaml_reads_it(tmp_path: Path) -> None:
    from emlops.program.yaml_files import read_yaml

    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n\ufeffb: 2\n", encoding="utf-8")  # libyaml alone refuses it; PyYAML keeps the mark
    assert read_yaml(path, "f.yaml") == {"a": 1, "\ufeffb": 2}


@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pyyaml only"])
@pytest.mark.parametrize("text, expected", READ_ERRORS.values(), ids=READ_ERRORS.keys())
def test_a_file_is_refused_in_the_same_words_with_or_without_libyaml(tmp_path: Path, monkeypatch, libyaml, text,
                                                                      expected) -> None:
    from emlops.program import yaml_files
    from emlops.program.config import ConfigError

    if not libyaml:
        monkeypatch.setattr(yaml_files, "_FastStrictLoader", None)
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        yaml_files.read_yaml(path, "f.yaml")
    assert str(caught.value) == expected
