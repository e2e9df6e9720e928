"""RetrainingPipeline: a SageMaker pipeline that retrains a model and registers it for approval.

Its settings (`RetrainingSettings`) and context (`RetrainingContext`) are in retraining_args.py; the
pipeline's definition is written by the SageMaker SDK v3 (`components/retraining_definition.py`):
prepare -> train -> evaluate -> condition on a metric -> register a model package in the model's
group as `PendingManualApproval`, with the data-quality baseline as its drift-check baselines.
EventBridge starts it when the model's monitoring schedule finds constraint violations and,
optionally, on a schedule; a package of the group being approved is announced on an SNS topic
(approval feeds the deploy). The pipeline is named `<environment>-<model>-retraining`, the name
`emlops retrain` starts.
"""

from __future__ import annotations

import json
from typing import Optional

import pulumi
import pulumi_aws as aws

from emlops.catalog.resources_operations import EVENT_RULE
from emlops.catalog.resources_sagemaker import PIPELINE
from emlops.components.alerts import announce_approvals, approvals_rule_name
from emlops.components.aws_context import aws_context
from emlops.components.iam import (PENDING_APPROVAL_ONLY, ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements,
                                   kms_usage_statement, role_names)
from emlops.components.images import repository_arn_output
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.locations import parse_s3
from emlops.components.naming import DerivedName, auto_named, given
from emlops.components.network_access import https_only_security_group, vpc_interface_statements
from emlops.components.options import child, type_token
from emlops.components.outputs import concat
from emlops.components.retraining_args import RetrainingContext, RetrainingSettings

__all__ = ["RetrainingContext", "RetrainingPipeline", "RetrainingSettings"]

ON_VIOLATIONS, ON_SCHEDULE = "on-violations", "schedule"


def execution_role_name(name: str) -> str:
    return f"{name}-execution"


def events_role_name(name: str) -> str:
    return f"{name}-events"


def start_rule_name(name: str, trigger: str) -> str:
    """The EventBridge rule that starts the pipeline on `trigger` (ON_VIOLATIONS or ON_SCHEDULE)."""
    return f"{name}-{trigger}"


def derived_names(name: str, settings: RetrainingSettings, pipeline: str, *, monitored: bool = True,
                  announces: bool = False) -> list[DerivedName]:
    """The physical names a RetrainingPipeline called `name` gives its children (naming.py): the pipeline, its
    roles and the EventBridge rules that start it (`monitored`: on violations) or announce approvals."""
    triggers = [t for t, on in ((ON_VIOLATIONS, monitored), (ON_SCHEDULE, settings.schedule is not None)) if on]
    names = [given(PIPELINE.token, pipeline), *role_names(execution_role_name(name)),
             *[auto_named(EVENT_RULE.token, start_rule_name(name, trigger)) for trigger in triggers]]
    if triggers:
        names += role_names(events_role_name(name))
    if announces:
        names.append(auto_named(EVENT_RULE.token, approvals_rule_name(name)))
    return names


