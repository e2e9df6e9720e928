"""The parts of a ModelMonitor around its job: the role it runs as, and what it tells people.

The role reads only the capture prefix, the baseline objects and (with model quality) the ground-truth
prefix, writes only its reports, and publishes only the analyzer's metrics. Notifications go to an
encrypted SNS topic.

Model Monitor runs are SageMaker processing jobs; their outcome is not a CloudWatch metric, so failed
runs and runs that found constraint violations are caught by EventBridge rules on the processing
job's state change (filtered by the schedule's ARN). Drift is a metric per feature
(`feature_baseline_drift_<feature>`), so it gets one CloudWatch alarm per named feature; model quality
is a metric per problem type (auc, accuracy, rmse, ...), and the chosen one gets an alarm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import pulumi
import pulumi_aws as aws

from emlops.components.endpoint_args import is_unknown
from emlops.components.aws_context import aws_context
from emlops.components.network_access import vpc_interface_statements
from emlops.components.iam import (
    ServiceRole,
    ServiceRoleArgs,
    Statement,
    ecr_pull_statements,
    kms_usage_statement,
    policy_document,
)
from emlops.components.images import repository_arn_output
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.model_quality import HIGHER_IS_BETTER, metric_alarm_direction
from emlops.components.options import child

if TYPE_CHECKING:
    from emlops.components.monitoring import ModelMonitor, ModelMonitorArgs

# The namespace the built-in analyzer publishes real-time endpoint metrics to (dimensions Endpoint and
# MonitoringSchedule) when its environment sets `publish_cloudwatch_metrics` to Enabled.
DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
# ... and the model-quality metrics, with the same dimensions.
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S*)$")
_EMAIL = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_HTTPS = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$")
# Services that publish to the topic: CloudWatch alarms and EventBridge rules of this account.
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


def parse_s3(uri: str, label: str, *, prefix: bool = False) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; objects need a key, prefixes may be a whole bucket."""
    match = _S3_URI.match(uri)
    if not match or (not prefix and (not match["key"] or match["key"].endswith("/"))):
        kind = "s3://<bucket>[/<prefix>] URI" if prefix else "s3://<bucket>/<key> object URI"
        raise ValueError(f"{label} {uri!r} is not an {kind}")
    return match["bucket"], match["key"]


def subscription_protocol(endpoint: str) -> str:
    """`email` or `https` for a subscriber; ValueError in one line otherwise."""
    if _EMAIL.match(endpoint):
        return "email"
    if _HTTPS.match(endpoint):
        return "https"
    raise ValueError(f"subscription {endpoint!r} must be an e-mail address or an https:// URL")


@dataclass(frozen=True)
class TopicSettings:
    """What `notification_topic` needs (a `ModelMonitorArgs` has the same three fields)."""

    topic_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the topic. Default: a key is created for it."""
    protect: bool = False
    """Protect the topic (and its key) and retain it on delete. Default: false."""
    subscriptions: Sequence[str] = ()
    """E-mail addresses and https:// endpoints subscribed to it. Default: none."""


def notification_topic(parent: pulumi.Resource, name: str, args: "ModelMonitorArgs | TopicSettings",
                       tags: dict, *, purpose: Optional[str] = None) -> pulumi.Output[str]:
    """The created topic's ARN: KMS-encrypted, publishable only by this account's alarms and rules.

    `args` needs only `topic_kms_key_arn`, `protect` and `subscriptions` (the platform's alerts topic
    passes a monitor's args with the stack's subscribers)."""
    key_arn = args.topic_kms_key_arn
    if key_arn is None:
        key_arn = KmsKey(f"{name}-topic-key", KmsKeyArgs(
            description=f"Encrypts the notifications of {purpose or f'the {name} model monitor'}",
            service_principals=list(PUBLISHERS), protect=args.protect, tags=tags,
        ), opts=child(parent)).arn
    topic = aws.sns.Topic(
        f"{name}-topic",
        kms_master_key_id=key_arn,
        tags=tags,
        opts=child(parent, protect=args.protect),
    )
    account_id = aws_context(parent).account_id
    statements = [
        Statement(sid="DenyInsecureTransport", effect="Deny", principals="*", actions=["sns:Publish"],
                  resources=[topic.arn], conditions={"Bool": {"aws:SecureTransport": "false"}}),
        *[Statement(sid=sid, principals={"Service": [service]}, actions=["sns:Publish"], resources=[topic.arn],
                    conditions={"StringEquals": {"aws:SourceAccount": account_id}})
          for sid, service in (("CloudWatchAlarmsOfThisAccount", PUBLISHERS[0]),
                               ("EventBridgeRulesOfThisAccount", PUBLISHERS[1]))],
    ]
    aws.sns.TopicPolicy(f"{name}-topic-policy", arn=topic.arn, policy=policy_document(statements),
                        opts=child(parent))
    for index, endpoint in enumerate(args.subscriptions):
        protocol = subscription_protocol(endpoint)
        aws.sns.TopicSubscription(f"{name}-{protocol}-{index}", topic=topic.arn, protocol=protocol,
                                  endpoint=endpoint, opts=child(parent))
    return topic.arn


