"""A ModelMonitor's SageMaker Clarify monitors: bias drift and feature-attribution (explainability) drift.

pulumi_aws has no model-bias or model-explainability job definition; pulumi-aws-native has both (AWS's CloudFormation
resources through Cloud Control). Each monitor is: its analysis configuration (a JSON object under the monitor's
reports prefix, encrypted with the reports key, that the job definition's ConfigUri names), the job definition (every
property create-only, so a change replaces it under a new auto-name before the old one goes), a schedule on the
monitor's cadence, CloudWatch alarms on the chosen metrics, and the run-outcome rules every monitor has.

The bias job reads the captured predictions and the ground truth only, in network isolation. The explainability job
makes (and deletes) a shadow endpoint of the model for each run and calls it, through the SageMaker API endpoints of
the private subnets it runs in: network isolation would forbid that, so only it runs without.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws

from emlops.components.clarify_args import (BIAS_DIMENSIONS, BIAS_NAMESPACE, EXPLAINABILITY_NAMESPACE,
                                            RATIO_METRICS, SHADOW_ENDPOINT_PREFIX, BiasSettings,
                                            ExplainabilitySettings, bias_analysis_config,
                                            explainability_analysis_config)
from emlops.components.iam import Statement, prefix_read_statements
from emlops.components.monitoring_alarms import run_outcome_rules
from emlops.components.monitoring_args import feature_token
from emlops.components.options import child
from emlops.components.outputs import concat

BIAS, EXPLAINABILITY = "bias", "explainability"
KINDS = {BIAS: "ModelBias", EXPLAINABILITY: "ModelExplainability"}


def clarify_logical_name(name: str, kind: str) -> str:
    """A Clarify monitor's schedule logical name (`<monitor>-bias`, `<monitor>-explainability`), and the name its
    job definition, configuration object, alarms and run-outcome rules start with."""
    return f"{name}-{kind}"


def config_key(prefix: str, kind: str) -> str:
    """The analysis configuration's key in the reports bucket: `monitoring/<monitor>/clarify/<kind>-analysis.json`."""
    return f"{prefix}clarify/{kind}-analysis.json"


@dataclass
class ClarifyMonitor:
    """What one Clarify monitor made."""

    kind: str
    job_definition: pulumi.CustomResource
    schedule: aws.sagemaker.MonitoringSchedule
    alarms: list[aws.cloudwatch.MetricAlarm]


