"""The capacity model of a plan: what each priced resource runs for in a month, read from the plan alone.

Each `Line` names a resource, what it is (instance type, count), the key of its price in a price book
(`emlops.review.prices`) and its monthly quantity at the low and the high end: an endpoint's instance-hours at
its autoscaling minimum and maximum (following its scheduled actions through the week, so off hours count), a
scheduled job's runs times its instances times its duration, the hours of an MLflow server, an EKS control plane,
a NAT gateway, a public IPv4 address or an interface endpoint (one per subnet), the months of a KMS key, an alarm
or a dashboard.
Durations the plan does not fix are assumptions, stated on the line: a job is taken to run as long as its
configured maximum runtime, a batch transform (which has none) as long as its `expected_run_minutes` says (the
pipeline's `expected-run-minutes` tag). What AWS bills by use (requests, GB stored, GB-seconds of serverless compute, runs
that events start) is a `UsageOnly` entry: listed, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Optional

from emlops.components.schedules import EXPECTED_RUN_TAG
from emlops.offline.plan import Plan, PlanResource
from emlops.review.schedule_hours import HOURS_PER_MONTH, ScheduledCapacity, runs_per_month, scaled_instance_hours

ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCHEDULED_ACTION = "aws:appautoscaling/scheduledAction:ScheduledAction"
MONITORING_SCHEDULE = "aws:sagemaker/monitoringSchedule:MonitoringSchedule"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
# hourly resources: type -> (price key, what)
HOURLY = {
    "aws:eks/cluster:Cluster": ("eks:cluster", "EKS control plane"),
    "aws:ec2/natGateway:NatGateway": ("ec2:nat-gateway", "NAT gateway"),
    "aws:ec2/eip:Eip": ("vpc:public-ipv4", "public IPv4 address (Elastic IP)"),
}
# resources billed by the month: type -> (price key, unit, what)
MONTHLY = {
    "aws:kms/key:Key": ("kms:key", "key-months", "customer-managed KMS key"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch:alarm", "alarm-months", "CloudWatch alarm"),
    "aws:cloudwatch/dashboard:Dashboard": ("cloudwatch:dashboard", "dashboard-months", "CloudWatch dashboard"),
}
# resources AWS bills by use only: type -> what the bill depends on
USAGE_ONLY = {
    "aws:s3/bucket:Bucket": "GB stored and requests",
    "aws:sagemaker/featureGroup:FeatureGroup": "online store reads, writes and GB stored; offline store in S3",
    "aws:sns/topic:Topic": "messages published and delivered",
    "aws:cloudwatch/logGroup:LogGroup": "GB ingested and stored",
    "aws:ecr/repository:Repository": "GB of images stored",
    "aws:ec2/flowLog:FlowLog": "GB of flow logs delivered",
    "aws:glue/catalogDatabase:CatalogDatabase": "objects stored and requests in the Glue Data Catalog",
}
JOB_KINDS = {"Processing": "processing", "Training": "training", "Transform": "transform"}


@dataclass(frozen=True)
class Line:
    """One priced quantity of one resource in a month."""

    resource: str
    type: str
    component: str
    region: str
    what: str
    price_keys: tuple[str, ...]  # one key, or a node group's instance types (low: cheapest, high: dearest)
    unit: str
    low: Fraction
    high: Fraction
    assumption: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "type": self.type, "component": self.component, "region": self.region,
                "what": self.what, "priceKeys": list(self.price_keys), "unit": self.unit,
                "low": f"{float(self.low):.4f}", "high": f"{float(self.high):.4f}", "assumption": self.assumption}


@dataclass(frozen=True)
class UsageOnly:
    """A resource AWS bills by use: what the bill depends on, not a quantity."""

    resource: str
    type: str
    component: str
    billed_by: str

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "type": self.type, "component": self.component, "billedBy": self.billed_by}


@dataclass
class Capacity:
    stack: str
    lines: list[Line] = field(default_factory=list)
    usage_only: list[UsageOnly] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "lines": [line.to_json() for line in self.lines],
                "usageOnly": [u.to_json() for u in self.usage_only]}


class _Reader:
    """The plan, indexed the ways the capacity model looks things up."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.by_urn = {r.urn: r for r in plan.resources}
        regions = {r.urn: r.inputs.get("region") for r in plan.resources if r.type.startswith("pulumi:providers:aws")}
        self.default_region = next((v for v in regions.values() if isinstance(v, str)), "unknown")
        self.regions = regions
        self.endpoint_of_config = {r.inputs.get("endpointConfigName"): r.inputs.get("name")
                                   for r in plan.by_type(ENDPOINT)}
        self.job_definitions = {}
        for r in plan.resources:
            resources = r.inputs.get("jobResources")
            if isinstance(resources, dict):
                self.job_definitions[r.inputs.get("name") or r.inputs.get("jobDefinitionName")] = r

    def region(self, resource: PlanResource) -> str:
        region = self.regions.get(resource.provider or "")
        return region if isinstance(region, str) else self.default_region

    def component(self, resource: PlanResource) -> str:
        """The platform's stage a resource belongs to: its ancestor just below the top component."""
        chain = [resource]
        while chain[-1].parent in self.by_urn:
            chain.append(self.by_urn[chain[-1].parent])
        components = [r for r in chain if not r.custom and r.type != "pulumi:pulumi:Stack"]
        if len(components) >= 2:
            return components[-2].name
        return components[-1].name if components else self.plan.stack

    def line(self, resource: PlanResource, what: str, keys: tuple[str, ...], unit: str, low: Fraction, high: Fraction,
             assumption: str = "") -> Line:
        return Line(resource.name, resource.type, self.component(resource), self.region(resource), what, keys, unit,
                    low, high, assumption)


