"""Secrets never sit in a stack file in plaintext, and a container gets its secret environment from Pulumi config
secrets (`models[].secret_environment`): malformed stack files through `emlops preview` (one line, exit 2, no
plan), the container environment's SageMaker limits, and the plan of a model with a secret variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from tests.conftest import ROOT, edit_stack
from tests.test_stackfile_hardening import AT, DEV, preview_fails

runner = CliRunner()
FRAUD = "      - name: fraud\n"
M1 = f"{AT}.models[1]"
MOVE = ("environment values are plaintext in the stack file, the plan and the Pulumi state: move it to "
        "secret_environment ({name}: <config key>) and set the key with `pulumi config set --secret "
        "emlops:<config key> <value>`")
SECRET_KEY = "  emlops:fraudDbPassword:\n    secure: v1:cGxlYXNlIGRvIG5vdCBkZWNyeXB0\n"


def fraud_with(yaml_lines: str) -> tuple[str, str]:
    """The edit that gives dev's fraud model (models[1]) these settings (YAML at the model's indentation)."""
    return FRAUD, FRAUD + "".join(f"        {line}\n" for line in yaml_lines.splitlines())


def many(count: int, value: str = "x") -> str:
    return "environment: {" + ", ".join(f"V{index}: {value}" for index in range(count)) + "}"


CASES = {
    "plaintext MLflow backend store": (
        ("config:\n", "config:\n  emlops:mlflowBackendStoreUri: postgresql://mlflow:pw@db.internal:5432/mlflow\n"),
        f"{DEV}: emlops:mlflowBackendStoreUri: is in plaintext, and a database URI holds its password; set it "
        "encrypted with `pulumi config set --secret emlops:mlflowBackendStoreUri <uri>`"),
    "database URI as the tracking URI": (
        ("mlflow_tracking_uri: https://mlflow.dev.ml.example.com",
         "mlflow_tracking_uri: postgresql://mlflow:pw@db.internal:5432/mlflow"),
        f"{AT}.registry.mlflow_tracking_uri: holds a database URI with its password; an MLflow backend store URI is "
        "a secret: set it with `pulumi config set --secret emlops:mlflowBackendStoreUri <uri>`"),
    "password in a webhook": (
        ("    kms:\n", "    alerts:\n      https: ['https://bot:s3cret@hooks.example.com/ml']\n    kms:\n"),
        f"{AT}.alerts.https[0]: holds a URI with a password; secrets go in Pulumi config secrets (`pulumi config "
        "set --secret`), never in the stack file"),
    "access key in a tag": (
        ("      owner: ml-platform@example.com\n", "      owner: AKIAIOSFODNN7EXAMPLE\n"),
        f"{AT}.tags.owner: holds an AWS access key id; secrets go in Pulumi config secrets (`pulumi config set "
        "--secret`), never in the stack file"),
    "secret encrypted inside the platform": (
        ("      owner: ml-platform@example.com\n", "      owner: {secure: v1:abc}\n"),
        f"{AT}.tags.owner: a secret (secure:) inside emlops:platform would reach the plan and the Pulumi state in "
        "plaintext; secrets have config keys of their own (models[].secret_environment, emlops:mlflowBackendStoreUri)"),
    "password variable": (
        fraud_with("environment: {DB_PASSWORD: hunter2}"),
        f"{M1}.environment.DB_PASSWORD: looks like a secret (PASSWORD in its name); "
        + MOVE.format(name="DB_PASSWORD")),
    "token variable": (
        fraud_with("environment: {HF_TOKEN: abc}"),
        f"{M1}.environment.HF_TOKEN: looks like a secret (TOKEN in its name); " + MOVE.format(name="HF_TOKEN")),
    "variable name with dashes and dots": (
        fraud_with("environment: {Scoring-Api.Key: abc}"),
        f"{M1}.environment.Scoring-Api.Key: is not an environment variable name SageMaker accepts: a letter or '_', "
        "then letters, digits or '_' ([a-zA-Z_][a-zA-Z0-9_]*)"),
    "api key words": (
        fraud_with("environment: {SCORING_API_KEY: abc}"),
        f"{M1}.environment.SCORING_API_KEY: looks like a secret (API_KEY in its name); "
        + MOVE.format(name="SCORING_API_KEY")),
    "access key as a value": (
        fraud_with("environment: {LOG_SINK: AKIAIOSFODNN7EXAMPLE}"),
        f"{M1}.environment.LOG_SINK: holds an AWS access key id; environment values are plaintext in the stack "
        "file, the plan and the Pulumi state: move it to models[1].secret_environment (LOG_SINK: <config key>) and "
        "set the key with `pulumi config set --secret emlops:<config key> <value>`"),
    "private key as a value": (
        fraud_with('environment: {TLS: "-----BEGIN RSA PRIVATE KEY-----\\nMIIE"}'),
        f"{M1}.environment.TLS: holds a private key; environment values are plaintext in the stack file, the plan "
        "and the Pulumi state: move it to models[1].secret_environment (TLS: <config key>) and set the key with "
        "`pulumi config set --secret emlops:<config key> <value>`"),
    "too many variables": (
        fraud_with(many(101)),
        f"{M1}.environment: has 101 variables; SageMaker allows at most 100 in a container's environment "
        "(CreateModel)"),
    "variable name SageMaker refuses": (
        fraud_with("environment: {1ST_CHOICE: x}"),
        f"{M1}.environment.1ST_CHOICE: is not an environment variable name SageMaker accepts: a letter or '_', "
        "then letters, digits or '_' ([a-zA-Z_][a-zA-Z0-9_]*)"),
    "variable value too long": (
        fraud_with(f"environment: {{PROMPT: {'p' * 1025}}}"),
        f"{M1}.environment.PROMPT: is 1025 characters long; SageMaker allows at most 1024 in an environment value"),
    "environment too large": (
        fraud_with(many(40, "v" * 1000)),
        f"{M1}.environment: names and values add up to 40110 bytes; SageMaker allows 32 KB (32768 bytes) per "
        "container"),
    "number as a value": (
        fraud_with("environment: {WORKERS: 4}"),
        f"{M1}.environment.WORKERS: must be a string, got 4"),
    "secret variable without its config key": (
        fraud_with("secret_environment: {DB_PASSWORD: fraudDbPassword}"),
        f"{M1}.secret_environment.DB_PASSWORD: config key 'emlops:fraudDbPassword' is not set; set it with "
        "`pulumi config set --secret emlops:fraudDbPassword <value>`"),
    "secret variable in plaintext": (
        fraud_with("secret_environment: {DB_PASSWORD: fraudDbPassword}"),
        f"{DEV}: emlops:fraudDbPassword: is in plaintext, and it holds the secret DB_PASSWORD of model 'fraud'; set "
        "it encrypted with `pulumi config set --secret emlops:fraudDbPassword <value>`"),
    "secret variable naming the platform's key": (
        fraud_with("secret_environment: {DB_PASSWORD: platform}"),
        f"{M1}.secret_environment.DB_PASSWORD: 'platform' is not a config key for a secret: letters, digits, '_' or "
        "'-', starting with a letter (the value is set with `pulumi config set --secret emlops:<key>`), not platform "
        "or mlflowBackendStoreUri"),
    "secret variable naming a key with a space": (
        fraud_with("secret_environment: {DB_PASSWORD: db password}"),
        f"{M1}.secret_environment.DB_PASSWORD: 'db password' is not a config key for a secret: letters, digits, "
        "'_' or '-', starting with a letter (the value is set with `pulumi config set --secret emlops:<key>`), not "
        "platform or mlflowBackendStoreUri"),
    "variable both plain and secret": (
        fraud_with("environment: {DB_USER: ml}\nsecret_environment: {DB_USER: fraudDbUser}"),
        f"{M1}.secret_environment.DB_USER: is also in environment; a variable is either plain or secret"),
    "secret variable name SageMaker refuses": (
        fraud_with("secret_environment: {db-password: fraudDbPassword}"),
        f"{M1}.secret_environment.db-password: is not an environment variable name SageMaker accepts: a letter or "
        "'_', then letters, digits or '_' ([a-zA-Z_][a-zA-Z0-9_]*)"),
    "too many variables together": (
        fraud_with(many(99) + "\nsecret_environment: {DB_PASSWORD: fraudDbPassword, DB_USER: fraudDbUser}"),
        f"{M1}: environment and secret_environment hold 101 variables; SageMaker allows at most 100 in a "
        "container's environment (CreateModel)"),
}
CONFIG_KEYS = {"secret variable without its config key": "", "secret variable in plaintext":
               "  emlops:fraudDbPassword: hunter2\n"}


@pytest.mark.parametrize("edit, expected", CASES.values(), ids=CASES.keys())
def test_a_plaintext_secret_or_a_bad_environment_is_one_line_and_no_plan(project_copy, monkeypatch, edit,
                                                                         expected, request):
    edit_stack(project_copy, "dev", *edit)
    case = request.node.callspec.id
    if case in CONFIG_KEYS:
        edit_stack(project_copy, "dev", "config:\n", "config:\n" + CONFIG_KEYS[case])
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == expected


def test_an_unknown_config_key_lists_the_secret_keys_too(project_copy, monkeypatch):
    edit_stack(project_copy, "dev", *fraud_with("secret_environment: {DB_PASSWORD: fraudDbPassword}"))
    edit_stack(project_copy, "dev", "config:\n", "config:\n" + SECRET_KEY.replace("fraudDbPassword", "fraudDbPasword"))
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == (
        f"{DEV}: emlops:fraudDbPasword: unknown key; did you mean 'emlops:fraudDbPassword'? allowed keys: "
        "emlops:platform, emlops:mlflowBackendStoreUri and the keys models[].secret_environment names")


def test_a_model_package_names_its_own_environment(project_copy, monkeypatch):
    edit_stack(project_copy, "staging", "      - name: churn\n",
               "      - name: churn\n        environment: {LOG_LEVEL: debug}\n")
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy, "staging") == (
        "stacks/Pulumi.staging.yaml: emlops:platform.models[0].environment: a model package names its own container "
        "and environment; drop it")


def test_counts_and_references_pass_the_secret_check(project_copy, monkeypatch, tmp_path):
    """Plurals are counts (MAX_TOTAL_TOKENS) and an ARN names a secret without being one."""
    secret_arn = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:fraud-db-AbCdEf"
    edit_stack(project_copy, "dev", *fraud_with(f"environment: {{MAX_TOTAL_TOKENS: '2048', DB_SECRET: {secret_arn}}}"))
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app, ["preview", "dev", "--json", str(tmp_path / "plan.json"), "-q"])
    assert result.exit_code == 0, result.output
    model = {r["name"]: r for r in json.loads((tmp_path / "plan.json").read_text())["resources"]}["dev-fraud-model"]
    assert model["inputs"]["primaryContainer"]["environment"] == {"DB_SECRET": secret_arn, "MAX_TOTAL_TOKENS": "2048"}


def test_a_secret_variable_reaches_the_model_as_a_secret(project_copy, monkeypatch, tmp_path):
    edit_stack(project_copy, "dev", *fraud_with(
        "environment: {LOG_LEVEL: info}\nsecret_environment: {DB_PASSWORD: fraudDbPassword}"))
    edit_stack(project_copy, "dev", "config:\n", "config:\n" + SECRET_KEY)
    monkeypatch.chdir(project_copy)
    target = tmp_path / "plan.json"
    result = runner.invoke(app, ["preview", "dev", "--json", str(target), "-q"])
    assert result.exit_code == 0, result.output
    model = {r["name"]: r for r in json.loads(target.read_text())["resources"]}["dev-fraud-model"]
    assert model["inputs"]["primaryContainer"] == {
        "environment": {"DB_PASSWORD": "[secret]", "LOG_LEVEL": "info"},
        "image": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1", "mode": "SingleModel",
        "modelDataUrl": "s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz"}
    assert "cGxlYXNl" not in target.read_text()


# -- what `pulumi up` sees: the program checks the config the Pulumi CLI hands it, without the stack file reader

def run_dev_program(project: Path, values: dict[str, str], secret_keys: list[str]) -> str:
    """The ConfigError of running dev's program on this config (as the Pulumi CLI would pass it)."""
    from emlops.offline.engine import run_program
    from emlops.offline.mocks import AwsIdentity
    from emlops.offline.resolver import OfflineResolver
    from emlops.program.config import ConfigError
    from emlops.program.sources import use_resolver

    with pytest.raises(ConfigError) as caught:
        run_program(project, "emlops", "dev", values, secret_keys, AwsIdentity("111111111111", "eu-west-1"),
                    context=lambda: use_resolver(OfflineResolver()))
    return str(caught.value)