def drift_alarms(parent: "ModelMonitor", name: str, args: "ModelMonitorArgs", schedule_name: pulumi.Output[str],
                 topic_arn: pulumi.Input[str], tags: dict) -> list[aws.cloudwatch.MetricAlarm]:
    """One alarm per feature on the drift the analyzer publishes after each run."""
    alarms = []
    for feature in args.drift_features:
        alarms.append(aws.cloudwatch.MetricAlarm(
            f"{name}-drift-{_token(feature)}",
            alarm_description=f"{name}: baseline drift of feature {feature} above {args.drift_threshold}",
            namespace=DATA_METRICS_NAMESPACE,
            metric_name=f"feature_baseline_drift_{feature}",
            dimensions={"Endpoint": args.endpoint_name, "MonitoringSchedule": schedule_name},
            statistic="Maximum",
            # one data point per run: the period is the schedule's interval (CloudWatch allows up to a day)
            period=args.interval_seconds,
            evaluation_periods=1,
            comparison_operator="GreaterThanThreshold",
            threshold=args.drift_threshold,
            # no traffic, no run: silence is not drift (failed runs are reported by the events below)
            treat_missing_data="notBreaching",
            alarm_actions=[topic_arn],
            ok_actions=[topic_arn],
            tags=tags,
            opts=child(parent),
        ))
    return alarms


