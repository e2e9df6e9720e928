"""RetrainingPipeline: a SageMaker pipeline that retrains a model and registers it for approval.

The pipeline's definition is written by the SageMaker SDK v3 (`components/retraining_definition.py`):
prepare -> train -> evaluate -> condition on a metric -> register a model package in the model's
group as `PendingManualApproval`, with the data-quality baseline as its drift-check baselines.
EventBridge starts it when the model's monitoring schedule finds constraint violations and,
optionally, on a schedule; a package of the group being approved is announced on an SNS topic
(approval feeds the deploy). The pipeline is named `<environment>-<model>-retraining`, the name
`emlops retrain` starts.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Optional

import pulumi
import pulumi_aws as aws

from emlops.components.aws_context import aws_context
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement, ecr_pull_statements, kms_usage_statement
from emlops.components.images import ECR_IMAGE, repository_arn_output
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.monitoring_alarms import parse_s3
from emlops.components.network_access import vpc_interface_statements
from emlops.components.options import child, merge_tags, type_token

Comparison = Literal[">=", ">", "<=", "<"]
COMPARISONS = (">=", ">", "<=", "<")
# Metrics that are fractions: a threshold outside 0-1 can never be met (or is always met).
FRACTION_METRICS = frozenset({"auc", "accuracy", "f1", "precision", "recall", "r2"})
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_RATE = re.compile(r"^rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)$")
SCHEDULE_HELP = ("must be an EventBridge schedule: 'cron(<minutes> <hours> <day-of-month> <month> <day-of-week> "
                 "<year>)' or 'rate(<n> <minutes|hours|days>)', e.g. 'cron(0 3 ? * MON *)'")


def check_schedule_expression(expression: str) -> None:
    """EventBridge's schedule grammar (six cron fields, one of day-of-month/day-of-week is '?')."""
    if _RATE.match(expression):
        return
    if not _CRON.match(expression):
        raise ValueError(f"schedule {expression!r} {SCHEDULE_HELP}")
    fields = expression[len("cron("):-1].split()
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(f"schedule {expression!r}: exactly one of day-of-month and day-of-week must be '?'")


def check_threshold(metric_name: str, threshold: float) -> None:
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold):
        raise ValueError(f"metric_threshold ({threshold!r}) must be a finite number")
    if metric_name.lower() in FRACTION_METRICS and not 0 <= threshold <= 1:
        raise ValueError(f"metric_threshold ({threshold}) for {metric_name} must be between 0 and 1")



