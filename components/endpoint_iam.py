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
from emlops.components.endpoint_args import ModelEndpointArgs, is_unknown, parse_s3_uri
from emlops.components.network_access import vpc_interface_statements
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements, kms_usage_statement
from emlops.components.images import ECR_IMAGE, repository_arn_output

if TYPE_CHECKING:
    from emlops.components.endpoint import ModelEndpoint



def execution_role(parent: "ModelEndpoint", name: str, args: ModelEndpointArgs, kms_key_arn: pulumi.Input[str],
                   capture_prefix: str, tags: dict) -> tuple[ServiceRole, list[aws.iam.RolePolicy]]:
    """Create the role and its inline policies; returns both so the Model can wait for the policies."""
    opts = pulumi.ResourceOptions(parent=parent)
    context = aws_context(parent)
    partition = context.partition
    via_s3 = context.service_endpoint("s3")

    role = ServiceRole(f"{name}-execution", ServiceRoleArgs(
        services=["sagemaker.amazonaws.com"],
        description=f"Runs the model of the {name} endpoint",
        permissions_boundary_arn=args.permissions_boundary_arn,
        tags=tags,
    ), opts=opts)
    concerns: dict[str, list[Statement]] = {}
    artifact = args.model_data_url or args.model_data_prefix or args.package_artifact_uri
    if artifact:
        concerns["read-artifact"] = _artifact_statements(
            artifact, partition, via_s3, args.artifact_kms_key_arn, prefix=artifact.endswith("/"))
    image = args.image_uri or args.package_image_uri or ""
    if ECR_IMAGE.match(image):
        concerns["pull-image"] = ecr_pull_statements([repository_arn_output(image, partition)])
    elif is_unknown(image):  # offline, a package's image stays visibly unknown in the policy too
        concerns["pull-image"] = ecr_pull_statements([image])
    log_group = context.arn("logs", f"log-group:/aws/sagemaker/Endpoints/{name}")
    concerns["logs"] = [
        Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
        Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                  resources=[pulumi.Output.concat(log_group, ":log-stream:*")]),
    ]
    if not args.serverless:
        concerns["vpc-access"] = vpc_interface_statements(context, args.vpc_id)
    if args.data_capture_bucket is not None:
        objects = pulumi.Output.concat(args.data_capture_bucket.arn, "/", capture_prefix, "*")
        concerns["write-capture"] = [
            Statement(actions=["s3:AbortMultipartUpload", "s3:PutObject"], resources=[objects]),
            kms_usage_statement(kms_key_arn, encrypt=True, decrypt=True, via_service=via_s3),
        ]
    # One inline policy, a Sid per concern: one resource per model instead of five.
    policies = [role.add_policies("permissions", concerns)]
    return role, policies


def _artifact_statements(uri: str, partition: pulumi.Output[str], via_s3: pulumi.Output[str],
                         key_arn: Optional[pulumi.Input[str]], prefix: bool) -> list[Statement]:
    if is_unknown(uri):
        # Offline, an unresolved artifact stays visibly unknown in the policy too; its key may be known.
        return [Statement(actions=["s3:GetObject"], resources=[uri]),
                *([kms_usage_statement(key_arn, encrypt=False, decrypt=True, via_service=via_s3)] if key_arn else [])]
    bucket, key = parse_s3_uri(uri)
    bucket_arn = pulumi.Output.concat("arn:", partition, ":s3:::", bucket)
    objects = pulumi.Output.concat(bucket_arn, "/", key, "*" if prefix else "")
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
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")]}},
        ))
    return statements