def _endpoint_lines(reader: _Reader, config: PlanResource) -> tuple[list[Line], list[UsageOnly]]:
    lines, usage = [], []
    endpoint = reader.endpoint_of_config.get(config.inputs.get("name"))
    targets = {r.inputs.get("resourceId"): r for r in reader.plan.by_type(SCALING_TARGET)}
    actions: dict[str, list[ScheduledCapacity]] = {}
    for action in reader.plan.by_type(SCHEDULED_ACTION):
        target_action = action.inputs.get("scalableTargetAction") or {}
        actions.setdefault(action.inputs.get("resourceId"), []).append(ScheduledCapacity(
            action.inputs.get("schedule", ""), target_action.get("minCapacity"), target_action.get("maxCapacity")))
    asynchronous = config.inputs.get("asyncInferenceConfig") is not None
    variants = [(v, False) for v in config.inputs.get("productionVariants") or []]
    variants += [(v, True) for v in config.inputs.get("shadowProductionVariants") or []]
    for variant, shadow in variants:
        name = variant.get("variantName", "?")
        serverless = variant.get("serverlessConfig")
        if serverless:
            usage.append(UsageOnly(config.name, config.type, reader.component(config),
                                   f"serverless variant {name!r}: GB-seconds of compute at "
                                   f"{serverless.get('memorySizeInMb')} MB (up to {serverless.get('maxConcurrency')} "
                                   "concurrent requests) and data processed"))
            continue
        instance_type, count = variant.get("instanceType"), variant.get("initialInstanceCount", 1)
        if not isinstance(instance_type, str):
            continue
        resource_id = f"endpoint/{endpoint}/variant/{name}"
        target = targets.get(resource_id)
        what = f"{instance_type} {'shadow ' if shadow else ''}variant {name!r}"
        assumption = ""
        if target is None:
            low = high = HOURS_PER_MONTH * count
            what += f", {count} instance{'s' * (count != 1)}"
        else:
            low_count, high_count = target.inputs.get("minCapacity", count), target.inputs.get("maxCapacity", count)
            low, high, weekly = scaled_instance_hours(low_count, high_count, actions.get(resource_id, []))
            what += f", {low_count}-{high_count} instances"
            if actions.get(resource_id):
                what += " on a schedule" if weekly else ""
                assumption = ("off-hours schedule applied week by week" if weekly else
                              "schedules that do not repeat weekly: the lowest minimum and highest maximum all month")
            if asynchronous and low_count == 0:
                assumption = "scales in to zero without a backlog: the low end runs no instance"
        lines.append(reader.line(config, what, (f"sagemaker:hosting:{instance_type}",), "instance-hours", low, high,
                                 assumption))
    return lines, usage