def quality_alarm(parent: "ModelMonitor", name: str, args: "ModelMonitorArgs", schedule_name: pulumi.Output[str],
                  topic_arn: pulumi.Input[str], tags: dict) -> aws.cloudwatch.MetricAlarm:
    """The alarm on the model-quality metric: below the threshold for scores, above it for errors."""
    metric, threshold = args.model_quality_metric, args.model_quality_threshold
    scores = metric_alarm_direction(args.problem_type, metric) == HIGHER_IS_BETTER
    return aws.cloudwatch.MetricAlarm(
        f"{name}-quality-{_token(metric)}",
        alarm_description=f"{name}: model quality {metric} {'below' if scores else 'above'} {threshold} "
                          f"({args.problem_type})",
        namespace=MODEL_METRICS_NAMESPACE,
        metric_name=metric,
        dimensions={"Endpoint": args.endpoint_name, "MonitoringSchedule": schedule_name},
        # the worst value of the period's run
        statistic="Minimum" if scores else "Maximum",
        period=args.interval_seconds,
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


def run_outcome_rules(parent: "ModelMonitor", name: str, schedule_arn: pulumi.Output[str],
                      topic_arn: pulumi.Input[str], tags: dict) -> list[aws.cloudwatch.EventRule]:
    """EventBridge rules for runs that failed and runs that found violations, both to the topic."""
    outcomes = (
        ("failed", "a monitoring run failed or was stopped", {"ProcessingJobStatus": ["Failed", "Stopped"]}),
        ("violations", "a monitoring run found constraint violations",
         {"ProcessingJobStatus": ["Completed"], "ExitMessage": [{"prefix": "CompletedWithViolations"}]}),
    )
    rules = []
    for suffix, what, detail in outcomes:
        rule = aws.cloudwatch.EventRule(
            f"{name}-{suffix}",
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


def _token(feature: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", feature.lower()).strip("-") or "feature"


def check_unique_tokens(features: Sequence[str]) -> None:
    tokens = [_token(f) for f in features]
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"drift_features {', '.join(features)} collide in resource names; rename one")


# -- the role the jobs run as ----------------------------------------------------------------------

def monitoring_role(parent: "ModelMonitor", name: str, args: "ModelMonitorArgs", prefix: str,
                     image_uri: pulumi.Output[str], volume_key: pulumi.Input[str], output_key: pulumi.Input[str],
                     tags: dict) -> tuple[ServiceRole, list[aws.iam.RolePolicy]]:
    """The role the monitoring jobs run as, and its policies (the job definition waits for them)."""
    context = aws_context(parent)
    partition, via_s3 = context.partition, context.service_endpoint("s3")
    role = ServiceRole(f"{name}-execution", ServiceRoleArgs(
        services=["sagemaker.amazonaws.com"],
        description=f"Runs the {name} model monitor's jobs",
        permissions_boundary_arn=args.permissions_boundary_arn,
        tags=tags,
    ), opts=pulumi.ResourceOptions(parent=parent))

    def bucket_arn(bucket: pulumi.Input[str]) -> pulumi.Output[str]:
        return pulumi.Output.concat("arn:", partition, ":s3:::", bucket)

    capture = pulumi.Output.from_input(args.capture_s3_uri).apply(lambda uri: parse_s3(uri, "capture_s3_uri",
                                                                                       prefix=True))
    capture_bucket = bucket_arn(capture[0])
    capture_key = capture[1].apply(lambda key: key.rstrip("/") + "/" if key else "")
    concerns: dict[str, list[Statement]] = {"read-capture": [
        Statement(actions=["s3:ListBucket"], resources=[capture_bucket],
                  conditions={"StringLike": {"s3:prefix": [pulumi.Output.concat(capture_key, "*")]}}),
        Statement(actions=["s3:GetObject"], resources=[pulumi.Output.concat(capture_bucket, "/", capture_key, "*")]),
        _decrypt_through_s3(args.capture_kms_key_arn, [capture_bucket], via_s3),
    ]}
    baselines = [uri for uri in (args.baseline_statistics_s3_uri, args.baseline_constraints_s3_uri,
                                 args.model_quality_baseline_constraints_s3_uri) if uri]
    unknown = [uri for uri in dict.fromkeys(baselines) if is_unknown(uri)]
    located = [parse_s3(uri, "baseline") for uri in dict.fromkeys(baselines) if not is_unknown(uri)]
    if located or unknown:
        buckets = [bucket_arn(bucket) for bucket in dict.fromkeys(bucket for bucket, _ in located)]
        # a package's drift-check baselines looked up offline stay visibly unknown in the policy too
        objects = [pulumi.Output.concat(bucket_arn(bucket), "/", key) for bucket, key in located] + unknown
        concerns["read-baseline"] = [Statement(actions=["s3:GetObject"], resources=objects)]
        if buckets:
            concerns["read-baseline"].append(_decrypt_through_s3(args.baseline_kms_key_arn, buckets, via_s3))
    if args.model_quality:
        truth_bucket, truth_key = parse_s3(args.ground_truth_s3_uri, "ground_truth_s3_uri", prefix=True)
        truth_key = truth_key.rstrip("/") + "/" if truth_key else ""
        concerns["read-ground-truth"] = [
            Statement(actions=["s3:ListBucket"], resources=[bucket_arn(truth_bucket)],
                      conditions={"StringLike": {"s3:prefix": [f"{truth_key}*"]}}),
            Statement(actions=["s3:GetObject"], resources=[pulumi.Output.concat(bucket_arn(truth_bucket), "/",
                                                                                 truth_key, "*")]),
            _decrypt_through_s3(args.ground_truth_kms_key_arn, [bucket_arn(truth_bucket)], via_s3),
        ]
    concerns["write-reports"] = [
        Statement(actions=["s3:AbortMultipartUpload", "s3:PutObject"],
                  resources=[pulumi.Output.concat(args.reports_bucket.arn, "/", prefix, "*")]),
        kms_usage_statement(output_key, encrypt=True, decrypt=True, via_service=via_s3),
    ]
    concerns["volume-key"] = [
        kms_usage_statement(volume_key, encrypt=True, decrypt=True),
        # the instances' volumes are encrypted by EC2 through a grant for the job's resources
        Statement(actions=["kms:CreateGrant"], resources=[volume_key],
                  conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
    ]
    concerns["pull-image"] = ecr_pull_statements([repository_arn_output(image_uri, partition)])
    log_group = context.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs")
    concerns["logs"] = [
        Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
        Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  resources=[pulumi.Output.concat(log_group, ":log-stream:*")]),
    ]
    concerns["vpc-access"] = vpc_interface_statements(context, args.vpc_id)
    namespaces = [DATA_METRICS_NAMESPACE, MODEL_METRICS_NAMESPACE] if args.model_quality else DATA_METRICS_NAMESPACE
    concerns["metrics"] = [
        # PutMetricData has no resource; the namespace condition keeps it to the analyzer's metrics.
        Statement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                  conditions={"StringEquals": {"cloudwatch:namespace": namespaces}}),
    ]
    # One inline policy, a Sid per concern: one resource per monitor instead of eight.
    policies = [role.add_policies("permissions", concerns)]
    return role, policies


def _decrypt_through_s3(key_arn: Optional[pulumi.Input[str]], bucket_arns: list[pulumi.Output[str]],
                        via_s3: pulumi.Output[str]) -> Statement:
    if key_arn is not None:
        return kms_usage_statement(key_arn, encrypt=False, decrypt=True, via_service=via_s3)
    # The bucket's key is not known here: decrypt only through S3 and only objects of those buckets.
    context = [arn for bucket in bucket_arns for arn in (bucket, pulumi.Output.concat(bucket, "/*"))]
    return Statement(actions=["kms:Decrypt"], resources=["*"], conditions={
        "StringEquals": {"kms:ViaService": via_s3},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": context}})