def dev_platform(**changes) -> dict:
    import yaml

    raw = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]["emlops:platform"]
    raw["models"][1].update(changes)
    return raw


def test_the_program_refuses_a_secret_variable_set_in_plaintext(project_copy):
    values = {"emlops:platform": json.dumps(dev_platform(secret_environment={"DB_PASSWORD": "fraudDbPassword"})),
              "emlops:fraudDbPassword": "hunter2"}
    assert run_dev_program(project_copy, values, secret_keys=[]) == (
        f"{DEV}: emlops:fraudDbPassword: is in plaintext, and it holds the secret DB_PASSWORD of model 'fraud'; set "
        "it encrypted with `pulumi config set --secret emlops:fraudDbPassword <value>`")


def test_the_program_refuses_a_missing_secret_variable(project_copy):
    values = {"emlops:platform": json.dumps(dev_platform(secret_environment={"DB_PASSWORD": "fraudDbPassword"}))}
    assert run_dev_program(project_copy, values, secret_keys=[]) == (
        f"{M1}.secret_environment.DB_PASSWORD: config key 'emlops:fraudDbPassword' is not set; set it with "
        "`pulumi config set --secret emlops:fraudDbPassword <value>`")


def test_the_program_refuses_a_platform_holding_secrets(project_copy):
    values = {"emlops:platform": json.dumps(dev_platform())}
    assert run_dev_program(project_copy, values, secret_keys=["emlops:platform"]) == (
        f"{AT}: a secret (secure:) inside emlops:platform would reach the plan and the Pulumi state in plaintext; "
        "secrets have config keys of their own (models[].secret_environment, emlops:mlflowBackendStoreUri)")


