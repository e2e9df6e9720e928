"""The README's data pipeline section: its example is the shipped prod entry, its picture is what `emlops graph`
draws, its commands run as shown."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from typer.testing import CliRunner

from emlops.cli import app, lineage
from emlops.components.data_pipeline_args import DataPipelineSettings
from emlops.review.graph import graph
from tests.conftest import ROOT
from tests.test_readme import README, code_blocks

GRAPH_COMMAND = "emlops graph prod --from prod-datasets-bucket --to prod-churn-endpoint"


def test_the_example_is_the_shipped_prod_entry():
    [example] = [yaml.safe_load(block)["data_pipelines"] for block in code_blocks("yaml") if "data_pipelines:" in block]
    shipped = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["emlops:platform"]
    assert [DataPipelineSettings.model_validate(e) for e in example] == [
        DataPipelineSettings.model_validate(e) for e in shipped["data_pipelines"]]


def test_the_training_features_example_is_prod_churns():
    [example] = [yaml.safe_load(block)["retraining"]["features"] for block in code_blocks("yaml")
                 if "label: churned" in block and "feature_groups:" in block]
    shipped = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())["config"]["emlops:platform"]
    [churn] = [m for m in shipped["models"] if m["name"] == "churn"]
    assert example == churn["retraining"]["features"]


def test_the_data_path_picture_is_what_emlops_graph_draws(shipped_plan):
    [picture] = code_blocks("mermaid")
    assert " ".join(GRAPH_COMMAND.split()) in " ".join(README.split())
    assert picture == graph(shipped_plan("prod"), "mermaid", ["prod-datasets-bucket"], ["prod-churn-endpoint"])
    # from landing to the served model: every hop is drawn
    for edge in ('n_prod_datasets_bucket -->|"landed data"| n_prod_customers_data_pipeline',
                 'n_prod_customers_data_pipeline -->|"validated features"| n_prod_features_customers',
                 'n_prod_features_customers -->|"training set"| n_prod_churn_retraining_pipeline',
                 'n_prod_churn_retraining_pipeline -->|"registers"| n_organization_emlops_shared',
                 'n_organization_emlops_shared -->|"approved version"| n_prod_churn_model',
                 'n_prod_churn_config --> n_prod_churn_endpoint'):
        assert f"  {edge}\n" in picture


def test_the_graph_command_prints_the_picture(project_copy, monkeypatch, shipped_plan):
    monkeypatch.chdir(project_copy)
    result = CliRunner().invoke(app, shlex.split(GRAPH_COMMAND)[1:])
    assert result.exit_code == 0, result.output
    assert result.stdout == code_blocks("mermaid")[0]


def test_the_lineage_commands_run_as_shown(project_copy, monkeypatch):
    """The offline line runs for real; the two that need the shared registry's credentials run up to the registry
    (what they ask it for is checked; tests/test_lineage.py runs the rest against moto)."""
    [block] = [b for b in code_blocks("bash") if "emlops lineage" in b]
    monkeypatch.chdir(project_copy)
    asked = []
    monkeypatch.setattr(lineage, "registered_lineage", lambda stack, registry, version: asked.append(
        (stack.stack, stack.account_id, registry.stack, registry.account_id, registry.model, version)) or ["ok"])
    outputs = []
    for line in block.strip().splitlines():
        result = CliRunner().invoke(app, shlex.split(line.split("#")[0])[1:])
        assert result.exit_code == 0, (line, result.output)
        outputs.append(result.stdout)
    assert asked == [("prod", "333333333333", "shared", "444444444444", "churn", None),
                     ("prod", "333333333333", "shared", "444444444444", "fraud", 3)]
    assert outputs[2].startswith("churn in prod (as configured):\n  retrained by: SageMaker pipeline "
                                 "prod-churn-retraining\n")


@pytest.mark.parametrize("command", ["emlops ingest prod customers"])
def test_the_ingest_command_is_shown_and_tested(command):
    assert command in README
    assert re.search(r'cli\("ingest", "prod", "customers"', (ROOT / "tests" / "test_ingest.py").read_text())