def clarify_monitors(parent: pulumi.Resource, name: str, bias: Optional[BiasSettings],
                     explainability: Optional[ExplainabilitySettings], *, endpoint_input: Mapping[str, Any],
                     endpoint_name: pulumi.Input[str], model_name: Optional[pulumi.Input[str]],
                     image_uri: pulumi.Input[str], reports_bucket: pulumi.Input[str], prefix: str,
                     output_key: pulumi.Input[str], expression: str, interval_seconds: int,
                     topic_arn: pulumi.Input[str], tags: dict, depends_on: list, **shared: Any) -> list[ClarifyMonitor]:
    """The Clarify monitors the settings ask for. `shared` are the arguments every job definition of the monitor
    shares (resources, network, time limit, role)."""
    # imported here: only stacks that monitor with Clarify pay for the aws-native package
    import pulumi_aws_native as aws_native

    made = []
    for kind, settings in ((BIAS, bias), (EXPLAINABILITY, explainability)):
        if settings is None:
            continue
        base = clarify_logical_name(name, kind)
        document = (pulumi.Output.from_input(bias_analysis_config(settings)) if kind == BIAS
                    else pulumi.Output.from_input(model_name).apply(
                        lambda model, s=settings: explainability_analysis_config(s, model)))
        key = config_key(prefix, kind)
        config = aws.s3.BucketObjectv2(
            f"{base}-config", bucket=reports_bucket, key=key, content_type="application/json",
            content=document.apply(lambda doc: json.dumps(doc, indent=2, sort_keys=True)),
            server_side_encryption="aws:kms", kms_key_id=output_key, tags=tags, opts=child(parent))
        app = {"image_uri": image_uri, "config_uri": concat("s3://", config.bucket, "/", config.key),
               "environment": {"publish_cloudwatch_metrics": "Enabled"}}
        constraints = settings.baseline_constraints_s3_uri
        baseline = {"constraints_resource": {"s3_uri": constraints}} if constraints else None
        job_input: dict[str, Any] = {**endpoint_input}
        if settings.probability_attribute is not None:
            job_input["probability_attribute"] = settings.probability_attribute
        output = {"kms_key_id": output_key, "monitoring_outputs": [{"s3_output": {
            "s3_uri": concat("s3://", reports_bucket, "/", prefix, kind), "local_path": "/opt/ml/processing/output",
            "s3_upload_mode": "EndOfJob"}}]}
        cloud_control_tags = [{"key": k, "value": v} for k, v in tags.items()]
        options = child(parent, depends_on=[*depends_on, config])
        if kind == BIAS:
            if settings.probability_threshold is not None:
                job_input["probability_threshold_attribute"] = settings.probability_threshold
            job = aws_native.sagemaker.ModelBiasJobDefinition(
                f"{base}-job", model_bias_app_specification=app, model_bias_baseline_config=baseline,
                model_bias_job_input={"endpoint_input": job_input,
                                      "ground_truth_s3_input": {"s3_uri": settings.ground_truth_s3_uri}},
                model_bias_job_output_config=output, tags=cloud_control_tags, opts=options, **shared)
        else:
            network = {**shared["network_config"], "enable_network_isolation": False}
            job = aws_native.sagemaker.ModelExplainabilityJobDefinition(
                f"{base}-job", model_explainability_app_specification=app,
                model_explainability_baseline_config=baseline,
                model_explainability_job_input={"endpoint_input": job_input},
                model_explainability_job_output_config=output, tags=cloud_control_tags, opts=options,
                **{**shared, "network_config": network})
        schedule = aws.sagemaker.MonitoringSchedule(
            base,
            monitoring_schedule_config={"monitoring_job_definition_name": job.job_definition_name,
                                        "monitoring_type": KINDS[kind],
                                        "schedule_config": {"schedule_expression": expression}},
            tags=tags, opts=child(parent))
        if kind == BIAS:
            alarms = bias_alarms(parent, base, settings, endpoint_name, schedule.name, interval_seconds, topic_arn, tags)
        else:
            alarms = attribution_alarms(parent, base, settings, endpoint_name, schedule.name, interval_seconds,
                                        topic_arn, tags)
        run_outcome_rules(parent, base, schedule.arn, topic_arn, tags)
        made.append(ClarifyMonitor(kind, job, schedule, alarms))
    return made


def bias_alarms(parent: pulumi.Resource, base: str, bias: BiasSettings, endpoint_name: pulumi.Input[str],
                schedule_name: pulumi.Output[str], interval_seconds: int, topic_arn: pulumi.Input[str],
                tags: dict) -> list[aws.cloudwatch.MetricAlarm]:
    """An alarm per facet and chosen metric: above its threshold (below, for DI). Clarify names a metric's facet,
    label and values in dimensions of its own spelling; a Metrics Insights query selects the facet's series by the
    dimensions whose values the platform knows (endpoint, schedule, facet) instead of guessing the others'."""
    schema = ", ".join([f'"{BIAS_NAMESPACE}"', *BIAS_DIMENSIONS])
    alarms = []
    for facet in bias.facets:
        for metric, threshold in bias.thresholds.items():
            ratio = metric in RATIO_METRICS
            query = pulumi.Output.all(endpoint_name, schedule_name).apply(
                lambda names, metric=metric, facet=facet.name, ratio=ratio: (
                    f"SELECT {'MIN' if ratio else 'MAX'}(bias_metric_{metric}) FROM SCHEMA({schema}) "
                    f"WHERE Endpoint = '{names[0]}' AND MonitoringSchedule = '{names[1]}' AND Facet = '{facet}'"))
            alarms.append(aws.cloudwatch.MetricAlarm(
                f"{base}-{feature_token(facet.name)}-{metric.lower()}",
                alarm_description=f"{base}: post-training bias {metric} of facet {facet.name} "
                                  f"{'below' if ratio else 'above'} {threshold}",
                metric_queries=[{"id": "bias", "expression": query, "period": interval_seconds, "return_data": True}],
                evaluation_periods=1,
                comparison_operator="LessThanThreshold" if ratio else "GreaterThanThreshold",
                threshold=threshold,
                # no ground truth yet, no metric: not bias (failed runs are reported by events)
                treat_missing_data="notBreaching",
                alarm_actions=[topic_arn], ok_actions=[topic_arn], tags=tags, opts=child(parent)))
    return alarms