def test_the_program_refuses_repeated_keys_in_the_config_it_is_handed(project_copy):
    text = json.dumps(dev_platform())
    values = {"emlops:platform": text.replace('"production": false', '"production": false, "production": true')}
    assert run_dev_program(project_copy, values, secret_keys=[]) == (
        f"{AT}: key 'production' appears twice; keep one")


def test_the_program_refuses_a_plaintext_mlflow_backend_store(project_copy):
    raw = dev_platform()
    raw["registry"]["mlflow"] = {"kind": "kubernetes"}
    raw["training"] = {"kind": "eks", "eks": {"admin_role_arns": ["arn:aws:iam::111111111111:role/admin"]}}
    values = {"emlops:platform": json.dumps(raw), "emlops:mlflowBackendStoreUri": "postgresql://db.internal/mlflow"}
    assert run_dev_program(project_copy, values, secret_keys=[]) == (
        f"{DEV}: emlops:mlflowBackendStoreUri: is in plaintext, and a database URI holds its password; set it "
        "encrypted with `pulumi config set --secret emlops:mlflowBackendStoreUri <uri>`")


def test_the_environment_limits_are_botocores():
    """CreateModel's container environment (botocore: EnvironmentMap, EnvironmentKey, EnvironmentValue). The Batch
    Transform job's own map (TransformEnvironmentMap) holds 16; a model's holds 100."""
    import botocore.session

    from emlops.components.endpoint_args import (ENVIRONMENT_KEY, ENVIRONMENT_KEY_MAX, ENVIRONMENT_MAX_ENTRIES,
                                                 ENVIRONMENT_VALUE_MAX)

    container = botocore.session.get_session().get_service_model("sagemaker").shape_for("ContainerDefinition")
    environment = container.members["Environment"]
    assert (environment.name, environment.metadata["max"]) == ("EnvironmentMap", ENVIRONMENT_MAX_ENTRIES)
    assert environment.key.metadata == {"min": 0, "max": ENVIRONMENT_KEY_MAX, "pattern": ENVIRONMENT_KEY}
    assert environment.value.metadata["max"] == ENVIRONMENT_VALUE_MAX


