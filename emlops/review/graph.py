"""`emlops graph`: a picture of the platform a plan describes (mermaid or graphviz dot).

One group per top-level component (each ModelEndpoint, ModelMonitor, RetrainingPipeline, FeatureStore,
TrainingCluster, ModelRegistry; keys, buckets and roles of the platform itself under "base"), and in each
group only the resources a reader reasons about (the types the resource catalogue gives a graph label:
endpoints, models, buckets, keys, schedules, alarms, rules, pipelines, package groups...), not every
policy or bucket setting.

Edges are the platform's data flow, read from the plan's inputs: a model serves an endpoint config,
the config an endpoint, the endpoint captures into a bucket, a monitoring schedule reads that capture,
its violations fire an EventBridge rule, the rule's target starts a pipeline, the pipeline registers
versions in a package group, and an approved version is the model the endpoint serves. A batch transform
pipeline reads its input bucket and writes its output bucket with the model it transforms with (its definition's
Transform steps), and tells a rule when a run fails. A data pipeline takes what lands in a bucket into the feature
group its Ingest step writes, through the function that runs its Lambda steps.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from emlops.catalog.aws import has_gpu
from emlops.catalog.resource_type import ResourceType
from emlops.catalog.resources import GRAPH_LABELS
from emlops.catalog.resources_eks import CLUSTER, NODE_GROUP
from emlops.catalog.resources_operations import (EVENT_RULE, EVENT_TARGET, LAMBDA_FUNCTION, LOG_GROUP, METRIC_ALARM,
                                                 TOPIC)
from emlops.catalog.resources_pulumi import STACK_REFERENCE
from emlops.catalog.resources_sagemaker import (DATA_QUALITY_JOB_DEFINITION, ENDPOINT, ENDPOINT_CONFIG,
                                                FEATURE_GROUP, MLFLOW_TRACKING_SERVER, MODEL,
                                                MODEL_BIAS_JOB_DEFINITION, MODEL_EXPLAINABILITY_JOB_DEFINITION,
                                                MODEL_PACKAGE_GROUP, MODEL_QUALITY_JOB_DEFINITION,
                                                MONITORING_SCHEDULE, PIPELINE)
from emlops.catalog.resources_storage import BUCKET
from emlops.offline.plan import Plan, PlanResource
from emlops.review.diff import group_of, physical_name

# monitoring schedules run one of these (the model-quality, bias and explainability ones are pulumi-aws-native's)
_JOB_DEFINITIONS = (DATA_QUALITY_JOB_DEFINITION, MODEL_QUALITY_JOB_DEFINITION, MODEL_BIAS_JOB_DEFINITION,
                    MODEL_EXPLAINABILITY_JOB_DEFINITION)


@dataclass
class Graph:
    groups: dict[str, list[PlanResource]] = field(default_factory=dict)  # label -> nodes, plan order
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (from urn, to urn, label)

    def add_edge(self, source: Optional[PlanResource], target: Optional[PlanResource], label: str = "") -> None:
        if source is None or target is None or source.urn == target.urn:
            return
        if all((s, t) != (source.urn, target.urn) for s, t, _ in self.edges):
            self.edges.append((source.urn, target.urn, label))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value
        if value[:1] in "{[":
            try:
                yield from _strings(json.loads(value))
            except ValueError:
                pass


def _refers(resource: PlanResource, name: Optional[str]) -> bool:
    """Whether an input of RESOURCE is NAME or an ARN/URI ending in it."""
    if not name:
        return False
    return any(s == name or s.endswith(("/" + name, ":" + name)) or f"s3://{name}/" in s
               or f'"{name}"' in s for s in _strings(resource.inputs))


def build_graph(plan: Plan) -> Graph:
    """The nodes (grouped) and data-flow edges of PLAN."""
    graph = Graph()
    nodes = [r for r in plan.resources if r.custom and r.type in GRAPH_LABELS]
    for r in nodes:
        label = f"StackReference {r.name.rsplit('/', 1)[-1]}" if r.type == STACK_REFERENCE.token else group_of(plan, r)
        graph.groups.setdefault(label, []).append(r)

    def of(entry: ResourceType) -> list[PlanResource]:
        return [r for r in nodes if r.type == entry.token]

    by_name = {(r.type, physical_name(r)): r for r in plan.resources if r.custom}
    endpoints, configs = of(ENDPOINT), of(ENDPOINT_CONFIG)
    buckets, topics = of(BUCKET), of(TOPIC)
    config_of: dict[str, PlanResource] = {}

    for config in configs:
        for variant in config.inputs.get("productionVariants") or []:
            graph.add_edge(by_name.get((MODEL.token, variant.get("modelName"))), config, "serves")
        for variant in config.inputs.get("shadowProductionVariants") or []:
            graph.add_edge(by_name.get((MODEL.token, variant.get("modelName"))), config, "shadow test")
        output = (config.inputs.get("asyncInferenceConfig") or {}).get("outputConfig") or {}
        for endpoint in endpoints:
            if endpoint.inputs.get("endpointConfigName") == physical_name(config):
                graph.add_edge(config, endpoint)
                config_of[endpoint.inputs.get("name")] = config
                capture = (config.inputs.get("dataCaptureConfig") or {}).get("destinationS3Uri", "")
                for bucket in buckets:
                    if capture.startswith(f"s3://{physical_name(bucket)}/"):
                        graph.add_edge(endpoint, bucket, "capture")
                    if str(output.get("s3OutputPath", "")).startswith(f"s3://{physical_name(bucket)}/"):
                        graph.add_edge(endpoint, bucket, "responses")
                notices = output.get("notificationConfig") or {}
                for topic in topics:
                    for key, label in (("successTopic", "responses"), ("errorTopic", "failures")):
                        if str(notices.get(key, "")).endswith(":" + str(physical_name(topic))):
                            graph.add_edge(endpoint, topic, label)
    for endpoint in endpoints:  # alarms that roll a deployment back
        rollback = ((endpoint.inputs.get("deploymentConfig") or {}).get("autoRollbackConfiguration") or {})
        for alarm in rollback.get("alarms") or []:
            graph.add_edge(by_name.get((METRIC_ALARM.token, alarm.get("alarmName"))), endpoint, "rollback")

    for schedule in of(MONITORING_SCHEDULE):
        job_name = (schedule.inputs.get("monitoringScheduleConfig") or {}).get("monitoringJobDefinitionName")
        job = next((by_name[(t.token, job_name)] for t in _JOB_DEFINITIONS if (t.token, job_name) in by_name), None)
        if job is not None:
            for key in ("dataQualityJobInput", "modelQualityJobInput", "modelBiasJobInput", "modelExplainabilityJobInput"):
                endpoint_name = ((job.inputs.get(key) or {}).get("endpointInput") or {}).get("endpointName")
                capture = (config_of[endpoint_name].inputs.get("dataCaptureConfig") or {}).get(
                    "destinationS3Uri", "") if endpoint_name in config_of else ""
                # a batch transform's captured inputs
                capture = capture or ((job.inputs.get(key) or {}).get("batchTransformInput") or {}).get(
                    "dataCapturedDestinationS3Uri", "")
                for bucket in buckets:
                    if capture.startswith(f"s3://{physical_name(bucket)}/"):
                        graph.add_edge(bucket, schedule, "captured data")
        for other in nodes:
            if other.type in (EVENT_RULE.token, METRIC_ALARM.token) and _refers(other, physical_name(schedule)):
                pattern = other.inputs.get("eventPattern", "")
                graph.add_edge(schedule, other, "metrics" if other.type == METRIC_ALARM.token else
                               "violations" if "CompletedWithViolations" in pattern else
                               "failures" if '"Failed"' in pattern else "events")

    targets = {r.urn: by_name.get((PIPELINE.token, r.inputs.get("arn", "").rsplit("/", 1)[-1]))
               or next((t for t in topics if r.inputs.get("arn", "").endswith(":" + str(physical_name(t)))), None)
               for r in plan.by_type(EVENT_TARGET.token)}
    for target in plan.by_type(EVENT_TARGET.token):
        rule = by_name.get((EVENT_RULE.token, target.inputs.get("rule")))
        sink = targets[target.urn]
        graph.add_edge(rule, sink, "starts" if sink is not None and sink.type == PIPELINE.token else "notifies")
    for alarm in of(METRIC_ALARM):
        for topic in topics:
            if any(a.endswith(":" + str(physical_name(topic))) for a in alarm.inputs.get("alarmActions") or []):
                graph.add_edge(alarm, topic, "notifies")

    for group in of(MODEL_PACKAGE_GROUP):
        name = physical_name(group)
        for pipeline in of(PIPELINE):
            if f'"ModelPackageGroupName": "{name}"' in pipeline.inputs.get("pipelineDefinition", ""):
                graph.add_edge(pipeline, group, "registers")
        for model in of(MODEL):
            if any(f"model-package-group/{name}" in s for s in _strings(model.inputs)):
                graph.add_edge(group, model, "approved version")
        for rule in of(EVENT_RULE):
            if f'"ModelPackageGroupName": ["{name}"]' in rule.inputs.get("eventPattern", ""):
                graph.add_edge(group, rule, "approval")

    for reference in of(STACK_REFERENCE):  # a shared registry's groups live in the referenced stack
        for pipeline in of(PIPELINE):
            if '"ModelPackageGroupName": "arn:' in pipeline.inputs.get("pipelineDefinition", ""):
                graph.add_edge(pipeline, reference, "registers")
        for model in of(MODEL):
            package = (model.inputs.get("primaryContainer") or {}).get("modelPackageName", "")
            if re.search(r"arn:[^:]+:sagemaker:[^:]+:[0-9]{12}:model-package(-group)?/", package):
                graph.add_edge(reference, model, "approved version")

    for model in of(MODEL):  # models:/<name>@<alias> resolved through MLflow
        if any(s.startswith(("models:/", "[unknown: models:/")) for s in _strings(model.inputs)):
            for server in of(MLFLOW_TRACKING_SERVER):
                graph.add_edge(server, model, "MLflow alias")

    for cluster in of(CLUSTER):
        name = physical_name(cluster)
        for member in of(NODE_GROUP):
            if member.inputs.get("clusterName") == name:
                graph.add_edge(member, cluster, "nodes")
        for logs in of(LOG_GROUP):
            if f"/{name}/" in str(physical_name(logs)):
                graph.add_edge(cluster, logs, "control plane logs")

    for group in of(FEATURE_GROUP):  # retraining that takes its training set from the feature store
        for pipeline in of(PIPELINE):
            names = re.search(r'"emlops:feature-groups": "([^"]*)"', str(pipeline.inputs.get("pipelineDefinition", "")))
            if names and physical_name(group) in names.group(1).split(","):
                graph.add_edge(group, pipeline, "training set")

    transforming = _batch_transforms(graph, of(PIPELINE), of(MODEL), buckets, of(EVENT_RULE))
    transforming += _data_pipelines(graph, of(PIPELINE), of(FEATURE_GROUP), of(LAMBDA_FUNCTION), buckets,
                                    of(EVENT_RULE))
    # Where data is kept: feature stores, training, MLflow and pipelines read and write buckets.
    for consumer in of(FEATURE_GROUP) + of(MLFLOW_TRACKING_SERVER) + [p for p in of(PIPELINE) if p not in transforming]:
        for bucket in buckets:
            if _refers(consumer, physical_name(bucket)) or bucket.urn in consumer.dependencies:
                graph.add_edge(consumer, bucket, "stores")
    return graph


def _batch_transforms(graph: Graph, pipelines: list[PlanResource], models: list[PlanResource],
                      buckets: list[PlanResource], rules: list[PlanResource]) -> list[PlanResource]:
    """Edges of the pipelines with Transform steps (which it returns): input bucket -> pipeline -> output bucket, the
    model each step transforms with, and the rule told of failed runs."""
    transforming = []
    for pipeline in pipelines:
        try:
            steps = json.loads(pipeline.inputs.get("pipelineDefinition", "")).get("Steps", [])
        except (ValueError, AttributeError):
            continue
        transforms = [s.get("Arguments") or {} for s in steps if isinstance(s, dict) and s.get("Type") == "Transform"]
        if not transforms:
            continue
        transforming.append(pipeline)
        for arguments in transforms:
            graph.add_edge(next((m for m in models if physical_name(m) == arguments.get("ModelName")), None),
                           pipeline, "transforms")
            source = ((arguments.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource") or {}
            output = (arguments.get("TransformOutput") or {}).get("S3OutputPath", "")
            for bucket in buckets:
                if str(source.get("S3Uri", "")).startswith(f"s3://{physical_name(bucket)}/"):
                    graph.add_edge(bucket, pipeline, "batch input")
                if str(output).startswith(f"s3://{physical_name(bucket)}/"):
                    graph.add_edge(pipeline, bucket, "batch output")
        arn = str(pipeline.inputs.get("pipelineName", ""))
        for rule in rules:
            pattern = str(rule.inputs.get("eventPattern", ""))
            if "Pipeline Execution Status Change" in pattern and f"pipeline/{arn.lower()}\"" in pattern:
                graph.add_edge(pipeline, rule, "failures")
    return transforming


def _data_pipelines(graph: Graph, pipelines: list[PlanResource], groups: list[PlanResource],
                    functions: list[PlanResource], buckets: list[PlanResource],
                    rules: list[PlanResource]) -> list[PlanResource]:
    """Edges of the data pipelines (which it returns): the bucket data lands in -> pipeline -> the feature group its
    Ingest step writes, the function that runs its claim, gate and ingest steps, and the rule told of failed runs
    (quarantined batches among them)."""
    feeding = []
    for pipeline in pipelines:
        definition = str(pipeline.inputs.get("pipelineDefinition", ""))
        if '"action": "claim"' not in definition:
            continue
        feeding.append(pipeline)
        for bucket in buckets:
            if f'"landing_uri": "s3://{physical_name(bucket)}/' in definition:
                graph.add_edge(bucket, pipeline, "landed data")
        for function in functions:
            if f':function:{physical_name(function)}"' in definition:
                graph.add_edge(pipeline, function, "claim, gate, ingest")
        for group in groups:
            if f'"feature_group": "{physical_name(group)}"' in definition:
                graph.add_edge(pipeline, group, "validated features")
        name = str(pipeline.inputs.get("pipelineName", "")).lower()
        for rule in rules:
            pattern = str(rule.inputs.get("eventPattern", ""))
            if "Pipeline Execution Status Change" in pattern and f"pipeline/{name}\"" in pattern:
                graph.add_edge(pipeline, rule, "failures, quarantine")
    return feeding


def _node_label(r: PlanResource) -> str:
    mode = serving_mode(r)
    return f"{r.name}\n{GRAPH_LABELS[r.type]}" + (f" · {mode}" if mode else "")


def serving_mode(r: PlanResource) -> str:
    """How an endpoint configuration serves (real-time, serverless, asynchronous; with a shadow test; on GPUs) or
    what a model is (multi-model, a shadow test's challenger); empty for other resources."""
    if r.type == MODEL.token:
        kinds = ["multi-model"] if (r.inputs.get("primaryContainer") or {}).get("mode") == "MultiModel" else []
        if (r.inputs.get("tags") or {}).get("model-role") == "challenger":
            kinds.append("challenger")
        return ", ".join(kinds)
    if r.type != ENDPOINT_CONFIG.token:
        return ""
    variants = r.inputs.get("productionVariants") or []
    if r.inputs.get("asyncInferenceConfig"):
        kinds = ["asynchronous"]
    elif any(v.get("serverlessConfig") for v in variants):
        kinds = ["serverless"]
    else:
        kinds = ["real-time"]
    if r.inputs.get("shadowProductionVariants"):
        kinds.append("shadow test")
    instance_types = [v.get("instanceType") for v in variants + (r.inputs.get("shadowProductionVariants") or [])]
    if any(isinstance(t, str) and has_gpu(t) for t in instance_types):
        kinds.append("GPU")
    return ", ".join(kinds)


def _ids(graph: Graph) -> dict[str, str]:
    ids: dict[str, str] = {}
    for members in graph.groups.values():
        for r in members:
            base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", r.name)
            candidate, i = base, 2
            while candidate in ids.values():
                candidate, i = f"{base}_{i}", i + 1
            ids[r.urn] = candidate
    return ids


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def to_mermaid(plan: Plan, graph: Graph) -> str:
    ids = _ids(graph)
    lines = ["flowchart LR"]
    for i, (label, members) in enumerate(graph.groups.items()):
        lines.append(f'  subgraph g{i}["{_mermaid_text(label)}"]')
        lines += [f'    {ids[r.urn]}["{_mermaid_text(_node_label(r))}"]' for r in members]
        lines.append("  end")
    for source, target, label in graph.edges:
        arrow = f' -->|"{_mermaid_text(label)}"| ' if label else " --> "
        lines.append(f"  {ids[source]}{arrow}{ids[target]}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(plan: Plan, graph: Graph) -> str:
    ids = _ids(graph)
    lines = [f"digraph {_dot_text(f'{plan.project}-{plan.stack}')} {{", "  rankdir=LR;",
             '  node [shape=box, fontname="Helvetica"];']
    for i, (label, members) in enumerate(graph.groups.items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f"    label={_dot_text(label)};")
        lines += [f"    {ids[r.urn]} [label={_dot_text(_node_label(r))}];" for r in members]
        lines.append("  }")
    for source, target, label in graph.edges:
        attrs = f" [label={_dot_text(label)}]" if label else ""
        lines.append(f"  {ids[source]} -> {ids[target]}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


FORMATS = ("mermaid", "dot")


def between(graph: Graph, sources: list[str], targets: list[str]) -> Graph:
    """The shortest paths of GRAPH from a node named in SOURCES to one named in TARGETS (logical names): how data gets
    from the ones to the others; ValueError naming a name no node has, or when no path leads there."""
    nodes = {r.urn: r for members in graph.groups.values() for r in members}
    named = {r.name: r.urn for r in nodes.values()}
    for name in [*sources, *targets]:
        if name not in named:
            close = difflib.get_close_matches(name, list(named), n=1)
            raise ValueError(f"no node of the graph is named {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))

    def distances(starts: list[str], forward: bool) -> dict[str, int]:
        found = {named[name]: 0 for name in starts}
        todo = list(found)
        while todo:
            urn = todo.pop(0)
            for source, target, _ in graph.edges:
                step = target if forward and source == urn else source if not forward and target == urn else None
                if step is not None and step not in found:
                    found[step] = found[urn] + 1
                    todo.append(step)
        return found

    ahead, behind = distances(sources, True), distances(targets, False)
    lengths = [ahead[named[name]] for name in targets if named[name] in ahead]
    if not lengths:
        raise ValueError(f"no path leads from {', '.join(sources)} to {', '.join(targets)}")
    kept = {urn for urn in ahead if urn in behind and ahead[urn] + behind[urn] == min(lengths)}
    part = Graph(edges=[(a, b, label) for a, b, label in graph.edges if a in kept and b in kept
                        and ahead[a] + 1 == ahead[b] and behind[b] + 1 == behind[a]])
    for label, members in graph.groups.items():
        if [r for r in members if r.urn in kept]:
            part.groups[label] = [r for r in members if r.urn in kept]
    return part


def graph(plan: Plan, fmt: str = "mermaid", sources: Sequence[str] = (), targets: Sequence[str] = ()) -> str:
    """PLAN drawn as a mermaid flowchart or a graphviz digraph; with SOURCES and TARGETS (logical names), only the
    shortest paths from the ones to the others (`between`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not supported; allowed: {', '.join(FORMATS)}")
    built = build_graph(plan)
    if sources or targets:
        built = between(built, list(sources), list(targets))
    return to_mermaid(plan, built) if fmt == "mermaid" else to_dot(plan, built)
