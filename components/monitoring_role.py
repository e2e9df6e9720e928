"""The role a ModelMonitor's jobs run as.

It reads only the capture prefix, the baseline objects and (with model quality) the ground-truth prefix,
writes only its reports, uses its keys through S3 (and EC2's grant for the volumes), pulls the analyzer
image, writes SageMaker's processing-job logs, manages network interfaces in its VPC, and publishes only
the analyzer's metrics.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.clarify_args import BIAS_NAMESPACE, EXPLAINABILITY_NAMESPACE
from emlops.components.clarify_monitoring import clarify_statements
from emlops.components.iam import (ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements, kms_usage_statement,
                                   prefix_read_statements)
from emlops.components.images import repository_arn_output
from emlops.components.locations import parse_s3
from emlops.components.monitoring_alarms import MODEL_METRICS_NAMESPACE, data_metrics
from emlops.components.monitoring_args import MonitorContext, MonitoringSettings
from emlops.components.network_access import vpc_interface_statements
from emlops.components.outputs import concat


def monitoring_role_name(name: str) -> str:
    """The ServiceRole a monitor's jobs run as: `<monitor>-execution`."""
    return f"{name}-execution"


def monitoring_role(parent: pulumi.Resource, name: str, settings: MonitoringSettings, context: MonitorContext,
                    prefix: str, image_uri: pulumi.Output[str], volume_key: pulumi.Input[str],
                    output_key: pulumi.Input[str], tags: dict, clarify_image_uri: Optional[pulumi.Output[str]] = None
                    ) -> tuple[ServiceRole, list[aws.iam.RolePolicy]]:
    """The role the monitoring jobs run as, and its policies (the job definitions wait for them); with Clarify
    monitors (`clarify_image_uri`), what they read and run too (clarify_monitoring.py)."""
    aws_facts = aws_context(parent)
    partition, via_s3 = aws_facts.partition, aws_facts.service_endpoint("s3")
    role = ServiceRole(monitoring_role_name(name), ServiceRoleArgs(
        services=["sagemaker.amazonaws.com"],
        description=f"Runs the {name} model monitor's jobs",
        permissions_boundary_arn=context.governance.permissions_boundary_arn,
        tags=tags,
    ), opts=pulumi.ResourceOptions(parent=parent))

    def bucket_arn(bucket: pulumi.Input[str]) -> pulumi.Output[str]:
        return concat("arn:", partition, ":s3:::", bucket)

    capture = pulumi.Output.from_input(context.capture_s3_uri).apply(lambda uri: parse_s3(uri, "capture_s3_uri",
                                                                                       prefix=True))
    capture_bucket = bucket_arn(capture[0])
    capture_key = capture[1].apply(lambda key: key.rstrip("/") + "/" if key else "")
    concerns: dict[str, list[Statement]] = {"read-capture": [
        Statement(actions=["s3:ListBucket"], resources=[capture_bucket],
                  conditions={"StringLike": {"s3:prefix": [concat(capture_key, "*")]}}),
        Statement(actions=["s3:GetObject"], resources=[concat(capture_bucket, "/", capture_key, "*")]),
        _decrypt_through_s3(context.capture_kms_key_arn, [capture_bucket], via_s3),
    ]}
    quality = settings.model_quality
    baseline = context.baseline(settings)
    known: list[str] = []
    unresolved: list[pulumi.Input[str]] = []  # a package's baselines the offline preview could not look up
    if baseline is not None:
        (known if baseline.known else unresolved).extend([baseline.statistics_s3_uri, baseline.constraints_s3_uri])
    if quality is not None and quality.baseline_constraints_s3_uri:
        known.append(quality.baseline_constraints_s3_uri)
    located = [parse_s3(uri, "baseline") for uri in dict.fromkeys(known)]
    if located or unresolved:
        buckets = [bucket_arn(bucket) for bucket in dict.fromkeys(bucket for bucket, _ in located)]
        # unresolved baselines are named as the preview shows them
        objects = [concat(bucket_arn(bucket), "/", key) for bucket, key in located] + list(
            dict.fromkeys(unresolved))
        concerns["read-baseline"] = [Statement(actions=["s3:GetObject"], resources=objects)]
        if buckets:
            concerns["read-baseline"].append(_decrypt_through_s3(context.baseline_kms_key_arn, buckets, via_s3))
    if quality is not None:
        truth_bucket, truth_key = parse_s3(quality.ground_truth_s3_uri, "ground_truth_s3_uri", prefix=True)
        truth_key = truth_key.rstrip("/") + "/" if truth_key else ""
        concerns["read-ground-truth"] = [
            *prefix_read_statements(bucket_arn(truth_bucket), truth_key),
            _decrypt_through_s3(context.ground_truth_kms_key_arn, [bucket_arn(truth_bucket)], via_s3),
        ]
    concerns["write-reports"] = [
        Statement(actions=["s3:AbortMultipartUpload", "s3:PutObject"],
                  resources=[concat(context.reports_bucket.arn, "/", prefix, "*")]),
        kms_usage_statement(output_key, encrypt=True, decrypt=True, via_service=via_s3),
    ]
    concerns["volume-key"] = [
        kms_usage_statement(volume_key, encrypt=True, decrypt=True),
        # the instances' volumes are encrypted by EC2 through a grant for the job's resources
        Statement(actions=["kms:CreateGrant"], resources=[volume_key],
                  conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
    ]
    images = [image_uri] + ([clarify_image_uri] if clarify_image_uri is not None else [])
    concerns["pull-image"] = ecr_pull_statements([repository_arn_output(image, partition) for image in images])
    log_group = aws_facts.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs")
    concerns["logs"] = [
        Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
        Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  resources=[concat(log_group, ":log-stream:*")]),
    ]
    concerns["vpc-access"] = vpc_interface_statements(aws_facts, context.placement.vpc_id)
    data_namespace = data_metrics(context.endpoint_name, "")[0]
    namespaces = [data_namespace, *([MODEL_METRICS_NAMESPACE] if quality else []),
                  *([BIAS_NAMESPACE] if settings.bias else []),
                  *([EXPLAINABILITY_NAMESPACE] if settings.explainability else [])]
    namespaces = namespaces[0] if len(namespaces) == 1 else namespaces
    concerns["metrics"] = [
        # PutMetricData has no resource; the namespace condition keeps it to the analyzer's metrics.
        Statement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                  conditions={"StringEquals": {"cloudwatch:namespace": namespaces}}),
    ]
    if clarify_image_uri is not None:
        concerns.update(clarify_statements(
            aws_facts, settings.bias, settings.explainability, context.reports_bucket.arn, prefix, context.model_name,
            bucket_arn, via_s3, lambda buckets: _decrypt_through_s3(context.baseline_kms_key_arn, buckets, via_s3)))
    # One inline policy, a Sid per concern: one resource per monitor instead of eight.
    policies = [role.add_policies("permissions", concerns)]
    return role, policies


def _decrypt_through_s3(key_arn: Optional[pulumi.Input[str]], bucket_arns: list[pulumi.Output[str]],
                        via_s3: pulumi.Output[str]) -> Statement:
    if key_arn is not None:
        return kms_usage_statement(key_arn, encrypt=False, decrypt=True, via_service=via_s3)
    # The bucket's key is not known here: decrypt only through S3 and only objects of those buckets.
    context = [arn for bucket in bucket_arns for arn in (bucket, concat(bucket, "/*"))]
    return Statement(actions=["kms:Decrypt"], resources=["*"], conditions={
        "StringEquals": {"kms:ViaService": via_s3},
        "StringLike": {"kms:EncryptionContext:aws:s3:arn": context}})