@dataclass
class RetrainingPipelineArgs:
    """Arguments of a `RetrainingPipeline`: one model's retraining, from its datasets to its registry group."""

    model_name: str
    """The model, e.g. `churn`."""
    pipeline_name: str
    """SageMaker pipeline name; the platform uses `<environment>-<model>-retraining` (what `emlops retrain` starts)."""
    training_image_uri: pulumi.Input[str]
    """ECR image of the training repository, with a tag or digest; it also serves the registered model."""
    input_s3_uri: pulumi.Input[str]
    """S3 prefix of the datasets the Prepare step reads, e.g. `s3://<input bucket>/datasets/churn/`."""
    output_s3_uri: pulumi.Input[str]
    """S3 prefix the steps write to (splits, model artifacts, evaluation), e.g. `s3://<output bucket>/models/churn/`."""
    package_group_name: Optional[str] = None
    """Model package group new versions are registered in. Default: `model_name`."""
    package_group_arn: Optional[str] = None
    """ARN of that group when it lives in another account (a shared-services registry that lists this
    account among its publishers). Default: the group of that name in this account."""
    model_output_s3_uri: Optional[pulumi.Input[str]] = None
    """S3 prefix the Train step writes the model artifact to, e.g. `models/<model>/` of the shared
    registry's bucket, so that the accounts deploying the version read it there and not here.
    Default: `<output_s3_uri>/training`."""
    model_kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key the model artifact is encrypted with (the shared registry's key, with `model_output_s3_uri`).
    Default: `kms_key_arn`."""
    processing_image_uri: Optional[pulumi.Input[str]] = None
    """ECR image of the Prepare and Evaluate steps. Default: `training_image_uri`."""
    prepare_command: Sequence[str] = ("python3", "/opt/program/prepare.py")
    """Entrypoint of the Prepare step (reads `/opt/ml/processing/input`, writes `train/` and `test/`).
    Default: `python3 /opt/program/prepare.py`."""
    evaluate_command: Sequence[str] = ("python3", "/opt/program/evaluate.py")
    """Entrypoint of the Evaluate step; it writes `evaluation.json` with `{"metrics": {"<metric>": {"value": x}}}`.
    Default: `python3 /opt/program/evaluate.py`."""
    processing_instance_type: str = "ml.m5.xlarge"
    """Instance type of the Prepare and Evaluate steps. Default: ml.m5.xlarge."""
    training_instance_type: str = "ml.m5.xlarge"
    """Instance type of the Train step. Default: ml.m5.xlarge."""
    training_instance_count: int = 1
    """Instances of the Train step (1-100). Default: 1."""
    volume_size_gb: int = 30
    """Volume per instance in GB (1-16384). Default: 30."""
    max_runtime_seconds: int = 86400
    """Longest each step's job may run (60-432000). Default: 86400 (one day)."""
    metric_name: str = "auc"
    """Metric of `evaluation.json` the condition compares. Default: auc."""
    metric_threshold: float = 0.8
    """Value the metric must reach to register the model (0-1 for auc, accuracy, f1, precision, recall, r2).
    Default: 0.8."""
    comparison: Comparison = ">="
    """How the metric is compared with the threshold (`<`/`<=` for errors such as rmse). Default: `>=`."""
    content_types: Sequence[str] = ("text/csv",)
    """Request and response MIME types of the registered model. Default: text/csv."""
    inference_instance_types: Sequence[str] = ("ml.m5.large",)
    """Instance types the registered model may be deployed to. Default: ml.m5.large."""
    baseline_statistics_s3_uri: Optional[str] = None
    """`statistics.json` of the data-quality baseline, attached as drift-check baseline. Default: none."""
    baseline_constraints_s3_uri: Optional[str] = None
    """`constraints.json` of the data-quality baseline (with `baseline_statistics_s3_uri`). Default: none."""
    monitoring_schedule_arn: Optional[pulumi.Input[str]] = None
    """The model's monitoring schedule; runs that find violations start the pipeline. Default: not started by
    monitoring."""
    quality_schedule_arn: Optional[pulumi.Input[str]] = None
    """The model's model-quality schedule (with `monitoring_schedule_arn`): runs that find the model got worse
    against ground truth start the pipeline too. Default: none."""
    schedule_expression: Optional[str] = None
    """EventBridge schedule that starts the pipeline, e.g. `cron(0 3 ? * MON *)`. Default: no schedule."""
    notification_topic_arn: Optional[pulumi.Input[str]] = None
    """SNS topic told when a package of the group is approved. Default: no notification."""
    vpc_id: Optional[pulumi.Input[str]] = None
    """VPC of `subnet_ids` (the role may create network interfaces only in it)."""
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    """Private subnets the jobs run in. Default: SageMaker's managed network."""
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    """Security groups of the jobs (with `subnet_ids`)."""
    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the datasets and artifacts, used for the jobs' volumes and outputs. Default: a key is created."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of the roles created here. Default: none."""
    protect: bool = False
    """Protect the created key and retain it on delete. Default: false."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of every taggable child. Default: none."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.model_name):
            raise ValueError(f"model_name {self.model_name!r} must be letters, digits and '-' (at most 63)")
        if not _PIPELINE_NAME.match(self.pipeline_name):
            raise ValueError(f"pipeline_name {self.pipeline_name!r} must be letters, digits and '-' (at most 256)")
        self.package_group_name = self.package_group_name or self.model_name
        if not _NAME.match(self.package_group_name):
            raise ValueError(f"package_group_name {self.package_group_name!r} must be letters, digits and '-' "
                             "(at most 63)")
        arn = self.package_group_arn
        if arn is not None and not (re.fullmatch(r"arn:aws(-cn|-us-gov)?:sagemaker:[a-z0-9-]+:[0-9]{12}:"
                                                 r"model-package-group/[a-z0-9](-*[a-z0-9]){0,62}", arn)
                                    and arn.rsplit("/", 1)[1] == self.package_group_name.lower()):
            raise ValueError(f"package_group_arn {arn!r} must be the ARN of model package group "
                             f"{self.package_group_name!r}: arn:<partition>:sagemaker:<region>:<account>:"
                             f"model-package-group/{self.package_group_name.lower()}")
        if (self.model_output_s3_uri is None) != (self.model_kms_key_arn is None):
            raise ValueError("model_output_s3_uri and model_kms_key_arn go together: give both or neither")
        if isinstance(self.model_output_s3_uri, str):
            parse_s3(self.model_output_s3_uri, "model_output_s3_uri", prefix=True)
        for label in ("training_image_uri", "processing_image_uri"):
            value = getattr(self, label)
            match = ECR_IMAGE.match(value) if isinstance(value, str) else None
            if isinstance(value, str) and not (match and match["tag"]):
                raise ValueError(f"{label} {value!r} must be an ECR image URI with a tag or digest, "
                                 "<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>")
        for label in ("input_s3_uri", "output_s3_uri"):
            value = getattr(self, label)
            if isinstance(value, str):
                parse_s3(value, label, prefix=True)
        for label in ("prepare_command", "evaluate_command"):
            if isinstance(getattr(self, label), str) or not getattr(self, label):
                raise ValueError(f"{label} must be a non-empty list, e.g. ['python3', '/opt/program/prepare.py']")
        for label in ("processing_instance_type", "training_instance_type", "inference_instance_types"):
            values = getattr(self, label)
            for value in [values] if isinstance(values, str) else values:
                if not _INSTANCE.match(value):
                    raise ValueError(f"{label}: {value!r} is not a SageMaker instance type like 'ml.m5.xlarge'")
        if not self.inference_instance_types or not self.content_types:
            raise ValueError("inference_instance_types and content_types each need at least one value")
        for label, value, low, high in (("training_instance_count", self.training_instance_count, 1, 100),
                                        ("volume_size_gb", self.volume_size_gb, 1, 16384),
                                        ("max_runtime_seconds", self.max_runtime_seconds, 60, 432000)):
            if not low <= value <= high:
                raise ValueError(f"{label} ({value}) must be {low}-{high}")
        if not _METRIC.match(self.metric_name):
            raise ValueError(f"metric_name {self.metric_name!r} must be letters, digits and '_', starting with a letter")
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison {self.comparison!r} must be one of {', '.join(COMPARISONS)}")
        check_threshold(self.metric_name, self.metric_threshold)
        if bool(self.baseline_statistics_s3_uri) != bool(self.baseline_constraints_s3_uri):
            raise ValueError("give both baseline_statistics_s3_uri and baseline_constraints_s3_uri, or neither")
        for label in ("baseline_statistics_s3_uri", "baseline_constraints_s3_uri"):
            if getattr(self, label):
                parse_s3(getattr(self, label), label)
        if self.schedule_expression is not None:
            check_schedule_expression(self.schedule_expression)
        if isinstance(self.subnet_ids, str) or isinstance(self.security_group_ids, str):
            raise ValueError("subnet_ids and security_group_ids must be lists")
        if self.subnet_ids and (not self.security_group_ids or not self.vpc_id):
            raise ValueError("subnet_ids need security_group_ids and vpc_id")
        if self.quality_schedule_arn is not None and self.monitoring_schedule_arn is None:
            raise ValueError("quality_schedule_arn needs monitoring_schedule_arn (the data-quality schedule)")
        if (self.security_group_ids or self.vpc_id) and not self.subnet_ids:
            raise ValueError("security_group_ids and vpc_id need subnet_ids")


class RetrainingPipeline(pulumi.ComponentResource):
    """One model's retraining pipeline, what starts it, and who hears about approved versions."""

    pipeline: aws.sagemaker.Pipeline
    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]
    pipeline_definition: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    rule_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: RetrainingPipelineArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__(type_token("RetrainingPipeline"), name, None, opts)
        tags = merge_tags(args.tags)
        context = aws_context(self)
        key_arn = args.kms_key_arn
        if key_arn is None:
            key_arn = KmsKey(f"{name}-key", KmsKeyArgs(
                description=f"Encrypts the datasets, volumes and artifacts of the {name} retraining pipeline",
                protect=args.protect, tags=tags), opts=child(self)).arn
        processing_image = args.processing_image_uri or args.training_image_uri
        role = ServiceRole(f"{name}-execution", ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"Runs the {args.pipeline_name} pipeline and its jobs",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=tags,
        ), opts=child(self))
        policies = self._execution_policies(role, args, context, key_arn, processing_image)

        from emlops.components.retraining_definition import DefinitionSpec, build_definition

        def definition(values: list) -> str:
            (region, role_arn, key, training_image, image, input_uri, output_uri, subnet_ids,
             security_group_ids, model_output, model_key) = values
            return build_definition(DefinitionSpec(
                region=region, role_arn=role_arn, package_group_name=args.package_group_arn or args.package_group_name,
                model_output_s3_uri=model_output, model_kms_key_arn=model_key,
                training_image_uri=training_image, processing_image_uri=image,
                input_s3_uri=input_uri, output_s3_uri=output_uri, kms_key_arn=key,
                metric_name=args.metric_name, metric_threshold=args.metric_threshold, comparison=args.comparison,
                processing_instance_type=args.processing_instance_type,
                training_instance_type=args.training_instance_type,
                training_instance_count=args.training_instance_count, volume_size_gb=args.volume_size_gb,
                max_runtime_seconds=args.max_runtime_seconds, prepare_command=tuple(args.prepare_command),
                evaluate_command=tuple(args.evaluate_command), content_types=tuple(args.content_types),
                inference_instance_types=tuple(args.inference_instance_types),
                baseline_statistics_s3_uri=args.baseline_statistics_s3_uri,
                baseline_constraints_s3_uri=args.baseline_constraints_s3_uri,
                subnet_ids=tuple(subnet_ids), security_group_ids=tuple(security_group_ids),
            ), args.pipeline_name)

        self.pipeline_definition = pulumi.Output.all(
            context.region, role.arn, key_arn, args.training_image_uri, processing_image,
            args.input_s3_uri, args.output_s3_uri,
            # subnets and security groups may be other resources' ids: the SDK needs them resolved
            pulumi.Output.all(*args.subnet_ids), pulumi.Output.all(*args.security_group_ids),
            args.model_output_s3_uri, args.model_kms_key_arn).apply(definition)
        self.pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=args.pipeline_name,
            pipeline_display_name=args.pipeline_name,
            pipeline_description=f"Retrains {args.model_name} and registers it in "
                                 f"{args.package_group_arn or args.package_group_name} for approval",
            pipeline_definition=self.pipeline_definition,
            role_arn=role.arn,
            tags=tags,
            # executions need the role's policies; SageMaker does not check them at creation
            opts=child(self, depends_on=policies),
        )
        self.rule_names = []
        starts = []
        if args.monitoring_schedule_arn is not None:
            schedules = [args.monitoring_schedule_arn] + (
                [args.quality_schedule_arn] if args.quality_schedule_arn is not None else [])
            starts.append(("on-violations", "a monitoring run found constraint violations", dict(
                event_pattern=pulumi.Output.all(*schedules).apply(lambda arns: json.dumps({
                    "source": ["aws.sagemaker"],
                    "detail-type": ["SageMaker Processing Job State Change"],
                    "detail": {"MonitoringScheduleArn": list(arns), "ProcessingJobStatus": ["Completed"],
                               "ExitMessage": [{"prefix": "CompletedWithViolations"}]},
                })))))
        if args.schedule_expression is not None:
            starts.append(("schedule", f"the schedule {args.schedule_expression} fires",
                           dict(schedule_expression=args.schedule_expression)))
        if starts:
            events_role = ServiceRole(f"{name}-events", ServiceRoleArgs(
                services=["events.amazonaws.com"],
                description=f"Lets EventBridge start the {args.pipeline_name} pipeline",
                permissions_boundary_arn=args.permissions_boundary_arn,
                tags=tags,
            ), opts=child(self))
            start_policy = events_role.add_policy("start-pipeline", [
                Statement(actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline.arn])])
            for suffix, why, trigger in starts:
                rule = aws.cloudwatch.EventRule(f"{name}-{suffix}", description=f"{name}: retrain when {why}",
                                                tags=tags, opts=child(self), **trigger)
                aws.cloudwatch.EventTarget(
                    f"{name}-{suffix}-start", rule=rule.name, arn=self.pipeline.arn, role_arn=events_role.arn,
                    sagemaker_pipeline_target={"pipeline_parameter_lists": []},
                    opts=child(self, depends_on=[start_policy]))
                self.rule_names.append(rule.name)
        if args.notification_topic_arn is not None:
            from emlops.components.registry import announce_approvals

            rule = announce_approvals(self, name, args.package_group_name, args.notification_topic_arn, tags)
            self.rule_names.append(rule.name)
        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.arn
        self.role_arn = role.arn
        self.register_outputs({"pipelineName": self.pipeline_name, "pipelineArn": self.pipeline_arn,
                               "roleArn": self.role_arn, "ruleNames": self.rule_names})

    def _execution_policies(self, role: ServiceRole, args: RetrainingPipelineArgs, context,
                            key_arn: pulumi.Input[str], processing_image: pulumi.Input[str]) -> list:
        """What the pipeline and its jobs do as the role: read datasets, write artifacts, register versions."""
        partition = context.partition

        def located(uri: pulumi.Input[str], label: str) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
            parsed = pulumi.Output.from_input(uri).apply(lambda value: parse_s3(value, label, prefix=True))
            bucket = pulumi.Output.concat("arn:", partition, ":s3:::", parsed[0])
            return bucket, parsed[1].apply(lambda key: key.rstrip("/") + "/" if key else "")

        def prefix_statements(uri: pulumi.Input[str], label: str, actions: list[str]) -> list[Statement]:
            bucket, key = located(uri, label)
            return [Statement(actions=["s3:ListBucket"], resources=[bucket],
                              conditions={"StringLike": {"s3:prefix": [pulumi.Output.concat(key, "*")]}}),
                    Statement(actions=actions, resources=[pulumi.Output.concat(bucket, "/", key, "*")])]

        policies = [
            role.add_policy("read-input", prefix_statements(args.input_s3_uri, "input_s3_uri", ["s3:GetObject"])),
            role.add_policy("write-artifacts", prefix_statements(
                args.output_s3_uri, "output_s3_uri", ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"])),
        ]
        if args.model_output_s3_uri is not None:
            # the model artifact goes to the registry's bucket, encrypted with its key, through S3 only
            policies.append(role.add_policy("write-model", [
                *prefix_statements(args.model_output_s3_uri, "model_output_s3_uri",
                                   ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]),
                kms_usage_statement(args.model_kms_key_arn, encrypt=True, decrypt=True,
                                    via_service=context.service_endpoint("s3")),
            ]))
        if args.baseline_statistics_s3_uri:
            objects = [pulumi.Output.concat("arn:", partition, ":s3:::", "/".join(parse_s3(uri, "baseline")))
                       for uri in (args.baseline_statistics_s3_uri, args.baseline_constraints_s3_uri)]
            policies.append(role.add_policy("read-baseline", [Statement(actions=["s3:GetObject"], resources=objects)]))
        policies.append(role.add_policy("kms", [
            kms_usage_statement(key_arn, encrypt=True, decrypt=True),
            # the jobs' volumes are encrypted by EC2 through a grant for the job's resources
            Statement(actions=["kms:CreateGrant"], resources=[key_arn],
                      conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}}),
        ]))
        images = [args.training_image_uri] + ([processing_image] if args.processing_image_uri else [])
        policies.append(role.add_policy("pull-image", ecr_pull_statements(
            [repository_arn_output(image, partition) for image in images])))

        def job(kind: str) -> pulumi.Output[str]:  # SageMaker names a pipeline's jobs `pipelines-<id>-<step>-...`
            return context.arn("sagemaker", f"{kind}/pipelines-*")

        group = args.package_group_name.lower()  # SageMaker lower-cases names in its ARNs
        group_arn = args.package_group_arn or context.arn("sagemaker", f"model-package-group/{group}")
        packages = (args.package_group_arn.replace(":model-package-group/", ":model-package/") + "/*"
                    if args.package_group_arn else context.arn("sagemaker", f"model-package/{group}/*"))
        policies.append(role.add_policy("run-steps", [
            Statement(actions=["sagemaker:AddTags", "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob",
                               "sagemaker:StopProcessingJob"], resources=[job("processing-job")]),
            Statement(actions=["sagemaker:AddTags", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                               "sagemaker:StopTrainingJob"], resources=[job("training-job")]),
            Statement(actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage"],
                      resources=[group_arn, packages]),
        ]))
        # the pipeline passes this role to its jobs, and to SageMaker only
        policies.append(role.add_policy("pass-role", [Statement(
            actions=["iam:PassRole"], resources=[role.arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}})]))
        log_groups = [context.arn("logs", f"log-group:/aws/sagemaker/{jobs}") for jobs in ("ProcessingJobs",
                                                                                         "TrainingJobs")]
        policies.append(role.add_policy("logs", [
            Statement(actions=["logs:CreateLogGroup"], resources=log_groups),
            Statement(actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                      resources=[pulumi.Output.concat(group_arn, ":log-stream:*") for group_arn in log_groups]),
            # PutMetricData has no resource; the namespace condition keeps the jobs to SageMaker's own.
            Statement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                      conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
        ]))
        if args.subnet_ids:
            policies.append(role.add_policy("vpc-access", vpc_interface_statements(context, args.vpc_id)))
        return policies
