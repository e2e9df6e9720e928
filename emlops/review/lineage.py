"""Which data a model is trained on, as a plan configures it (`emlops lineage STACK MODEL --offline`).

Read from the plan alone: the model's retraining pipeline (`<environment>-<model>-retraining`), what its Prepare
step reads (feature groups through an Athena query, with the label, or a datasets prefix), and the data pipelines
whose Ingest step feeds those feature groups (where their data lands, the constraints it is validated against,
whether a failing batch is quarantined). A registered version's own lineage (the execution that trained it and
when) is in its metadata, which `emlops lineage` reads with credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Optional

from emlops.catalog.resources_sagemaker import PIPELINE
from emlops.offline.plan import Plan, PlanResource

FEATURE_GROUPS, LABEL, DATASET = "emlops:feature-groups", "emlops:label", "emlops:dataset"


def _steps(resource: PlanResource) -> Iterator[Mapping[str, Any]]:
    """Every step of a pipeline's definition, conditions' branches included."""
    try:
        definition = json.loads(resource.inputs.get("pipelineDefinition") or "")
    except (TypeError, ValueError):
        return

    def walk(steps: Any) -> Iterator[Mapping[str, Any]]:
        for step in steps if isinstance(steps, list) else []:
            if isinstance(step, Mapping):
                yield step
                arguments = step.get("Arguments") or {}
                yield from walk(arguments.get("IfSteps"))
                yield from walk(arguments.get("ElseSteps"))

    yield from walk(definition.get("Steps") if isinstance(definition, Mapping) else None)


def _step(resource: PlanResource, name: str) -> Optional[Mapping[str, Any]]:
    return next((step for step in _steps(resource) if step.get("Name") == name), None)


def _pipeline(plan: Plan, name: str) -> Optional[PlanResource]:
    return next((r for r in plan.by_type(PIPELINE.token) if r.inputs.get("pipelineName") == name), None)


def configured_lineage(plan: Plan, environment: str, model: str) -> list[str]:
    """The lines that say what MODEL's new versions are trained on in PLAN's stack, and what feeds it."""
    pipeline_name = f"{environment}-{model}-retraining"
    pipeline = _pipeline(plan, pipeline_name)
    if pipeline is None:
        return [f"{model} in {plan.stack}: no retraining pipeline ({pipeline_name}); its versions are registered "
                "from outside the platform, and only their own metadata says what they were trained on"]
    lines = [f"{model} in {plan.stack} (as configured):", f"  retrained by: SageMaker pipeline {pipeline_name}"]
    prepare = _step(pipeline, "Prepare") or {}
    inputs = (prepare.get("Arguments") or {}).get("ProcessingInputs") or [{}]
    athena = (inputs[0].get("DatasetDefinition") or {}).get("AthenaDatasetDefinition")
    metadata = ((_step(pipeline, "Register") or {}).get("Arguments") or {}).get("CustomerMetadataProperties") or {}
    groups = [g for g in str(metadata.get(FEATURE_GROUPS, "")).split(",") if g]
    if athena:
        lines.append(f"  training set: feature groups {', '.join(groups)} (label {metadata.get(LABEL)}), point in "
                     f"time, queried from {athena.get('Database')} through Athena workgroup {athena.get('WorkGroup')}")
    else:
        s3 = inputs[0].get("S3Input") or {}
        lines.append(f"  training set: {s3.get('S3Uri')} (each version records when it read it; the versioned bucket "
                     "keeps the objects it read)")
    feeders = _feeders(plan)
    for group in groups:
        fed = feeders.get(group)
        if not fed:
            lines.append(f"  {group}: fed by no data pipeline of this stack")
        for name, landing, constraints, quarantine in fed or []:
            lines.append(f"  {group}: fed by data pipeline {name} from {landing}, validated against {constraints}, "
                         f"{'quarantining' if quarantine else 'keeping'} batches that fail")
    lines.append(f"  each registered version records its pipeline execution and start: emlops lineage {plan.stack} "
                 f"{model} [--version N]")
    return lines


def _feeders(plan: Plan) -> dict[str, list[tuple[str, str, str, bool]]]:
    """Feature group -> (pipeline, landing URI, constraints, quarantine) of each data pipeline that ingests into it."""
    feeders: dict[str, list[tuple[str, str, str, bool]]] = {}
    for pipeline in plan.by_type(PIPELINE.token):
        arguments = {step.get("Name"): step.get("Arguments") or {} for step in _steps(pipeline)}
        if "Ingest" not in arguments or "Claim" not in arguments:
            continue
        constraints = next((i["S3Input"]["S3Uri"] for i in arguments.get("Validate", {}).get("ProcessingInputs", [])
                            if i.get("InputName") == "constraints"), "?")
        feeders.setdefault(str(arguments["Ingest"].get("feature_group")), []).append((
            str(pipeline.inputs.get("pipelineName")), str(arguments["Claim"].get("landing_uri")), constraints,
            bool(arguments.get("Gate", {}).get("quarantine_uri"))))
    return feeders