# -- the component: ModelEndpoint takes secret environment values in its context

def test_the_endpoint_passes_secret_environment_values_as_secrets():
    from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
    from tests.conftest import run_components

    image = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    settings = EndpointSettings.model_validate({"serverless": {}, "environment": {"LOG_LEVEL": "info"}})
    plan = run_components(lambda: ModelEndpoint("churn", settings, EndpointContext(
        ModelArtifact("s3://ml-artifacts/models/churn/model.tar.gz"), image_uri=image,
        secret_environment={"DB_PASSWORD": "hunter2"})))
    assert plan.get("churn-model").inputs["primaryContainer"]["environment"] == {
        "DB_PASSWORD": "[secret]", "LOG_LEVEL": "info"}


@pytest.mark.parametrize("environment, secret_environment, artifact, expected", [
    ({"DB_USER": "ml"}, {"DB_USER": "x"}, None,
     "DB_USER: in both environment and secret_environment; a variable is either plain or secret"),
    ({}, {"db-password": "x"}, None,
     "secret_environment.db-password: is not an environment variable name SageMaker accepts: a letter or '_', then letters, digits or '_' "
     "([a-zA-Z_][a-zA-Z0-9_]*)"),
    ({f"V{i}": "x" for i in range(100)}, {"DB_PASSWORD": "x"}, None,
     "has 101 variables; SageMaker allows at most 100 in a container's environment (CreateModel)"),
    ({}, {"DB_PASSWORD": "x"}, "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn/3",
     "a model package names its own container and environment; drop secret_environment"),
])
def test_the_endpoint_checks_its_secret_environment(environment, secret_environment, artifact, expected):
    from emlops.components.endpoint import EndpointContext, EndpointSettings, ModelArtifact, ModelEndpoint
    from tests.conftest import run_components

    image = None if artifact else "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    settings = EndpointSettings.model_validate({"serverless": {}, "environment": environment})
    context = EndpointContext(ModelArtifact("s3://ml-artifacts/models/churn/model.tar.gz", package_arn=artifact),
                              image_uri=image, secret_environment=secret_environment)
    with pytest.raises(ValueError) as caught:
        run_components(lambda: ModelEndpoint("churn", settings, context))
    assert str(caught.value) == expected
