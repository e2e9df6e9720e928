"""`emlops preview --mlflow-uri`: registry references resolved against a real local MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from tests.conftest import ROOT

ARTIFACT = "s3://ml-artifacts-bucket/mlflow/1/abc/artifacts/model/"
runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, new_mlflow_store) -> str:
    """A sqlite MLflow registry with `churn` version 1 under alias `champion` (artifacts in S3)."""
    from mlflow import MlflowClient

    uri = new_mlflow_store(tmp_path_factory.mktemp("mlflow"))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment("churn-training", artifact_location="s3://ml-artifacts-bucket/mlflow")
    client.create_registered_model("churn")
    version = client.create_model_version("churn", source=ARTIFACT, run_id=None).version
    client.set_registered_model_alias("churn", "champion", version)
    return uri


def test_dev_resolves_the_champion_to_its_s3_artifact(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    target = tmp_path / "plan.json"
    result = runner.invoke(app, ["preview", "dev", "--mlflow-uri", registry, "--json", str(target), "-q"])
    assert result.exit_code == 0, result.output
    resources = {r["name"]: r for r in json.loads(target.read_text())["resources"]}
    container = resources["dev-churn-model"]["inputs"]["primaryContainer"]
    assert container["modelDataSource"]["s3DataSources"] == [
        {"compressionType": "None", "s3DataType": "S3Prefix", "s3Uri": ARTIFACT}
    ]
    policy = json.loads(resources["dev-churn-execution-permissions"]["inputs"]["policy"])
    assert policy["Statement"][0] == {
        "Sid": "ReadArtifact", "Effect": "Allow", "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::ml-artifacts-bucket/mlflow/1/abc/artifacts/model/*"],
    }
    assert "[unknown" not in target.read_text()


def test_a_missing_alias_names_the_stack_key_model_and_reference(registry, project_copy: Path, monkeypatch):
    stack = project_copy / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("models:/churn@champion", "models:/churn@challenger"))
    monkeypatch.chdir(project_copy)
    result = runner.invoke(app, ["preview", "dev", "--mlflow-uri", registry])
    assert result.exit_code == 2
    assert result.stderr == (
        "stacks/Pulumi.dev.yaml: emlops:platform.models[0].source.mlflow: model 'churn': "
        "models:/churn@challenger: registered model 'churn' has no alias 'challenger'\n"
    )
