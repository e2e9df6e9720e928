"""emlops graph: groups per top-level component, a few meaningful nodes, data-flow edges, valid mermaid and dot."""

from __future__ import annotations

import re

import pytest

from emlops.catalog.resources import GRAPH_LABELS
from emlops.review.graph import build_graph, graph
from emlops.offline.plan import Plan, PlanResource
from tests.conftest import SHIPPED_STACKS

NODE = re.compile(r'^    (n_[A-Za-z0-9_]+)\["([^"]*)"\]$')
EDGE = re.compile(r'^  (n_[A-Za-z0-9_]+) (?:-->\|"([^"]*)"\| |--> )(n_[A-Za-z0-9_]+)$')
SUBGRAPH = re.compile(r'^  subgraph (g\d+)\["([^"]*)"\]$')


def parse_mermaid(text: str) -> tuple[dict[str, list[str]], dict[str, str], set[tuple[str, str, str]]]:
    """Groups (label -> node ids), node labels and edges; fails on any line that is not mermaid we write."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR" and text.endswith("\n")
    groups: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    edges: set[tuple[str, str, str]] = set()
    current = None
    for line in lines[1:]:
        if m := SUBGRAPH.match(line):
            assert current is None
            current = m.group(2)
            groups[current] = []
        elif line == "  end":
            assert current is not None
            current = None
        elif m := NODE.match(line):
            assert current is not None and m.group(1) not in labels
            groups[current].append(m.group(1))
            labels[m.group(1)] = m.group(2)
        elif m := EDGE.match(line):
            assert current is None and m.group(1) in labels and m.group(3) in labels
            edges.add((m.group(1), m.group(2) or "", m.group(3)))
        else:
            pytest.fail(f"not a line of our mermaid: {line!r}")
    assert current is None
    return groups, labels, edges


def test_prod_mermaid_is_small_grouped_and_shows_the_retraining_loop(shipped_plan):
    groups, labels, edges = parse_mermaid(graph(shipped_plan("prod")))
    assert list(groups) == ["StackReference shared", "base", "Network network", "FeatureStore features",
                            "TrainingCluster training", "ModelEndpoint churn", "ModelEndpoint fraud",
                            "ModelEndpoint doc-scoring", "ModelMonitor churn-monitor",
                            "ModelMonitor fraud-monitor", "ModelMonitor doc-scoring-monitor",
                            "ModelDashboard emlops-prod-churn", "ModelDashboard emlops-prod-fraud",
                            "ModelDashboard emlops-prod-doc-scoring", "EnvironmentDashboard emlops-prod",
                            "ModelCard churn-model-card", "ModelCard fraud-model-card",
                            "ModelCard doc-scoring-model-card", "RetrainingPipeline churn-retraining", "RetrainingPipeline fraud-retraining",
                            "RetrainingPipeline doc-scoring-retraining", "BatchTransform churn-nightly",
                            "DataPipeline customers-data", "AuditTrail emlops-prod"]
    assert len(labels) == len([r for r in shipped_plan("prod").resources if r.type in GRAPH_LABELS])
    assert 30 <= len(labels) < 100
    assert groups["ModelEndpoint fraud"] == [
        "n_prod_fraud_model", "n_prod_fraud_config", "n_prod_fraud_primary_5xx", "n_prod_fraud_primary_latency",
        "n_prod_fraud_endpoint"]
    assert groups["Network network"] == ["n_prod_network_flow_logs"]
    assert groups["base"] == ["n_prod_logs_key", "n_prod_data_key", "n_prod_access_logs_bucket", "n_prod_datasets_bucket",
                              "n_prod_artifacts_bucket", "n_prod_inference_bucket", "n_prod_alerts_topic_key_key",
                              "n_prod_alerts_topic", "n_prod_capture_bucket", "n_prod_doc_scoring_async_success_topic"]
    assert labels["n_prod_fraud_endpoint"] == "prod-fraud-endpoint<br/>endpoint"
    assert not [n for n in labels if "execution" in n or "policy" in n or "versioning" in n]
    # capture -> monitor -> rule -> pipeline -> the shared registry's group -> the model the fraud endpoint serves
    assert {
        ("n_prod_fraud_endpoint", "capture", "n_prod_capture_bucket"),
        ("n_prod_capture_bucket", "captured data", "n_prod_fraud_monitor_schedule"),
        ("n_prod_fraud_monitor_schedule", "violations", "n_prod_fraud_retraining_on_violations"),
        ("n_prod_fraud_retraining_on_violations", "starts", "n_prod_fraud_retraining_pipeline"),
        ("n_prod_fraud_retraining_schedule", "starts", "n_prod_fraud_retraining_pipeline"),
        ("n_prod_fraud_retraining_pipeline", "registers", "n_organization_emlops_shared"),
        ("n_organization_emlops_shared", "approved version", "n_prod_fraud_model"),
        ("n_prod_fraud_model", "serves", "n_prod_fraud_config"),
        ("n_prod_fraud_config", "", "n_prod_fraud_endpoint"),
        ("n_prod_fraud_primary_5xx", "rollback", "n_prod_fraud_endpoint"),
        ("n_prod_fraud_monitor_schedule", "failures", "n_prod_fraud_monitor_failed"),
        ("n_prod_churn_monitor_schedule", "metrics", "n_prod_churn_monitor_drift_tenure_months"),
        ("n_prod_churn_monitor_drift_tenure_months", "notifies", "n_prod_alerts_topic"),
        ("n_prod_churn_primary_5xx", "notifies", "n_prod_alerts_topic"),  # a rollback reaches on-call too
        ("n_organization_emlops_shared", "approved version", "n_prod_churn_model"),
        # churn's model-quality schedule reads the same captured data; its violations retrain churn too
        ("n_prod_capture_bucket", "captured data", "n_prod_churn_monitor_quality"),
        ("n_prod_churn_monitor_quality", "violations", "n_prod_churn_retraining_on_violations"),
    } <= edges
    # both prod models are served from the shared package groups, which their retraining feeds
    assert not [e for e in edges if e[2] == "n_prod_churn_model" and e[0] != "n_organization_emlops_shared"]


def test_the_shared_registry_draws_its_groups_and_their_approvals(shipped_plan):
    groups, _, edges = parse_mermaid(graph(shipped_plan("shared")))
    assert groups["ModelRegistry registry"][:2] == ["n_shared_registry_churn_group", "n_shared_registry_fraud_group"]
    assert {("n_shared_registry_churn_group", "approval", "n_shared_registry_churn_approved"),
            ("n_shared_registry_churn_approved", "notifies", "n_shared_alerts_topic"),
            ("n_shared_registry_tracking_server", "stores", "n_shared_artifacts_bucket")} <= edges


def test_every_shipped_stack_draws(shipped_plan):
    for stack in SHIPPED_STACKS:
        plan = shipped_plan(stack)
        nodes = [r.name for r in plan.resources if r.type in GRAPH_LABELS]
        assert sorted(r.name for m in build_graph(plan).groups.values() for r in m) == sorted(nodes)
        _, labels, _ = parse_mermaid(graph(plan))
        # prod: 3 endpoints, their monitors (Clarify's too), cards, dashboards and pipelines, a batch transform, a trail,
        # a data pipeline (its function's log group and key among its nodes)
        assert len(labels) == len(nodes) < 100
    _, _, edges = parse_mermaid(graph(shipped_plan("staging")))
    assert ("n_staging_training_gpu", "nodes", "n_staging_training_cluster") in edges


def test_prod_mermaid_shows_the_nightly_batch_transform(shipped_plan):
    groups, labels, edges = parse_mermaid(graph(shipped_plan("prod")))
    assert groups["BatchTransform churn-nightly"] == [
        "n_prod_churn_nightly_model", "n_prod_churn_nightly_pipeline", "n_prod_churn_nightly_schedule",
        "n_prod_churn_nightly_failed", "n_prod_churn_nightly_monitor_schedule",
        "n_prod_churn_nightly_monitor_drift_monthly_charges", "n_prod_churn_nightly_monitor_drift_contract_type",
        "n_prod_churn_nightly_monitor_failed", "n_prod_churn_nightly_monitor_violations"]
    assert labels["n_prod_churn_nightly_pipeline"] == "prod-churn-nightly-pipeline<br/>SageMaker pipeline"
    # the shared group's approved version scores the datasets into the inference bucket every night; failures and
    # the inputs' drift reach on-call
    assert {
        ("n_organization_emlops_shared", "approved version", "n_prod_churn_nightly_model"),
        ("n_prod_churn_nightly_model", "transforms", "n_prod_churn_nightly_pipeline"),
        ("n_prod_churn_nightly_schedule", "starts", "n_prod_churn_nightly_pipeline"),
        ("n_prod_datasets_bucket", "batch input", "n_prod_churn_nightly_pipeline"),
        ("n_prod_churn_nightly_pipeline", "batch output", "n_prod_inference_bucket"),
        ("n_prod_churn_nightly_pipeline", "failures", "n_prod_churn_nightly_failed"),
        ("n_prod_churn_nightly_failed", "notifies", "n_prod_alerts_topic"),
        ("n_prod_inference_bucket", "captured data", "n_prod_churn_nightly_monitor_schedule"),
        ("n_prod_churn_nightly_monitor_drift_contract_type", "notifies", "n_prod_alerts_topic"),
    } <= edges
    # the transform pipeline reads and writes, it does not "store"
    assert not [e for e in edges if e[0] == "n_prod_churn_nightly_pipeline" and e[1] == "stores"]


def test_dot_output_has_clusters_nodes_and_edges(shipped_plan):
    text = graph(shipped_plan("prod"), "dot")
    lines = text.splitlines()
    assert lines[0] == 'digraph "emlops-prod" {' and lines[-1] == "}" and text.count("{") == text.count("}")
    assert len([line for line in lines if re.match(r"^  subgraph cluster_\d+ \{$", line)]) == 24  # 23 + shared
    assert '    label="ModelEndpoint fraud";' in lines
    nodes = {m.group(1) for line in lines if (m := re.match(r'^    (n_\w+) \[label="[^"]*"\];$', line))}
    edges = [m.groups() for line in lines if (m := re.match(r'^  (n_\w+) -> (n_\w+)(?: \[label="[^"]*"\])?;$', line))]
    assert len(nodes) == len([r for r in shipped_plan("prod").resources if r.type in GRAPH_LABELS])
    assert edges and all(a in nodes and b in nodes for a, b in edges)
    assert '  n_prod_fraud_retraining_pipeline -> n_organization_emlops_shared [label="registers"];' in lines
    assert '    n_prod_fraud_endpoint [label="prod-fraud-endpoint\\nendpoint"];' in lines


def test_ids_are_sanitized_and_labels_escaped():
    stack = PlanResource("urn:pulumi:t::p::pulumi:pulumi:Stack::p-t", "pulumi:pulumi:Stack", "p-t", False, None, [],
                         None, {})
    odd = [PlanResource(f"urn:pulumi:t::p::aws:s3/bucket:Bucket::{name}", "aws:s3/bucket:Bucket", name, True,
                        stack.urn, [], None, {"bucket": "b"}) for name in ('a "quoted" end', "a.quoted-end", "end")]
    plan = Plan("p", "t", [stack, *odd])
    text = graph(plan)
    assert text == "\n".join([
        "flowchart LR",
        '  subgraph g0["stack"]',
        '    n_a__quoted__end["a #quot;quoted#quot; end<br/>S3 bucket"]',
        '    n_a_quoted_end["a.quoted-end<br/>S3 bucket"]',
        '    n_end["end<br/>S3 bucket"]',
        "  end",
    ]) + "\n"
    assert '    n_a__quoted__end [label="a \\"quoted\\" end\\nS3 bucket"];' in graph(plan, "dot")


def test_unknown_format_is_refused(shipped_plan):
    with pytest.raises(ValueError, match=r"^format 'png' is not supported; allowed: mermaid, dot$"):
        graph(shipped_plan("dev"), "png")


def test_colliding_ids_get_a_suffix():
    stack = PlanResource("urn:pulumi:t::p::pulumi:pulumi:Stack::p-t", "pulumi:pulumi:Stack", "p-t", False, None, [],
                         None, {})
    keys = [PlanResource(f"urn:pulumi:t::p::aws:kms/key:Key::{name}", "aws:kms/key:Key", name, True, stack.urn, [],
                         None, {}) for name in ("a-b", "a.b", "a_b")]
    _, labels, _ = parse_mermaid(graph(Plan("p", "t", [stack, *keys])))
    assert labels == {"n_a_b": "a-b<br/>KMS key", "n_a_b_2": "a.b<br/>KMS key", "n_a_b_3": "a_b<br/>KMS key"}


def test_prod_mermaid_shows_the_data_path_into_the_feature_store(shipped_plan):
    groups, labels, edges = parse_mermaid(graph(shipped_plan("prod")))
    assert groups["DataPipeline customers-data"] == [
        "n_prod_customers_data_logs_key", "n_prod_customers_data_logs", "n_prod_customers_data_steps", "n_prod_customers_data_pipeline", "n_prod_customers_data_schedule",
        "n_prod_customers_data_new_data", "n_prod_customers_data_failed"]
    assert labels["n_prod_customers_data_steps"] == "prod-customers-data-steps<br/>Lambda function"
    assert labels["n_prod_customers_data_logs"] == "prod-customers-data-logs<br/>log group"
    assert {
        ("n_prod_datasets_bucket", "landed data", "n_prod_customers_data_pipeline"),
        ("n_prod_customers_data_new_data", "starts", "n_prod_customers_data_pipeline"),
        ("n_prod_customers_data_schedule", "starts", "n_prod_customers_data_pipeline"),
        ("n_prod_customers_data_pipeline", "claim, gate, ingest", "n_prod_customers_data_steps"),
        ("n_prod_customers_data_pipeline", "validated features", "n_prod_features_customers"),
        ("n_prod_customers_data_pipeline", "failures, quarantine", "n_prod_customers_data_failed"),
        ("n_prod_customers_data_failed", "notifies", "n_prod_alerts_topic"),
    } <= edges
    assert not [e for e in edges if e[0] == "n_prod_customers_data_pipeline" and e[1] == "stores"]