# kind (processing, training, transform), instance type, count, seconds, whether a condition step decides it runs
Step = tuple[str, str, int, Optional[int], bool]


def _job_lines(reader: _Reader, resource: PlanResource, steps: list[Step], runs: Fraction, schedule: str,
               expected_minutes: Optional[int] = None) -> list[Line]:
    """Lines of a scheduled job (or pipeline): per step its kind, instance type, count and duration: its configured
    maximum runtime, else the run's expected duration (a batch transform's `expected_run_minutes`), else none."""
    lines = []
    for kind, instance_type, count, max_seconds, conditional in steps:
        if max_seconds is not None:
            hours, assumption = Fraction(max_seconds, 3600), "each run takes its configured maximum runtime"
        elif expected_minutes is not None:
            hours, assumption = Fraction(expected_minutes, 60), "each run takes its expected_run_minutes"
        else:
            continue  # listed as billed by use (see _pipelines)
        quantity = runs * count * hours
        note = f"{assumption}, {_fmt(hours)} h"
        if conditional:  # e.g. a data pipeline's validation, when the run found a batch
            note += "; it runs only when a condition of its pipeline holds, so the low end counts none"
        lines.append(reader.line(
            resource, f"{instance_type} {kind} x{count}, {_fmt(runs)} runs ({schedule})",
            (f"sagemaker:{kind}:{instance_type}",), "instance-hours", Fraction(0) if conditional else quantity,
            quantity, note))
    return lines


def _fmt(value: Fraction) -> str:
    return f"{float(value):.2f}".rstrip("0").rstrip(".")


def _pipeline_steps(pipeline: PlanResource) -> list[Step]:
    try:
        definition = json.loads(pipeline.inputs.get("pipelineDefinition") or "{}")
    except (TypeError, ValueError):
        return []
    return _steps(definition.get("Steps", []), conditional=False)


