"""The execution role of a ModelEndpoint, scoped to exactly what its model needs.

Read the model's artifact (object or prefix, decrypting only through S3), pull its image from its
ECR repository, write its own log group, manage its network interfaces in its VPC, and write
captured data under its own capture prefix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.endpoint_args import EndpointContext, EndpointSettings, ModelArtifact
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements, kms_usage_statement
from emlops.components.images import ECR_IMAGE, repository_arn_output
from emlops.components.network_access import vpc_interface_statements
from emlops.components.outputs import concat
from emlops.components.settings import Governance

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket


def execution_role_name(name: str) -> str:
    """The ServiceRole an endpoint's model runs as: `<endpoint>-execution`."""
    return f"{name}-execution"


def execution_role(parent: pulumi.Resource, name: str, settings: EndpointSettings, context: EndpointContext,
                   capture: Optional["SecureBucket"], kms_key_arn: pulumi.Input[str], capture_prefix: str,
                   governance: Governance, success_topic_arn: Optional[pulumi.Input[str]] = None,
                   ) -> tuple[ServiceRole, list[aws.iam.RolePolicy]]:
    """Create the role and its inline policies; returns both so the Model can wait for the policies."""
    opts = pulumi.ResourceOptions(parent=parent)
    aws_facts = aws_context(parent)
    partition = aws_facts.partition
    via_s3 = aws_facts.service_endpoint("s3")

    role = ServiceRole(execution_role_name(name), ServiceRoleArgs(
        services=["sagemaker.amazonaws.com"],
        description=f"Runs the model of the {name} endpoint",
        permissions_boundary_arn=governance.permissions_boundary_arn,
        tags=dict(governance.tags),
    ), opts=opts)
    artifact = context.artifact
    concerns: dict[str, list[Statement]] = {"read-artifact": artifact_read_statements(artifact, partition, via_s3)}
    pull = image_pull_statements(context.image_uri, artifact, partition)
    if context.challenger is not None:
        concerns["read-challenger"] = artifact_read_statements(context.challenger, partition, via_s3)
        if context.challenger_image_uri is None or context.challenger_image_uri != context.image_uri:
            pull += image_pull_statements(context.challenger_image_uri, context.challenger, partition)
    if pull:
        concerns["pull-image"] = pull
    log_group = aws_facts.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{name}")
    concerns["logs"] = [
        Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
        Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  resources=[concat(log_group, ":log-stream:*")]),
    ]
    if settings.serverless is None:
        concerns["vpc-access"] = vpc_interface_statements(aws_facts, context.placement.vpc_id)
    if capture is not None:
        objects = concat(capture.arn, "/", capture_prefix, "*")
        concerns["write-capture"] = [
            Statement(actions=["s3:AbortMultipartUpload", "s3:PutObject"], resources=[objects]),
            kms_usage_statement(kms_key_arn, encrypt=True, decrypt=True, via_service=via_s3),
        ]
    queue = settings.async_inference if settings.serving == "async" else None
    if queue is not None:
        # requests are read from their prefix; responses and failures written to theirs; both topics published to
        concerns["async-objects"] = context.inference_bucket.access_statements(
            read=[queue.requests_prefix], write=[queue.responses_prefix, queue.failures_prefix])
        topics = [t for t in (success_topic_arn, context.alarm_topic_arn) if t is not None]
        concerns["async-notifications"] = [
            Statement(actions=["sns:Publish"], resources=topics),
            # the topics' keys, whichever they are, only for these topics and only through SNS
            Statement(actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
                      conditions={"StringEquals": {"kms:ViaService": aws_facts.service_endpoint("sns")},
                                  "ArnEquals": {"kms:EncryptionContext:aws:sns:topicArn": topics}}),
        ]
    # One inline policy, a Sid per concern: one resource per model instead of five.
    policies = [role.add_policies("permissions", concerns)]
    return role, policies


def image_pull_statements(image_uri: Optional[pulumi.Input[str]], artifact: ModelArtifact,
                          partition: pulumi.Output[str]) -> list[Statement]:
    """Pull from the ECR repository of `image_uri`, else of the artifact's (a model package's) image; a package's
    image a preview could not resolve is named as it is. None outside ECR."""
    if image_uri is not None:
        image, known = image_uri, True
    else:
        image, known = artifact.image_uri, artifact.known
    if image is None:
        return []
    if not known:
        return ecr_pull_statements([image])
    if isinstance(image, str) and ECR_IMAGE.match(image):
        return ecr_pull_statements([repository_arn_output(image, partition)])
    return []


def artifact_read_statements(artifact: ModelArtifact, partition: pulumi.Output[str],
                             via_s3: pulumi.Output[str]) -> list[Statement]:
    """Read the model's artifact (its object, or its prefix) and decrypt it through S3 only."""
    key_arn = artifact.kms_key_arn
    location = artifact.location
    if location is None:
        # Not resolved before deploy (offline): the grant names the artifact as the preview shows it; its key
        # may be known.
        return [Statement(actions=["s3:GetObject"], resources=[artifact.uri]),
                *([kms_usage_statement(key_arn, encrypt=False, decrypt=True, via_service=via_s3)] if key_arn else [])]
    bucket, key = location
    prefix = key.endswith("/")
    bucket_arn = concat("arn:", partition, ":s3:::", bucket)
    objects = concat(bucket_arn, "/", key, "*" if prefix else "")
    statements = [Statement(actions=["s3:GetObject"], resources=[objects])]
    if prefix:
        statements.append(Statement(actions=["s3:ListBucket"], resources=[bucket_arn],
                                    conditions={"StringLike": {"s3:prefix": [f"{key}*"]}}))
    if key_arn is not None:
        statements.append(kms_usage_statement(key_arn, encrypt=False, decrypt=True, via_service=via_s3))
    else:
        # The artifact's key is not known here (e.g. an MLflow bucket): decrypt only through S3 and
        # only objects of that bucket, whatever key encrypted them.
        statements.append(Statement(
            actions=["kms:Decrypt"], resources=["*"],
            conditions={"StringEquals": {"kms:ViaService": via_s3},
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, concat(bucket_arn, "/*")]}},
        ))
    return statements