def attribution_alarms(parent: pulumi.Resource, base: str, explainability: ExplainabilitySettings,
                       endpoint_name: pulumi.Input[str], schedule_name: pulumi.Output[str], interval_seconds: int,
                       topic_arn: pulumi.Input[str], tags: dict) -> list[aws.cloudwatch.MetricAlarm]:
    """An alarm per top feature on its global SHAP value (`feature_<name>`, Kernel SHAP, the first label)."""
    return [aws.cloudwatch.MetricAlarm(
        f"{base}-{feature_token(feature)}",
        alarm_description=f"{base}: global SHAP value of top feature {feature} below {explainability.min_attribution}",
        namespace=EXPLAINABILITY_NAMESPACE, metric_name=f"feature_{feature}",
        dimensions={"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name,
                    "ExplainabilityMethod": "KernelShap", "Label": "label0", "ValueType": "GlobalShapValues"},
        statistic="Minimum", period=interval_seconds, evaluation_periods=1,
        comparison_operator="LessThanThreshold", threshold=explainability.min_attribution,
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn], ok_actions=[topic_arn], tags=tags, opts=child(parent))
        for feature in explainability.top_features]


def clarify_statements(aws_facts: Any, bias: Optional[BiasSettings], explainability: Optional[ExplainabilitySettings],
                       reports_arn: pulumi.Input[str], prefix: str, model_name: Optional[pulumi.Input[str]],
                       bucket_arn: Any, via_s3: pulumi.Output[str], decrypt: Any) -> dict[str, list[Statement]]:
    """What the Clarify jobs do besides what every monitoring job does: read their analysis configuration (and the
    baselines they name), bias reads the ground truth, explainability runs a shadow endpoint of the model.
    `bucket_arn` and `decrypt` are the monitoring role's helpers (an ARN from a bucket name; decryption through S3)."""
    from emlops.components.locations import parse_s3

    concerns: dict[str, list[Statement]] = {"read-clarify-config": [Statement(
        actions=["s3:GetObject"], resources=[concat(reports_arn, "/", prefix, "clarify/*")])]}
    objects = [uri for uri in (bias.baseline_constraints_s3_uri if bias else None,
                               explainability.baseline_s3_uri if explainability else None,
                               explainability.baseline_constraints_s3_uri if explainability else None) if uri]
    if objects:
        located = [parse_s3(uri, "baseline") for uri in objects]
        buckets = [bucket_arn(b) for b in dict.fromkeys(b for b, _ in located)]
        concerns["read-clarify-baselines"] = [
            Statement(actions=["s3:GetObject"], resources=[concat(bucket_arn(b), "/", k) for b, k in located]),
            decrypt(buckets)]
    if bias is not None:
        truth_bucket, truth_key = parse_s3(bias.ground_truth_s3_uri, "ground_truth_s3_uri", prefix=True)
        truth_key = truth_key.rstrip("/") + "/" if truth_key else ""
        concerns["read-bias-ground-truth"] = [*prefix_read_statements(bucket_arn(truth_bucket), truth_key),
                                              decrypt([bucket_arn(truth_bucket)])]
    if explainability is not None:
        endpoint = aws_facts.arn("sagemaker", f"endpoint/{SHADOW_ENDPOINT_PREFIX}*")
        endpoint_config = aws_facts.arn("sagemaker", f"endpoint-config/{SHADOW_ENDPOINT_PREFIX}*")
        concerns["shadow-endpoint"] = [
            # SageMaker lower-cases names in its ARNs
            Statement(actions=["sagemaker:DescribeModel"], resources=[aws_facts.arn("sagemaker", concat(
                "model/", pulumi.Output.from_input(model_name).apply(str.lower)))]),
            Statement(actions=["sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig"],
                      resources=[endpoint_config]),
            Statement(actions=["sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
                               "sagemaker:InvokeEndpoint"], resources=[endpoint]),
        ]
    return concerns
