"""What a ModelMonitor tells people: drift and model-quality alarms, and events for the outcome of its runs.

Model Monitor runs are SageMaker processing jobs; their outcome is not a CloudWatch metric, so failed
runs and runs that found constraint violations are caught by EventBridge rules on the processing
job's state change (filtered by the schedule's ARN). Drift is a metric per feature
(`feature_baseline_drift_<feature>`), so it gets one CloudWatch alarm per named feature; model quality
is a metric per problem type (auc, accuracy, rmse, ...), and the chosen one gets an alarm. All of them
notify the alerts topic.
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.model_quality import HIGHER_IS_BETTER, ModelQualitySettings, metric_alarm_direction
from emlops.components.monitoring_args import MonitoringSettings, feature_token
from emlops.components.options import child

# The namespace the built-in analyzer publishes real-time endpoint metrics to (dimensions Endpoint and
# MonitoringSchedule) when its environment sets `publish_cloudwatch_metrics` to Enabled.
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# ... and the model-quality metrics, with the same dimensions.
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
# Monitoring a batch transform job's captured data, it publishes here, with the MonitoringSchedule dimension only.
BATCH_DATA_METRICS_NAMESPACE = "aws/sagemaker/ModelMonitoring/data-metrics"


def drift_metric_name(feature: str) -> str:
    """The metric the analyzer publishes a feature's baseline drift as (in DATA_METRICS_NAMESPACE)."""
    return f"feature_baseline_drift_{feature}"


def data_metrics(endpoint_name: Optional[pulumi.Input[str]], schedule_name: pulumi.Input[str]) -> tuple[str, dict]:
    """The namespace and dimensions of the analyzer's data metrics: an endpoint's, or (no endpoint) a batch
    transform's."""
    if endpoint_name is None:
        return BATCH_DATA_METRICS_NAMESPACE, {"MonitoringSchedule": schedule_name}
    return DATA_METRICS_NAMESPACE, {"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name}


def drift_alarms(parent: pulumi.Resource, name: str, settings: MonitoringSettings,
                 endpoint_name: Optional[pulumi.Input[str]], schedule_name: pulumi.Output[str], interval_seconds: int,
                 topic_arn: pulumi.Input[str], tags: dict) -> list[aws.cloudwatch.MetricAlarm]:
    """One alarm per feature on the drift the analyzer publishes after each run (of an endpoint's traffic, or
    without `endpoint_name` of a batch transform's inputs)."""
    namespace, dimensions = data_metrics(endpoint_name, schedule_name)
    alarms = []
    for feature in settings.drift_features:
        alarms.append(aws.cloudwatch.MetricAlarm(
            f"{name}-drift-{feature_token(feature)}",
            alarm_description=f"{name}: baseline drift of feature {feature} above {settings.drift_threshold}",
            namespace=namespace,
            metric_name=drift_metric_name(feature),
            dimensions=dimensions,
            statistic="Maximum",
            # one data point per run: the period is the schedule's interval (CloudWatch allows up to a day)
            period=interval_seconds,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=settings.drift_threshold,
            # no traffic, no run: silence is not drift (failed runs are reported by the events below)
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            tags=tags,
            opts=child(parent),
        ))
    return alarms


def quality_alarm(parent: pulumi.Resource, name: str, quality: ModelQualitySettings,
                  endpoint_name: pulumi.Input[str], schedule_name: pulumi.Output[str], interval_seconds: int,
                  topic_arn: pulumi.Input[str], tags: dict) -> aws.cloudwatch.MetricAlarm:
    """The alarm on the model-quality metric: below the threshold for scores, above it for errors."""
    metric, threshold = quality.alarm_metric, quality.threshold
    scores = metric_alarm_direction(quality.problem_type, metric) == HIGHER_IS_BETTER
    return aws.cloudwatch.MetricAlarm(
        f"{name}-quality-{feature_token(metric)}",
        alarm_description=f"{name}: model quality {metric} {'below' if scores else 'above'} {threshold} "
                          f"({quality.problem_type})",
        namespace=MODEL_METRICS_NAMESPACE,
        metric_name=metric,
        dimensions={"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name},
        # the worst value of the period's run
        statistic="Minimum" if scores else "Maximum",
        period=interval_seconds,
        evaluation_periods=1,
        comparison_operator="LessThanThreshold" if scores else "GreaterThanThreshold",
        threshold=threshold,
        # no ground truth yet, no metric: not a quality problem (failed runs are reported by events)
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=tags,
        opts=child(parent),
    )


OUTCOMES = ("failed", "violations")


def outcome_rule_name(name: str, outcome: str) -> str:
    """The EventBridge rule of a monitoring run's outcome (one of OUTCOMES), auto-named from `<name>-<outcome>`."""
    return f"{name}-{outcome}"


def run_outcome_rules(parent: pulumi.Resource, name: str, schedule_arn: pulumi.Output[str],
                      topic_arn: pulumi.Input[str], tags: dict) -> list[aws.cloudwatch.EventRule]:
    """EventBridge rules for runs that failed and runs that found violations, both to the topic."""
    failed, violations = OUTCOMES
    outcomes = (
        (failed, "a monitoring run failed or was stopped", {"ProcessingJobStatus": ["Failed", "Stopped"]}),
        (violations, "a monitoring run found constraint violations",
         {"ProcessingJobStatus": ["Completed"], "ExitMessage": [{"prefix": "CompletedWithViolations"}]}),
    )
    rules = []
    for suffix, what, detail in outcomes:
        rule = aws.cloudwatch.EventRule(
            outcome_rule_name(name, suffix),
            description=f"{name}: {what}",
            event_pattern=schedule_arn.apply(lambda arn, detail=detail: json.dumps({
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {"MonitoringScheduleArn": [arn], **detail},
            })),
            tags=tags,
            opts=child(parent),
        )
        aws.cloudwatch.EventTarget(f"{name}-{suffix}-notify", rule=rule.name, arn=topic_arn, opts=child(parent))
        rules.append(rule)
    return rules