def _steps(definition_steps: list[Any], conditional: bool) -> list[Step]:
    """The jobs of a pipeline's steps, those in a condition step's branches too (they run only when it decides so)."""
    steps = []
    for step in definition_steps:
        kind, arguments = JOB_KINDS.get(step.get("Type")), step.get("Arguments") or {}
        if step.get("Type") == "Condition":
            steps += _steps([*arguments.get("IfSteps", []), *arguments.get("ElseSteps", [])], conditional=True)
        if kind is None:
            continue
        resources = (arguments.get("ProcessingResources", {}).get("ClusterConfig") or arguments.get("ResourceConfig")
                     or arguments.get("TransformResources") or {})
        max_seconds = (arguments.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        if isinstance(resources.get("InstanceType"), str):
            steps.append((kind, resources["InstanceType"], int(resources.get("InstanceCount", 1)), max_seconds,
                          conditional))
    return steps


def _expected_minutes(pipeline: PlanResource) -> Optional[int]:
    value = (pipeline.inputs.get("tags") or {}).get(EXPECTED_RUN_TAG)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _pipelines(reader: _Reader, capacity: Capacity) -> None:
    rules = {r.inputs.get("name"): r for r in reader.plan.by_type(EVENT_RULE)}
    starts: dict[str, list[PlanResource]] = {}
    for target in reader.plan.by_type(EVENT_TARGET):
        arn, rule = target.inputs.get("arn"), rules.get(target.inputs.get("rule"))
        if isinstance(arn, str) and ":pipeline/" in arn and rule is not None:
            starts.setdefault(arn.rsplit("/", 1)[1], []).append(rule)
    for pipeline in reader.plan.by_type(PIPELINE):
        steps, expected = _pipeline_steps(pipeline), _expected_minutes(pipeline)
        if not steps:
            continue
        triggers = starts.get(pipeline.inputs.get("pipelineName", ""), [])
        for rule in triggers:
            schedule = rule.inputs.get("scheduleExpression")
            if isinstance(schedule, str):
                capacity.lines += _job_lines(reader, pipeline, steps, runs_per_month(schedule), schedule, expected)
        events = [r for r in triggers if not isinstance(r.inputs.get("scheduleExpression"), str)]
        untimed = [s for s in steps if s[3] is None] if expected is None else []
        if events or untimed:
            parts = [f"{count} x {instance_type} {kind}" for kind, instance_type, count, _, _ in steps]
            why = "runs that events start" if events else "instance-hours of steps without a maximum runtime"
            capacity.usage_only.append(UsageOnly(pipeline.name, pipeline.type, reader.component(pipeline),
                                                 f"{why}: {', '.join(parts)} per run"))


def _monitoring(reader: _Reader, capacity: Capacity) -> None:
    for schedule in reader.plan.by_type(MONITORING_SCHEDULE):
        config = schedule.inputs.get("monitoringScheduleConfig") or {}
        expression = (config.get("scheduleConfig") or {}).get("scheduleExpression")
        job = reader.job_definitions.get(config.get("monitoringJobDefinitionName"))
        if job is None or not isinstance(expression, str) or not expression.startswith(("cron(", "rate(")):
            continue
        cluster = (job.inputs.get("jobResources") or {}).get("clusterConfig") or {}
        max_seconds = (job.inputs.get("stoppingCondition") or {}).get("maxRuntimeInSeconds")
        steps = [("processing", cluster.get("instanceType"), int(cluster.get("instanceCount", 1)), max_seconds, False)]
        if max_seconds is None:
            capacity.usage_only.append(UsageOnly(schedule.name, schedule.type, reader.component(schedule),
                                                 f"runs without a maximum runtime: {steps[0][2]} x "
                                                 f"{steps[0][1]} processing per run ({expression})"))
        capacity.lines += _job_lines(reader, schedule, steps, runs_per_month(expression), expression)


def capacity_of(plan: Plan) -> Capacity:
    """The capacity model of PLAN (see the module doc)."""
    reader = _Reader(plan)
    capacity = Capacity(plan.stack)
    for resource in plan.resources:
        if resource.type == ENDPOINT_CONFIG:
            lines, usage = _endpoint_lines(reader, resource)
            capacity.lines += lines
            capacity.usage_only += usage
        elif resource.type == "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer":
            size = resource.inputs.get("trackingServerSize", "Small")
            capacity.lines.append(reader.line(resource, f"MLflow tracking server, {size}",
                                              (f"sagemaker:mlflow:{size}",), "hours", HOURS_PER_MONTH,
                                              HOURS_PER_MONTH))
        elif resource.type in HOURLY:
            key, what = HOURLY[resource.type]
            capacity.lines.append(reader.line(resource, what, (key,), "hours", HOURS_PER_MONTH, HOURS_PER_MONTH))
        elif resource.type == "aws:eks/nodeGroup:NodeGroup":
            scaling, types = resource.inputs.get("scalingConfig") or {}, resource.inputs.get("instanceTypes") or []
            low, high = scaling.get("minSize", 0), scaling.get("maxSize", 0)
            capacity.lines.append(reader.line(
                resource, f"EKS nodes {', '.join(types)}, {low}-{high}", tuple(f"ec2:instance:{t}" for t in types),
                "instance-hours", HOURS_PER_MONTH * low, HOURS_PER_MONTH * high,
                "low: the minimum on the cheapest type; high: the maximum on the dearest" if len(types) > 1 else ""))
        elif resource.type == VPC_ENDPOINT and resource.inputs.get("vpcEndpointType") == "Interface":
            zones = len(resource.inputs.get("subnetIds") or []) or 1
            service = str(resource.inputs.get("serviceName", "")).split(f".{reader.region(resource)}.", 1)[-1]
            capacity.lines.append(reader.line(
                resource, f"interface endpoint {service} in {zones} AZs", ("vpc:interface-endpoint",),
                "endpoint-hours", HOURS_PER_MONTH * zones, HOURS_PER_MONTH * zones))
        elif resource.type in MONTHLY:
            key, unit, what = MONTHLY[resource.type]
            capacity.lines.append(reader.line(resource, what, (key,), unit, Fraction(1), Fraction(1)))
        elif resource.type in USAGE_ONLY:
            capacity.usage_only.append(UsageOnly(resource.name, resource.type, reader.component(resource),
                                                 USAGE_ONLY[resource.type]))
    _monitoring(reader, capacity)
    _pipelines(reader, capacity)
    return capacity
