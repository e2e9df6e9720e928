"""BatchTransform: a SageMaker pipeline that scores a prefix of data with a model, on a schedule or when data lands.

The model (a model package, or model data with an image) becomes a SageMaker Model in private subnets with
network isolation, run by its own execution role, which reads only the input prefix and the model, writes only
the output prefix (and, monitored, its capture prefix), and uses only the key. The pipeline's definition is
written by the SageMaker SDK (`components/batch_transform_definition.py`): one transform job, its results and
volumes encrypted with the key. A second role runs the pipeline and may only start, watch and stop its transform
jobs; neither role may pass a role (a transform job runs as its model's role, which the deploy passes when it
creates the model). EventBridge starts the pipeline on a schedule and/or when an object lands under the input
prefix, and tells the alerts topic about every run that failed. With a baseline, a `ModelMonitor` compares the
inputs each run captured with it.

Its settings (`BatchTransformSettings`) and context (`BatchTransformContext`) are in batch_transform_args.py.
"""

from __future__ import annotations

from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.resources_operations import EVENT_RULE
from emlops.catalog.resources_sagemaker import MODEL, PIPELINE
from emlops.components import monitoring
from emlops.components.aws_context import AwsContext, aws_context
from emlops.components.batch_transform_args import (CAPTURE_FOLDER, BatchTransformContext, BatchTransformSettings,
                                                    InputMonitoringSettings, expected_run)
from emlops.components.containers import model_container
from emlops.components.endpoint_iam import artifact_read_statements, image_pull_statements
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, kms_usage_statement, role_names
from emlops.components.monitoring import ModelMonitor, MonitorContext, MonitoringSettings
from emlops.components.naming import DerivedName, auto_named, given
from emlops.components.network_access import https_only_security_group, vpc_interface_statements
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.pipeline_triggers import FAILED, events_role_name, notify_failures, start_rules
from emlops.components.pipeline_triggers import starts as trigger_starts
from emlops.components.settings import Placement

__all__ = ["BatchTransform", "BatchTransformContext", "BatchTransformSettings", "InputMonitoringSettings"]

def execution_role_name(name: str) -> str:
    """The ServiceRole the model (and so the transform job) runs as."""
    return f"{name}-execution"


def runner_role_name(name: str) -> str:
    """The ServiceRole the pipeline runs as."""
    return f"{name}-runner"


def monitor_name(name: str) -> str:
    return f"{name}-monitor"


def derived_names(name: str, settings: BatchTransformSettings, pipeline: str) -> list[DerivedName]:
    """The physical names a BatchTransform called `name` gives its children (naming.py): the pipeline, the model,
    the roles, the EventBridge rules and the monitor's."""
    names = [given(PIPELINE.token, pipeline), auto_named(MODEL.token, f"{name}-model"),
             *role_names(execution_role_name(name)), *role_names(runner_role_name(name)),
             auto_named(EVENT_RULE.token, f"{name}-{FAILED}")]
    starts = trigger_starts(settings.schedule, settings.start_on_new_data)
    if starts:
        names += [*role_names(events_role_name(name)), *[auto_named(EVENT_RULE.token, f"{name}-{s}") for s in starts]]
    if settings.monitoring is not None:
        names += monitoring.derived_names(monitor_name(name), _monitor_settings(settings.monitoring))
    return names


def _monitor_settings(inputs: InputMonitoringSettings) -> MonitoringSettings:
    """The endpoint monitor's settings for the inputs' monitoring (the schedule made explicit)."""
    return MonitoringSettings(**{**dict(inputs), "schedule": inputs.schedule_expression(production=False)})