class RetrainingPipeline(pulumi.ComponentResource):
    """One model's retraining pipeline, what starts it, and who hears about approved versions."""

    pipeline: aws.sagemaker.Pipeline
    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]
    pipeline_definition: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    rule_names: list[pulumi.Output[str]]

    def __init__(self, name: str, settings: RetrainingSettings, context: RetrainingContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        if not settings.training_image:
            raise ValueError("training_image is required: the pipeline trains with it and the registered version "
                             "is served with it")
        context.check()
        super().__init__(type_token("RetrainingPipeline"), name, None, opts)
        governance = context.governance
        tags = dict(governance.tags)
        aws_facts = aws_context(self)
        key_arn = context.kms_key_arn
        if key_arn is None:
            key_arn = KmsKey(f"{name}-key", KmsKeyArgs(
                description=f"Encrypts the datasets, volumes and artifacts of the {name} retraining pipeline",
                protect=governance.protect, tags=tags), opts=child(self)).arn
        processing_image = settings.processing_image or settings.training_image
        role = ServiceRole(execution_role_name(name), ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"Runs the {context.pipeline_name} pipeline and its jobs",
            permissions_boundary_arn=governance.permissions_boundary_arn,
            tags=tags,
        ), opts=child(self))
        policies = self._execution_policies(role, settings, context, aws_facts, key_arn, processing_image)
        features = self._feature_source(name, role, settings, context, key_arn, tags, policies)

        from emlops.components.retraining_definition import DefinitionSpec, definition as built_definition

        placement = context.placement
        # SageMaker jobs in a VPC need a security group: without one of the platform's, an HTTPS-out-only group
        security_group_ids: list[pulumi.Input[str]] = []
        if placement is not None:
            security_group_ids = list(placement.security_group_ids) or [
                https_only_security_group(self, name, placement.vpc_id, "Retraining jobs", tags).id]
        baseline = context.baseline
        group = context.package_group_arn or context.group_name

        def definition(values: list) -> str:
            (region, role_arn, key, input_uri, output_uri, subnet_ids, security_group_ids, model_output, model_key,
             athena) = values
            database, workgroup, results = athena if athena else (None, None, None)
            return built_definition(DefinitionSpec(
                athena_query=context.features.query(database) if athena else None, athena_database=database,
                athena_workgroup=workgroup, athena_output_s3_uri=results,
                feature_groups=tuple(t.name for t in context.features.tables) if athena else (),
                label=context.features.label if athena else None,
                region=region, role_arn=role_arn, package_group_name=group,
                model_output_s3_uri=model_output, model_kms_key_arn=model_key,
                training_image_uri=settings.training_image, processing_image_uri=processing_image,
                input_s3_uri=input_uri, output_s3_uri=output_uri, kms_key_arn=key,
                metric_name=settings.metric_name, metric_threshold=settings.metric_threshold,
                comparison=settings.comparison, processing_instance_type=settings.processing_instance_type,
                training_instance_type=settings.training_instance_type,
                training_instance_count=settings.training_instance_count, volume_size_gb=settings.volume_size_gb,
                max_runtime_seconds=settings.max_runtime_hours * 3600, prepare_command=tuple(settings.prepare_command),
                evaluate_command=tuple(settings.evaluate_command), content_types=tuple(settings.content_types),
                inference_instance_types=tuple(settings.inference_instance_types),
                baseline_statistics_s3_uri=baseline.statistics_s3_uri if baseline else None,
                baseline_constraints_s3_uri=baseline.constraints_s3_uri if baseline else None,
                subnet_ids=tuple(subnet_ids), security_group_ids=tuple(security_group_ids),
            ), context.pipeline_name)

        self.pipeline_definition = pulumi.Output.all(
            aws_facts.region, role.arn, key_arn, context.input_s3_uri, context.output_s3_uri,
            # subnets and security groups may be other resources' ids: the SDK needs them resolved
            pulumi.Output.all(*(placement.subnet_ids if placement else ())),
            pulumi.Output.all(*security_group_ids),
            context.model_output_s3_uri, context.model_kms_key_arn, features).apply(definition)
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=context.pipeline_name,
            pipeline_display_name=context.pipeline_name,
            pipeline_description=f"Retrains {context.model_name} and registers it in {group} for approval",
            pipeline_definition=self.pipeline_definition,
            role_arn=role.arn,
            tags=tags,
            # executions need the role's policies; SageMaker does not check them at creation
            opts=child(self, depends_on=policies),
        )
        self.rule_names = []
        starts = []
        if context.monitoring_schedule_arn is not None:
            schedules = [context.monitoring_schedule_arn] + (
                [context.quality_schedule_arn] if context.quality_schedule_arn is not None else []) + list(
                context.clarify_schedule_arns)
            starts.append((ON_VIOLATIONS, "a monitoring run found constraint violations", dict(
                event_pattern=pulumi.Output.all(*schedules).apply(lambda arns: json.dumps({
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Processing Job State Change"],
                    "detail": {"MonitoringScheduleArn": list(arns), "ProcessingJobStatus": ["Completed"],
                               "ExitMessage": [{"prefix": "CompletedWithViolations"}]},
                })))))
        if settings.schedule is not None:
            starts.append((ON_SCHEDULE, f"the schedule {settings.schedule} fires",
                           dict(schedule_expression=settings.schedule)))
        if starts:
            events_role = ServiceRole(events_role_name(name), ServiceRoleArgs(
                services=["events.amazonaws.com"],
                description=f"Lets EventBridge start the {context.pipeline_name} pipeline",
                permissions_boundary_arn=governance.permissions_boundary_arn, path=governance.role_path,
                tags=tags,
            ), opts=child(self))
            start_policy = events_role.add_policy("start-pipeline", [
                Statement(actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline.arn])])
            for suffix, why, trigger in starts:
                rule = aws.cloudwatch.EventRule(start_rule_name(name, suffix), description=f"{name}: retrain when {why}",
                                                tags=tags, opts=child(self), **trigger)
                aws.cloudwatch.EventTarget(
                    f"{name}-{suffix}-start", rule=rule.name, arn=self.pipeline.arn, role_arn=events_role.arn,
                    sagemaker_pipeline_target={"pipeline_parameter_lists": []},
                    opts=child(self, depends_on=[start_policy]))
                self.rule_names.append(rule.name)
        if context.approval_topic_arn is not None:
            rule = announce_approvals(self, name, context.group_name, context.approval_topic_arn, tags)
            self.rule_names.append(rule.name)
        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.arn
        self.role_arn = role.arn
        self.register_outputs({"pipelineName": self.pipeline_name, "pipelineArn": self.pipeline_arn,
                               "roleArn": self.role_arn, "ruleNames": self.rule_names})

    def _feature_source(self, name: str, role: ServiceRole, settings: RetrainingSettings, context: RetrainingContext,
                        key_arn: pulumi.Input[str], tags: dict, policies: list) -> Optional[pulumi.Output[list]]:
        """With a feature source: the pipeline's Athena workgroup, which enforces its own results location (under
        the pipeline's output prefix, SSE-KMS with the pipeline's key), and the role's right to query the groups'
        offline tables through it; the (database, workgroup, results location) the definition names."""
        source = context.features
        if source is None:
            return None
        results = concat(context.output_s3_uri, "athena-results/")
        workgroup = aws.athena.Workgroup(
            f"{name}-features", description=f"Training sets of the {context.pipeline_name} pipeline, point in "
            "time from the feature store", state="ENABLED", force_destroy=False, tags=tags,
            configuration={"enforce_workgroup_configuration": True, "publish_cloudwatch_metrics_enabled": True,
                           "result_configuration": {"output_location": results, "encryption_configuration": {
                               "encryption_option": "SSE_KMS", "kms_key_arn": key_arn}}},
            opts=child(self))
        aws_facts = aws_context(self)
        glue = [aws_facts.arn("glue", "catalog"), aws_facts.arn("glue", concat("database/", source.database)),
                *[aws_facts.arn("glue", concat("table/", source.database, "/", t.table)) for t in source.tables]]
        policies.append(role.add_policy("read-features", [
            Statement(actions=["athena:GetQueryExecution", "athena:GetQueryResults", "athena:GetWorkGroup",
                               "athena:StartQueryExecution", "athena:StopQueryExecution"], resources=[workgroup.arn]),
            Statement(actions=["glue:GetDatabase", "glue:GetPartitions", "glue:GetTable"], resources=glue),
            Statement(actions=["sagemaker:DescribeFeatureGroup"], resources=[t.arn for t in source.tables]),
            # Athena checks where the results bucket is before it writes the results there
            Statement(actions=["s3:GetBucketLocation"], resources=[concat("arn:", aws_facts.partition, ":s3:::", (
                pulumi.Output.from_input(context.output_s3_uri).apply(
                    lambda uri: parse_s3(uri, "output_s3_uri", prefix=True)[0])))]),
            Statement(actions=["s3:GetBucketLocation", "s3:ListBucket"], resources=[source.offline_bucket_arn],
                      conditions={"StringLike": {"s3:prefix": [f"{t.offline_prefix}*" for t in source.tables]}}),
            Statement(actions=["s3:GetObject"], resources=[concat(source.offline_bucket_arn, "/", t.offline_prefix, "*")
                                                           for t in source.tables]),
            kms_usage_statement(source.kms_key_arn, encrypt=False, decrypt=True,
                                via_service=aws_context(self).service_endpoint("s3")),
        ]))
        return pulumi.Output.all(source.database, workgroup.name, results)

    def _execution_policies(self, role: ServiceRole, settings: RetrainingSettings, context: RetrainingContext,
                            aws_facts, key_arn: pulumi.Input[str], processing_image: str) -> list:
        """What the pipeline and its jobs do as the role: read datasets, write artifacts, register versions."""
        partition = aws_facts.partition

        def located(uri: pulumi.Input[str], label: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
            parsed = pulumi.Output.from_input(uri).apply(lambda value: parse_s3(value, label, prefix=True))
            bucket = concat("arn:", partition, ":s3:::", parsed[0])
            return bucket, parsed[1].apply(lambda key: key.rstrip("/") + "/" if key else "")

        def prefix_statements(uri: pulumi.Input[str], label: str, actions: list[str]) -> list[Statement]:
            bucket, key = located(uri, label)
            return [Statement(actions=["s3:ListBucket"], resources=[bucket],
                              conditions={"StringLike": {"s3:prefix": [concat(key, "*")]}}),
                    Statement(actions=actions, resources=[concat(bucket, "/", key, "*")])]

        policies = [
            role.add_policy("read-input", prefix_statements(context.input_s3_uri, "input_s3_uri", ["s3:GetObject"])),
            role.add_policy("write-artifacts", prefix_statements(
                context.output_s3_uri, "output_s3_uri", ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"])),
        ]
        if context.model_output_s3_uri is not None:
            # the model artifact goes to the registry's bucket, encrypted with its key, through S3 only
            policies.append(role.add_policy("write-model", [
                *prefix_statements(context.model_output_s3_uri, "model_output_s3_uri",
                                   ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]),
                kms_usage_statement(context.model_kms_key_arn, encrypt=True, decrypt=True,
                                    via_service=aws_facts.service_endpoint("s3")),
            ]))
        if context.baseline is not None:
            objects = [concat("arn:", partition, ":s3:::", "/".join(parse_s3(uri, "baseline")))
                       for uri in (context.baseline.statistics_s3_uri, context.baseline.constraints_s3_uri)]
            policies.append(role.add_policy("read-baseline", [Statement(actions=["s3:GetObject"], resources=objects)]))
        policies.append(role.add_policy("kms", [
            # only through the services the jobs use it with: S3 (data, artifacts) and SageMaker (the jobs)
            kms_usage_statement(key_arn, encrypt=True, decrypt=True, via_service=[
                aws_facts.service_endpoint("s3"), aws_facts.service_endpoint("sagemaker")]),
            # the jobs' volumes are encrypted by EC2 through a grant for the job's resources
            Statement(actions=["kms:CreateGrant"], resources=[key_arn],
                      conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
        ]))
        images = [settings.training_image] + ([processing_image] if settings.processing_image else [])
        policies.append(role.add_policy("pull-image", ecr_pull_statements(
            [repository_arn_output(image, partition) for image in images])))

        def job(kind: str) -> pulumi.Output[str]:  # SageMaker names a pipeline's jobs `pipelines-<id>-<step>-...`
            return aws_facts.arn("sagemaker", f"{kind}/pipelines-*")

        group = context.group_name.lower()  # SageMaker lower-cases names in its ARNs
        shared_arn = context.package_group_arn
        group_arn = shared_arn or aws_facts.arn("sagemaker", f"model-package-group/{group}")
        packages = (shared_arn.replace(":model-package-group/", ":model-package/") + "/*"
                    if shared_arn else aws_facts.arn("sagemaker", f"model-package/{group}/*"))
        policies.append(role.add_policy("run-steps", [
            Statement(actions=["sagemaker:AddTags", "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                               "sagemaker:StopProcessingJob"], resources=[job("processing-job")]),
            Statement(actions=["sagemaker:AddTags", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                               "sagemaker:StopTrainingJob"], resources=[job("training-job")]),
            Statement(actions=["sagemaker:DescribeModelPackage"], resources=[group_arn, packages]),
            # versions enter the registry waiting for a person's approval, never approved by the pipeline
            Statement(actions=["sagemaker:CreateModelPackage"], resources=[group_arn, packages],
                      conditions=PENDING_APPROVAL_ONLY),
        ]))
        # the pipeline passes this role to its jobs, and to SageMaker only
        policies.append(role.add_policy("pass-role", [Statement(
            actions=["iam:PassRole"], resources=[role.arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})]))
        log_groups = [aws_facts.arn("logs", f"log-group:/aws/sagemaker/{jobs}") for jobs in ("ProcessingJobs",
                                                                                         "TrainingJobs")]
        policies.append(role.add_policy("logs", [
            Statement(actions=["logs:CreateLogGroup"], resources=log_groups),
            Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                      resources=[concat(group_arn, ":log-stream:*") for group_arn in log_groups]),
            # PutMetricData has no resource; the namespace condition keeps the jobs to SageMaker's own.
            Statement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                      conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
        ]))
        if context.placement is not None:
            policies.append(role.add_policy("vpc-access", vpc_interface_statements(aws_facts, context.placement.vpc_id)))
        return policies
