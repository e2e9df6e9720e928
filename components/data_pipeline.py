"""DataPipeline: a SageMaker pipeline that takes one dataset from its landing prefix into a feature group.

Each run claims what landed under the landing prefix, validates it against declared constraints (SageMaker Model
Monitor's analyzer), moves a batch that fails to quarantine and fails the run, transforms a valid batch with the
team's processing image and ingests the records into the feature group (`components/data_pipeline_definition.py`;
the claim, gate and ingest steps are one Lambda function, `components/data_pipeline_steps.py`). EventBridge starts
it when an object lands and/or on a schedule, and tells the alerts topic about every run that failed.

Two roles: the pipeline's (it runs the processing jobs as itself and invokes the function) reads the batch and the
constraints, writes the reports and the transformed features, pulls the analyzer's and the team's images; the
function's moves objects only under the landing prefix and `data-pipelines/<name>/` and writes records only to its
feature group. Both in the private subnets, with the datasets key through S3 only. The function logs (JSON) to a log
group of its own, `/emlops/data-pipelines/<name>`, with a retention and a KMS key of its own that CloudWatch Logs may
use for that group only; its role writes to that group only and creates no log group.

Its settings (`DataPipelineSettings`) and context (`DataPipelineContext`) are in data_pipeline_args.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.resources_operations import EVENT_RULE, LAMBDA_FUNCTION
from emlops.catalog.resources_sagemaker import PIPELINE
from emlops.components import data_pipeline_steps
from emlops.components.aws_context import AwsContext, aws_context
from emlops.components.data_pipeline_args import (PIPELINES_FOLDER, DataPipelineContext, DataPipelineSettings,
                                                  run_folder)
from emlops.components.iam import (ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements, kms_usage_statement,
                                   role_names)
from emlops.components.images import monitor_image_uri, repository_arn_output
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.locations import parse_s3
from emlops.components.naming import DerivedName, auto_named, given
from emlops.components.network_access import https_only_security_group, vpc_interface_statements
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.pipeline_triggers import FAILED, events_role_name, notify_failures, start_rules, starts

__all__ = ["DataPipeline", "DataPipelineContext", "DataPipelineSettings"]

STEPS_CODE = Path(data_pipeline_steps.__file__)
STEPS_HANDLER = f"{STEPS_CODE.stem}.handler"
STEPS_RUNTIME = "python3.12"
# A pipeline's Lambda step waits at most 10 minutes for its function.
STEPS_TIMEOUT_SECONDS = 600
PIPELINES_LOG_GROUPS = "/emlops/data-pipelines/"


def log_group_name(name: str) -> str:
    """`/emlops/data-pipelines/<name>`: the log group of the function of the DataPipeline called `name`."""
    return f"{PIPELINES_LOG_GROUPS}{name}"


def execution_role_name(name: str) -> str:
    return f"{name}-execution"


def steps_role_name(name: str) -> str:
    return f"{name}-steps"


def derived_names(name: str, settings: DataPipelineSettings, pipeline: str) -> list[DerivedName]:
    """The physical names a DataPipeline called `name` gives its children (naming.py)."""
    return [given(PIPELINE.token, pipeline), auto_named(LAMBDA_FUNCTION.token, f"{name}-steps"),
            *role_names(execution_role_name(name)), *role_names(steps_role_name(name)),
            *role_names(events_role_name(name)), auto_named(EVENT_RULE.token, f"{name}-{FAILED}"),
            *[auto_named(EVENT_RULE.token, f"{name}-{start}") for start in starts(settings.schedule, settings.start_on_new_data)]]


class DataPipeline(pulumi.ComponentResource):
    """A dataset's validation, quarantine, transformation and ingestion pipeline, its function, roles and triggers."""

    pipeline: aws.sagemaker.Pipeline
    function: aws.lambda_.Function
    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]
    pipeline_definition: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    landing_uri: pulumi.Output[str]

    def __init__(self, name: str, settings: DataPipelineSettings, context: DataPipelineContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        context.check()
        parse_s3(settings.validation.constraints_s3_uri, "validation.constraints_s3_uri")
        super().__init__(type_token("DataPipeline"), name, None, opts)
        governance = context.governance.with_tags({"data-pipeline": name})
        tags = dict(governance.tags)
        aws_facts = aws_context(self)
        bucket, key_arn, placement = context.datasets_bucket, context.datasets_bucket.kms_key_arn, context.placement
        security_group_ids = list(placement.security_group_ids) or [
            https_only_security_group(self, name, placement.vpc_id, "Data pipeline", tags,
                                      egress_to=context.endpoint_egress).id]
        runs = f"{PIPELINES_FOLDER}{settings.name}/"
        self.landing_uri = concat("s3://", bucket.bucket_name, "/", settings.landing_prefix)
        analyzer_image = pulumi.Output.from_input(context.region or aws_facts.region).apply(monitor_image_uri)

        log_group = self._log_group(name, settings, context, aws_facts, tags)
        steps_role = ServiceRole(steps_role_name(name), ServiceRoleArgs(
            services=["lambda.amazonaws.com"], description=f"Claims, quarantines and ingests the batches of the "
            f"{context.pipeline_name} pipeline", permissions_boundary_arn=governance.permissions_boundary_arn,
            tags=tags), opts=child(self))
        steps_policy = steps_role.add_policies("permissions", self._steps_permissions(
            settings, context, aws_facts, runs, placement.vpc_id, log_group.arn))
        self.function = aws.lambda_.Function(
            f"{name}-steps", description=f"Claim, gate and ingest steps of the {context.pipeline_name} pipeline",
            runtime=STEPS_RUNTIME, handler=STEPS_HANDLER, role=steps_role.arn, timeout=STEPS_TIMEOUT_SECONDS,
            memory_size=1024,
            code=pulumi.AssetArchive({STEPS_CODE.name: pulumi.StringAsset(STEPS_CODE.read_text())}),
            vpc_config={"subnet_ids": list(placement.subnet_ids), "security_group_ids": security_group_ids},
            logging_config={"log_format": "JSON", "log_group": log_group.name},
            tags=tags,
            # Lambda checks the role may manage network interfaces when the function is created; the group exists
            # first so that Lambda never creates one of its own (unencrypted, kept forever)
            opts=child(self, depends_on=[steps_policy, log_group]))

        role = ServiceRole(execution_role_name(name), ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"], description=f"Runs the {context.pipeline_name} pipeline and its "
            "processing jobs", permissions_boundary_arn=governance.permissions_boundary_arn, tags=tags),
            opts=child(self))
        policy = role.add_policies("permissions", self._pipeline_permissions(
            role, settings, context, aws_facts, runs, analyzer_image))

        from emlops.components.data_pipeline_definition import DataPipelineSpec, definition

        validation, transformation = settings.validation, settings.transformation

        def build(values: list) -> str:
            region, role_arn, function_arn, key, landing, datasets, group, image, subnets, groups = values
            return definition(DataPipelineSpec(
                region=region, role_arn=role_arn, function_arn=function_arn, kms_key_arn=key, landing_uri=landing,
                runs_uri=f"s3://{datasets}/{runs}", feature_group_name=group,
                constraints_s3_uri=validation.constraints_s3_uri, dataset_format=validation.dataset_format,
                analyzer_image_uri=image, validation_instance_type=validation.instance_type,
                validation_volume_size_gb=validation.volume_size_gb,
                validation_max_runtime_seconds=validation.max_runtime_minutes * 60,
                transformation_image_uri=transformation.image, transformation_command=tuple(transformation.command),
                transformation_instance_type=transformation.instance_type,
                transformation_volume_size_gb=transformation.volume_size_gb,
                transformation_max_runtime_seconds=transformation.max_runtime_minutes * 60,
                transformation_network_isolation=transformation.network_isolation, quarantine=settings.quarantine,
                subnet_ids=tuple(subnets), security_group_ids=tuple(groups)), context.pipeline_name)

        self.pipeline_definition = pulumi.Output.all(
            aws_facts.region, role.arn, self.function.arn, key_arn, self.landing_uri, bucket.bucket_name,
            context.feature_group_name, analyzer_image, pulumi.Output.all(*placement.subnet_ids),
            pulumi.Output.all(*security_group_ids)).apply(build)
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline", pipeline_name=context.pipeline_name, pipeline_display_name=context.pipeline_name,
            pipeline_description=f"Validates what lands under {settings.landing_prefix} and ingests it into the "
                                 f"{settings.feature_group} feature group",
            pipeline_definition=self.pipeline_definition, role_arn=role.arn, tags=tags,
            # executions need the role's policy; SageMaker does not check it at creation
            opts=child(self, depends_on=[policy]))
        start_rules(self, name, self.pipeline, context.pipeline_name, governance, settings.schedule,
                    settings.start_on_new_data, bucket.bucket_name, settings.landing_prefix, "ingest")
        # every failed run (a quarantined batch among them) is announced on the alerts topic
        notify_failures(self, name, self.pipeline, context.alerts_topic_arn, tags,
                        "a data pipeline run failed (or quarantined its batch)")

        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.arn
        self.role_arn = role.arn
        self.register_outputs({"pipelineName": self.pipeline_name, "pipelineArn": self.pipeline_arn,
                               "roleArn": self.role_arn, "functionArn": self.function.arn,
                               "landingUri": self.landing_uri})

    def _log_group(self, name: str, settings: DataPipelineSettings, context: DataPipelineContext,
                   aws_facts: AwsContext, tags: dict) -> aws.cloudwatch.LogGroup:
        """The function's log group, with its retention and a key of its own that CloudWatch Logs may use for this
        group only (the key policy names the group before it exists)."""
        group_name = log_group_name(name)
        protect = context.governance.protect
        key = KmsKey(f"{name}-logs", KmsKeyArgs(
            description=f"Encrypts the logs of the steps of the {context.pipeline_name} pipeline",
            settings=context.kms, log_group_arns=[aws_facts.arn("logs", f"log-group:{group_name}")],
            protect=protect, tags=tags), opts=child(self))
        return aws.cloudwatch.LogGroup(
            f"{name}-logs", name=group_name, retention_in_days=settings.log_retention_days, kms_key_id=key.arn,
            tags=tags, opts=child(self, protect=protect))

    def _steps_permissions(self, settings: DataPipelineSettings, context: DataPipelineContext, aws_facts: AwsContext,
                           runs: str, vpc_id: pulumi.Input[str],
                           log_group_arn: pulumi.Input[str]) -> dict[str, list[Statement]]:
        """The function moves objects of the landing prefix and its run folders, reads the reports and the
        transformed features, and writes records to its feature group."""
        bucket = context.datasets_bucket
        moved = [settings.landing_prefix, run_folder(settings.name, "batches")]
        concerns = {
            # a run claims each landed object version with a marker under claims/ (a conditional write)
            "move-batches": [*bucket.access_statements(read=moved, write=[
                run_folder(settings.name, "batches"), run_folder(settings.name, "quarantine"),
                run_folder(settings.name, "claims")]),
                Statement(actions=["s3:DeleteObject"], resources=[concat(bucket.arn, "/", prefix, "*")
                                                                   for prefix in moved])],
            "read-results": bucket.access_statements(read=[run_folder(settings.name, "reports"),
                                                           run_folder(settings.name, "transformed")]),
            "write-records": [Statement(actions=["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
                                        resources=[context.feature_group_arn])],
        }
        if context.feature_store_key_arn is not None:
            # PutRecord's callers need the online store's key (SageMaker documents no kms:ViaService for it)
            concerns["write-records"].append(kms_usage_statement(context.feature_store_key_arn, encrypt=False,
                                                                 decrypt=True))
        # its own group only: no logs:CreateLogGroup, so Lambda cannot fall back to a group of its own making
        concerns["logs"] = [Statement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                      resources=[log_group_arn, concat(log_group_arn, ":log-stream:*")])]
        vpc = vpc_interface_statements(aws_facts, vpc_id)
        concerns["vpc-access"] = [*vpc, Statement(
            actions=["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"], resources=["*"],
            conditions=vpc[1].conditions)]
        return concerns

    def _pipeline_permissions(self, role: ServiceRole, settings: DataPipelineSettings, context: DataPipelineContext,
                              aws_facts: AwsContext, runs: str,
                              analyzer_image: pulumi.Output[str]) -> dict[str, list[Statement]]:
        """The pipeline invokes its function and runs its processing jobs, which read the batch and the constraints
        and write the reports and transformed features."""
        bucket, partition = context.datasets_bucket, aws_facts.partition
        constraints_bucket, constraints_key = parse_s3(settings.validation.constraints_s3_uri,
                                                       "validation.constraints_s3_uri")
        processing_jobs = aws_facts.arn("sagemaker", "processing-job/pipelines-*")
        log_group = aws_facts.arn("logs", "log-group:/aws/sagemaker/ProcessingJobs")
        return {
            "data": [*bucket.access_statements(read=[run_folder(settings.name, "batches")], write=[
                run_folder(settings.name, "reports"), run_folder(settings.name, "transformed")]),
                Statement(actions=["s3:GetObject"], resources=[
                    concat("arn:", partition, f":s3:::{constraints_bucket}/{constraints_key}")])],
            "key": [kms_usage_statement(bucket.kms_key_arn, encrypt=True, decrypt=True,
                                        via_service=[aws_facts.service_endpoint("s3"),
                                                     aws_facts.service_endpoint("sagemaker")]),
                    # the jobs' volumes, through EC2's grant for the job
                    Statement(actions=["kms:CreateGrant"], resources=[bucket.kms_key_arn],
                              conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}})],
            "images": ecr_pull_statements([repository_arn_output(analyzer_image, partition),
                                           repository_arn_output(settings.transformation.image, partition)]),
            "steps": [Statement(actions=["lambda:InvokeFunction"], resources=[self.function.arn]),
                      Statement(actions=["sagemaker:AddTags", "sagemaker:CreateProcessingJob",
                                         "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"],
                                resources=[processing_jobs]),
                      # the pipeline runs its jobs as this role, and passes it to SageMaker only
                      Statement(actions=["iam:PassRole"], resources=[role.arn],
                                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})],
            "logs": [Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
                     Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                               resources=[concat(log_group, ":log-stream:*")])],
            "vpc-access": vpc_interface_statements(aws_facts, context.placement.vpc_id),
        }