class BatchTransform(pulumi.ComponentResource):
    """A batch transform pipeline, its model and roles, what starts it, who hears of failures, its monitor."""

    model: aws.sagemaker.Model
    pipeline: aws.sagemaker.Pipeline
    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]
    pipeline_definition: pulumi.Output[str]
    model_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    output_s3_uri: pulumi.Output[str]
    monitor: Optional[ModelMonitor]

    def __init__(self, name: str, settings: BatchTransformSettings, context: BatchTransformContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        context.check()
        super().__init__(type_token("BatchTransform"), name, None, opts)
        governance = context.governance.with_tags({"batch-transform": name})
        tags = dict(governance.tags)
        aws_facts = aws_context(self)
        key_arn = context.kms_key_arn if context.kms_key_arn is not None else context.output_bucket.kms_key_arn
        placement = context.placement
        security_group_ids = list(placement.security_group_ids) or [
            https_only_security_group(self, name, placement.vpc_id, "Batch transform", tags).id]
        inputs, outputs = context.input_bucket, context.output_bucket
        capture_prefix = f"{CAPTURE_FOLDER}{name}/" if settings.monitoring is not None else None

        role = ServiceRole(execution_role_name(name), ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"], description=f"Runs the model of the {name} batch transform",
            permissions_boundary_arn=governance.permissions_boundary_arn, tags=tags), opts=child(self))
        # one document, named after the role alone: the prefixes' names would make the policies' names too long
        concerns = {"read-input": inputs.access_statements(read=[settings.input_prefix]),
                    "write-output": outputs.access_statements(write=[settings.output_prefix])}
        if capture_prefix is not None:
            concerns["write-capture"] = outputs.access_statements(write=[capture_prefix])
        policies = [role.add_policies("permissions", {**concerns, **self._permissions(context, aws_facts, key_arn)})]
        self.model = aws.sagemaker.Model(
            f"{name}-model", execution_role_arn=role.arn,
            primary_container=model_container(context.artifact, context.image_uri, {}),
            enable_network_isolation=True,
            vpc_config={"subnets": list(placement.subnet_ids), "security_group_ids": security_group_ids},
            tags=tags,
            # SageMaker checks the role's access when the model is created: wait for its policies.
            opts=child(self, depends_on=policies))

        runner = ServiceRole(runner_role_name(name), ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"Runs the {context.pipeline_name} pipeline: starts, watches and stops its transform jobs",
            permissions_boundary_arn=governance.permissions_boundary_arn, path=governance.role_path, tags=tags),
            opts=child(self))
        run_policy = runner.add_policy("run-transform", [Statement(
            # SageMaker names a pipeline's jobs `pipelines-<execution id>-<step>-...`
            actions=["sagemaker:AddTags", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                     "sagemaker:StopTransformJob"], resources=[aws_facts.arn("sagemaker", "transform-job/pipelines-*")])])

        self.output_s3_uri = concat("s3://", outputs.bucket_name, "/", settings.output_prefix)
        input_uri = concat("s3://", inputs.bucket_name, "/", settings.input_prefix)
        capture_uri = (concat("s3://", outputs.bucket_name, "/", capture_prefix.rstrip("/"))
                       if capture_prefix is not None else None)
        self.pipeline_definition = self._definition(settings, context, aws_facts.region, key_arn, input_uri,
                                                    capture_uri)
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline", pipeline_name=context.pipeline_name, pipeline_display_name=context.pipeline_name,
            pipeline_description=f"Scores the objects under {settings.input_prefix} with {name}'s model into "
                                 f"{settings.output_prefix}",
            pipeline_definition=self.pipeline_definition, role_arn=runner.arn, tags={**tags, **expected_run(settings)},
            # executions need the runner's policy; SageMaker does not check it at creation
            opts=child(self, depends_on=[run_policy]))
        start_rules(self, name, self.pipeline, context.pipeline_name, governance, settings.schedule,
                    settings.start_on_new_data, inputs.bucket_name, settings.input_prefix, "score")
        notify_failures(self, name, self.pipeline, context.alerts_topic_arn, tags, "a batch transform run failed")

        self.monitor = None
        if settings.monitoring is not None:
            self.monitor = ModelMonitor(monitor_name(name), _monitor_settings(settings.monitoring), MonitorContext(
                capture_s3_uri=capture_uri, reports_bucket=outputs,
                placement=Placement(placement.vpc_id, placement.subnet_ids, security_group_ids),
                batch_input_format=settings.monitored_format, capture_kms_key_arn=key_arn,
                volume_kms_key_arn=key_arn, output_kms_key_arn=key_arn, alarm_topic_arn=context.alerts_topic_arn,
                region=context.region, governance=governance), opts=child(self))

        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.arn
        self.model_name = self.model.name
        self.role_arn = role.arn
        self.register_outputs({"pipelineName": self.pipeline_name, "pipelineArn": self.pipeline_arn,
                               "modelName": self.model_name, "roleArn": self.role_arn,
                               "outputS3Uri": self.output_s3_uri})

    def _permissions(self, context: BatchTransformContext, aws_facts: AwsContext,
                     key_arn: pulumi.Input[str]) -> dict[str, list[Statement]]:
        """What the model's role needs besides its data: the model, its image, the key, logs and the VPC."""
        partition, via_s3 = aws_facts.partition, aws_facts.service_endpoint("s3")
        concerns = {"read-artifact": artifact_read_statements(context.artifact, partition, via_s3)}
        pull = image_pull_statements(context.image_uri, context.artifact, partition)
        if pull:
            concerns["pull-image"] = pull
        concerns["key"] = [
            # results and captured inputs through S3, the instances' volumes through EC2's grant for the job
            kms_usage_statement(key_arn, encrypt=True, decrypt=True),
            Statement(actions=["kms:CreateGrant"], resources=[key_arn],
                      conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}})]
        log_group = aws_facts.arn("logs", "log-group:/aws/sagemaker/TransformJobs")
        concerns["logs"] = [
            Statement(actions=["logs:CreateLogGroup"], resources=[log_group]),
            Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                      resources=[concat(log_group, ":log-stream:*")])]
        concerns["vpc-access"] = vpc_interface_statements(aws_facts, context.placement.vpc_id)
        return concerns

    def _definition(self, settings: BatchTransformSettings, context: BatchTransformContext, region: pulumi.Input[str],
                    key_arn: pulumi.Input[str], input_uri: pulumi.Input[str],
                    capture_uri: Optional[pulumi.Input[str]]) -> pulumi.Output[str]:
        from emlops.components.batch_transform_definition import TransformSpec, definition

        def build(values: list) -> str:
            region_name, model_name, key, input_s3_uri, output_s3_uri, capture_s3_uri = values
            return definition(TransformSpec(
                region=region_name, model_name=model_name, input_s3_uri=input_s3_uri, output_s3_uri=output_s3_uri,
                kms_key_arn=key, instance_type=settings.instance_type, instance_count=settings.instance_count,
                max_payload_mb=settings.max_payload_mb, max_concurrent_transforms=settings.max_concurrent_transforms,
                batch_strategy=settings.batch_strategy if settings.split_type != "None" else None,
                split_type=settings.split_type, content_type=settings.content_type, accept=settings.accept,
                assemble_with=settings.assemble_with, environment=tuple(sorted(settings.environment.items())),
                capture_s3_uri=capture_s3_uri), context.pipeline_name)

        return pulumi.Output.all(region, self.model.name, key_arn, input_uri, self.output_s3_uri,
                                 capture_uri).apply(build)
