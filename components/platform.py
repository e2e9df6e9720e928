"""MlPlatform: composes one environment's platform from the reusable components.

In order: the network (a managed VPC with its flow-log key, or the one you bring), the secure base
every later part relies on (a data KMS key, the access-log, dataset and artifact buckets, the role
SageMaker jobs use to turn datasets into model artifacts), the feature store, training, the registry,
one ModelEndpoint per model (capturing into a shared capture bucket), monitors, retraining pipelines
and, last, the persona roles people assume. The platform fills in what it owns: keys, buckets, the
network's VPC and private subnets, tags, the permissions boundary and protection.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pulumi

from emlops.components.aws_context import aws_context
from emlops.components.endpoint import ModelEndpoint, ModelEndpointArgs
from emlops.components.feature_store import FeatureStore, FeatureStoreArgs
from emlops.components.network import Network, NetworkArgs
from emlops.components.network_access import https_only_security_group
from emlops.components.personas import Personas, PersonasArgs
from emlops.components.monitoring import ModelMonitor, ModelMonitorArgs
from emlops.components.monitoring_alarms import TopicSettings, notification_topic
from emlops.components.retraining import RetrainingPipeline, RetrainingPipelineArgs
from emlops.components.registry import ModelRegistry, ModelRegistryArgs
from emlops.components.training import TrainingCluster, TrainingClusterArgs
from emlops.components.iam import ServiceRole, ServiceRoleArgs, Statement
from emlops.components.kms import KmsKey, KmsKeyArgs
from emlops.components.options import child, merge_tags, type_token
from emlops.components.storage import LifecycleRule, SecureBucket, SecureBucketArgs


@dataclass(frozen=True)
class PlatformModel:
    """A model the platform serves: its endpoint's arguments, and whether it captures data.

    The platform fills in what it owns (keys, capture bucket, tags, permissions boundary).
    """

    name: str
    """Model name; the endpoint is `<environment>-<name>`."""
    endpoint: ModelEndpointArgs
    """Everything else about the endpoint."""
    capture_data: bool = False
    """Capture requests and responses into the platform's capture bucket. Default: false."""
    retraining: Optional[RetrainingPipelineArgs] = None
    """Its retraining pipeline; the platform fills in the dataset and artifact prefixes, the training
    network, the monitor's schedule, the alerts topic, keys and tags. Default: none."""
    monitor: Optional[ModelMonitorArgs] = None
    """Data-quality monitoring of the captured data; the platform fills in the capture URI, the
    reports bucket (the capture bucket), keys, the shared alerts topic and tags. Default: none."""

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z0-9](-?[a-z0-9])*$", self.name):
            raise ValueError(f"model name {self.name!r} must be lowercase letters and digits, single '-' between")
        if self.capture_data and self.endpoint.serverless:
            raise ValueError(f"model {self.name!r}: serverless endpoints cannot capture data")
        if self.retraining is not None and self.monitor is None:
            raise ValueError(f"model {self.name!r}: retraining starts on the monitor's violations; add a monitor")
        if self.monitor is not None and not self.capture_data:
            raise ValueError(f"model {self.name!r}: monitoring reads captured data; capture_data must be on")


@dataclass
class MlPlatformArgs:
    """Arguments of an `MlPlatform`."""

    environment: str
    """Environment name (`dev`, `prod`, ...), used in names and tags."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags every resource carries (the stack's required tags). Default: none."""
    production: bool = False
    """Production: every stateful resource is protected and retained on delete. Default: false."""
    permissions_boundary_arn: Optional[str] = None
    """Permissions boundary of every role the platform creates. Default: none."""
    kms_deletion_window_days: int = 30
    """Deletion window of the platform's KMS keys (7-30). Default: 30."""
    noncurrent_version_retention_days: int = 90
    """Days overwritten object versions are kept in the data buckets. Default: 90."""
    access_log_retention_days: int = 365
    """Days S3 server access logs are kept. Default: 365."""
    feature_store: Optional[FeatureStoreArgs] = None
    """The feature store; its key, offline bucket (the datasets bucket), tags, boundary and protection
    come from the platform. Default: no feature store."""
    training: Optional[TrainingClusterArgs] = None
    """Training infrastructure; SageMaker training reads the datasets bucket and writes the artifacts
    bucket with the data key. Default: none."""
    registry: Optional[ModelRegistryArgs] = None
    """The model registry; MLflow artifacts go to the artifacts bucket. Default: none."""
    mlflow_on_training_cluster: bool = False
    """Run the registry's MLflow server on the EKS training cluster instead of `registry.mlflow_kind`.
    Default: false."""
    mlflow_backend_store_uri: Optional[pulumi.Input[str]] = None
    """Secret database URI of the self-hosted MLflow server (with `mlflow_on_training_cluster`)."""
    models: Sequence[PlatformModel] = ()
    """Models to serve, each on its own endpoint. Default: none."""
    network: Optional[NetworkArgs] = None
    """The network, built first: a managed VPC (its flow-log key, boundary, protection and tags come from the
    platform) or `NetworkArgs.existing(...)`. Its VPC and private subnets are filled into the provisioned
    endpoints, monitors, training and retraining. Default: none (each of those brings its own `vpc_id`)."""
    region: Optional[str] = None
    """Region of the stack's provider; the managed network's flow-log key lets `logs.<region>.amazonaws.com`
    use it (key policies take strings). Required with a managed network. Default: none."""
    personas: Optional[PersonasArgs] = None
    """Persona roles people assume, built last; the platform fills in what they act on (data key, buckets,
    feature groups, package groups, endpoints, schedules, pipelines, job roles and subnets), the name
    prefix, boundary, production and tags. Default: no persona roles."""
    datasets: bool = True
    """Create the datasets bucket and the model-builder role (SageMaker jobs turning datasets into model
    artifacts). A registry-only stack (the shared-services account) holds no datasets: false, and then it
    may have no models, training or feature store. Default: true."""
    alert_subscriptions: Sequence[str] = ()
    """Subscribers (e-mail addresses, https:// endpoints) of the alerts topic. The topic exists when
    monitors publish to it, or when the registry holds package groups and someone listens for approvals.
    Default: the first monitor's subscriptions."""
    shared_package_group_arns: Sequence[pulumi.Input[str]] = ()
    """Package groups of a shared-services registry this environment deploys from or registers into; the
    persona roles may describe them (and data scientists register into them with
    `shared_registry_publisher`). Default: none."""
    shared_registry_publisher: bool = False
    """The shared registry lists this account among its publishers. Default: false."""

    def __post_init__(self) -> None:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique; got {', '.join(names)}")
        if any(m.retraining for m in self.models) and (self.training is None or self.training.kind != "sagemaker"):
            raise ValueError("retraining pipelines need SageMaker training (training.kind sagemaker)")
        if self.mlflow_on_training_cluster:
            if self.registry is None or self.training is None or self.training.kind != "eks":
                raise ValueError("mlflow_on_training_cluster needs a registry and an EKS training cluster")
            if self.mlflow_backend_store_uri is None:
                raise ValueError("mlflow_on_training_cluster needs mlflow_backend_store_uri (a secret)")
        if not re.match(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$", self.environment):
            raise ValueError(f"environment {self.environment!r} must be 2-16 lowercase letters, digits or '-'")
        if self.network is not None and self.network.managed and not (
                self.region and re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", self.region)):
            raise ValueError(f"a managed network needs region (its flow-log key lets logs.<region>.amazonaws.com "
                             f"use it), got {self.region!r}")
        if not self.datasets and (self.models or self.training or self.feature_store):
            raise ValueError("models, training and a feature store need the datasets bucket (datasets=True)")
        if not 7 <= self.kms_deletion_window_days <= 30:
            raise ValueError(f"kms_deletion_window_days ({self.kms_deletion_window_days}) must be 7-30")
        for label in ("noncurrent_version_retention_days", "access_log_retention_days"):
            if getattr(self, label) < 1:
                raise ValueError(f"{label} ({getattr(self, label)}) must be at least 1")


class MlPlatform(pulumi.ComponentResource):
    """One environment's MLOps platform."""

    data_key: KmsKey
    access_logs: SecureBucket
    datasets: SecureBucket
    artifacts: SecureBucket
    model_builder_role: ServiceRole

    def __init__(self, name: str, args: MlPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None):
        tags = merge_tags(args.tags, {"environment": args.environment, "managed-by": "emlops"})
        protect = args.production
        keep_versions = LifecycleRule(
            id="expire-old-versions",
            noncurrent_version_expiration_days=args.noncurrent_version_retention_days,
        )
        # Every child's arguments are built (and so validated) before the first resource exists.
        # The promotion path: accounts consuming this registry may read (and decrypt) model artifacts,
        # only under models/ of the artifacts bucket; publishers may also write there (their retraining
        # registers new versions); nothing else of this environment.
        consumers = list(args.registry.consumer_account_ids) if args.registry is not None else []
        publishers = list(args.registry.publisher_account_ids) if args.registry is not None else []
        key_args = KmsKeyArgs(
            description=f"Encrypts the datasets and model artifacts of the {args.environment} ML platform",
            deletion_window_days=args.kms_deletion_window_days,
            s3_decrypt_account_ids=consumers,
            s3_encrypt_account_ids=publishers,
            s3_decrypt_bucket_prefixes=[f"{name}-artifacts-bucket-"] if consumers or publishers else [],
            protect=protect,
            tags=tags,
        )
        logs_args = SecureBucketArgs(
            sse_algorithm="AES256",
            receives_access_logs=True,
            lifecycle_rules=[LifecycleRule(
                id="expire-access-logs",
                expiration_days=args.access_log_retention_days,
                noncurrent_version_expiration_days=1,
            )],
            protect=protect,
            tags=tags,
        )
        role_args = ServiceRoleArgs(
            services=["sagemaker.amazonaws.com"],
            description=f"SageMaker processing and training jobs of {args.environment}: "
                        "read datasets, write model artifacts",
            permissions_boundary_arn=args.permissions_boundary_arn,
            tags=tags,
        )

        super().__init__(type_token("MlPlatform"), name, None, opts)

        self.network = self._network(name, args, tags) if args.network is not None else None
        # what the network gives each workload that runs in it (nothing: the workload's own args say)
        in_network = {} if self.network is None else dict(vpc_id=self.network.vpc_id,
                                                          subnet_ids=list(self.network.private_subnet_ids))

        self.data_key = KmsKey(f"{name}-data", key_args, opts=child(self))
        self.access_logs = SecureBucket(f"{name}-access-logs", logs_args, opts=child(self))

        def data_bucket(purpose: str, readers: Sequence[str] = (), writers: Sequence[str] = ()) -> SecureBucket:
            return SecureBucket(f"{name}-{purpose}", SecureBucketArgs(
                kms_key_arn=self.data_key.arn,
                access_log_bucket=self.access_logs.bucket_name,
                lifecycle_rules=[keep_versions],
                reader_account_ids=list(readers),
                writer_account_ids=list(writers),
                reader_prefix="models/" if readers or writers else "",
                protect=protect,
                tags=tags,
            ), opts=child(self))

        # A registry-only stack (the shared-services account) holds no datasets and runs no jobs.
        self.datasets: Optional[SecureBucket] = data_bucket("datasets") if args.datasets else None
        self.artifacts = data_bucket("artifacts", consumers, publishers)

        self.model_builder_role: Optional[ServiceRole] = None
        if args.datasets:
            self.model_builder_role = ServiceRole(f"{name}-model-builder", role_args, opts=child(self))
            self.datasets.grant_read(self.model_builder_role)
            self.artifacts.grant_read_write(self.model_builder_role, prefix="models/")
            self.model_builder_role.add_policy("logs", _sagemaker_job_logs(self))

        owned = dict(permissions_boundary_arn=args.permissions_boundary_arn, protect=protect)
        self.feature_store = None
        if args.feature_store is not None:
            self.feature_store = FeatureStore(f"{name}-features", dataclasses.replace(
                args.feature_store, kms_key_arn=self.data_key.arn, offline_bucket=self.datasets,
                tags=merge_tags(tags, args.feature_store.tags), **owned), opts=child(self))
        self.training = None
        if args.training is not None:
            shared = {} if args.training.kind == "eks" else dict(
                # the EKS kind makes its own key: its control-plane log group needs the logs service on it
                kms_key_arn=self.data_key.arn, input_bucket=self.datasets, output_bucket=self.artifacts)
            self.training = TrainingCluster(f"{name}-training", dataclasses.replace(
                args.training, tags=merge_tags(tags, args.training.tags), **in_network, **shared, **owned),
                opts=child(self))
        # One alerts topic per environment, made before the registry and the endpoints so that approvals
        # and the endpoints' rollback alarms notify it too; the monitors' drift alarms and run outcomes
        # publish to it.
        monitored = [model.monitor for model in args.models if model.monitor is not None]
        subscriptions = list(args.alert_subscriptions) or (list(monitored[0].subscriptions) if monitored else [])
        holds_groups = bool(args.registry is not None and args.registry.model_names)
        self.alerts_topic_arn: Optional[pulumi.Output[str]] = None
        if monitored or (holds_groups and subscriptions):
            self.alerts_topic_arn = notification_topic(
                self, f"{name}-alerts", TopicSettings(monitored[0].topic_kms_key_arn if monitored else None,
                                                      protect, tuple(subscriptions)),
                merge_tags(tags), purpose=f"the alerts of the {args.environment} ML platform")

        self.registry = None
        if args.registry is not None:
            cluster = {}
            if args.mlflow_on_training_cluster:
                cluster = dict(mlflow_kind="kubernetes", kubernetes_provider=self.training.kubernetes_provider,
                               oidc_provider_arn=self.training.oidc_provider_arn,
                               oidc_issuer_url=self.training.oidc_issuer_url,
                               backend_store_uri=args.mlflow_backend_store_uri)
            self.registry = ModelRegistry(f"{name}-registry", dataclasses.replace(
                args.registry, kms_key_arn=self.data_key.arn, artifact_bucket=self.artifacts,
                approval_topic_arn=args.registry.approval_topic_arn or (
                    self.alerts_topic_arn if holds_groups else None),
                tags=merge_tags(tags, args.registry.tags), **cluster, **owned), opts=child(self))

        self.capture = None
        if any(model.capture_data for model in args.models):
            self.capture = data_bucket("capture")
        # One group for the network interfaces of every endpoint and monitoring job: no inbound rule, so
        # sharing it lets no workload reach another; HTTPS out only (the VPC endpoints).
        workloads = {}
        if self.network is not None and (monitored or any(not m.endpoint.serverless for m in args.models)):
            group = https_only_security_group(self, f"{name}-workloads", self.network.vpc_id,
                                              "SageMaker endpoints and model monitors of", tags)
            workloads = dict(security_group_ids=[group.id])
        self.endpoints: dict[str, ModelEndpoint] = {}
        for model in args.models:
            endpoint_args = dataclasses.replace(
                model.endpoint,
                alarm_topic_arn=self.alerts_topic_arn,
                kms_key_arn=self.data_key.arn,
                data_capture_bucket=self.capture if model.capture_data else None,
                permissions_boundary_arn=args.permissions_boundary_arn,
                tags=merge_tags(tags, model.endpoint.tags),
                # serverless endpoints have no VPC
                **({} if model.endpoint.serverless else {**in_network, **workloads}),
            )
            self.endpoints[model.name] = ModelEndpoint(f"{name}-{model.name}", endpoint_args, opts=child(self))

        self.monitors: dict[str, ModelMonitor] = {}
        topic_arn = self.alerts_topic_arn
        for model in args.models:
            if model.monitor is None:
                continue
            endpoint = self.endpoints[model.name]
            shared_topic = dict(notification_topic_arn=topic_arn, subscriptions=(), topic_kms_key_arn=None)
            monitor = ModelMonitor(f"{name}-{model.name}-monitor", dataclasses.replace(
                model.monitor, capture_s3_uri=endpoint.data_capture_uri, reports_bucket=self.capture,
                capture_kms_key_arn=self.data_key.arn, volume_kms_key_arn=self.data_key.arn,
                output_kms_key_arn=self.data_key.arn, tags=merge_tags(tags, model.monitor.tags),
                **in_network, **workloads, **shared_topic, **owned), opts=child(self))
            self.monitors[model.name] = monitor

        extra_groups = [] if self.network is None else list(self.network.security_group_ids)
        self.retraining: dict[str, RetrainingPipeline] = {}
        for model in args.models:
            if model.retraining is None:
                continue
            self.retraining[model.name] = RetrainingPipeline(f"{name}-{model.name}-retraining", dataclasses.replace(
                model.retraining,
                input_s3_uri=pulumi.Output.concat("s3://", self.datasets.bucket_name, f"/datasets/{model.name}/"),
                output_s3_uri=pulumi.Output.concat("s3://", self.artifacts.bucket_name, f"/models/{model.name}/"),
                monitoring_schedule_arn=self.monitors[model.name].schedule_arn,
                # a model that got worse against ground truth is retrained too
                quality_schedule_arn=(self.monitors[model.name].quality_schedule.arn
                                      if self.monitors[model.name].quality_schedule is not None else None),
                # approvals are announced by the registry that holds the group (here, or the shared stack)
                notification_topic_arn=None,
                vpc_id=in_network.get("vpc_id", args.training.vpc_id),
                subnet_ids=in_network.get("subnet_ids", list(args.training.subnet_ids)),
                security_group_ids=[self.training.security_group_id, *extra_groups],
                kms_key_arn=self.data_key.arn, tags=merge_tags(tags, model.retraining.tags), **owned), opts=child(self))

        self.personas = self._personas(name, args, tags) if args.personas is not None else None

        self.register_outputs({
            "vpcId": None if self.network is None else self.network.vpc_id,
            "privateSubnetIds": [] if self.network is None else self.network.private_subnet_ids,
            "personaRoleArns": {} if self.personas is None else self.personas.role_arns,
            "dataKeyArn": self.data_key.arn,
            "accessLogsBucket": self.access_logs.bucket_name,
            "datasetsBucket": self.datasets.bucket_name if self.datasets is not None else None,
            "artifactsBucket": self.artifacts.bucket_name,
            "modelBuilderRoleArn": self.model_builder_role.arn if self.model_builder_role is not None else None,
            "endpointNames": [endpoint.endpoint_name for endpoint in self.endpoints.values()],
        })

    def _network(self, name: str, args: MlPlatformArgs, tags: Mapping[str, str]) -> Network:
        network_tags = merge_tags(tags, args.network.tags)
        if not args.network.managed:
            return Network(f"{name}-network", dataclasses.replace(args.network, tags=network_tags),
                           opts=child(self))
        suffix = ".amazonaws.com.cn" if args.region.startswith("cn-") else ".amazonaws.com"
        logs_key = KmsKey(f"{name}-logs", KmsKeyArgs(
            description=f"Encrypts the VPC flow logs of the {args.environment} ML platform",
            deletion_window_days=args.kms_deletion_window_days,
            # CloudWatch Logs encrypts the flow-log group with it, on behalf of this account only
            service_principals=[f"logs.{args.region}{suffix}"],
            protect=args.production, tags=tags), opts=child(self))
        return Network(f"{name}-network", dataclasses.replace(
            args.network, log_kms_key_arn=logs_key.arn, permissions_boundary_arn=args.permissions_boundary_arn,
            protect=args.production, tags=network_tags), opts=child(self))

    def _personas(self, name: str, args: MlPlatformArgs, tags: Mapping[str, str]) -> Personas:
        training_role = self.training.role_arn if self.training is not None else None
        return Personas(f"{name}-personas", dataclasses.replace(
            args.personas,
            data_key_arn=self.data_key.arn,
            datasets_bucket_arn=self.datasets.arn if self.datasets is not None else None,
            artifacts_bucket_arn=self.artifacts.arn,
            feature_group_arns=list(self.feature_store.feature_group_arns.values()) if self.feature_store else [],
            package_group_arns=list(self.registry.package_group_arns.values()) if self.registry else [],
            shared_group_arns=list(args.shared_package_group_arns),
            shared_group_publisher=args.shared_registry_publisher,
            endpoint_arns=[endpoint.endpoint_arn for endpoint in self.endpoints.values()],
            monitoring_schedule_arns=[monitor.schedule_arn for monitor in self.monitors.values()],
            pipeline_arns=[pipeline.pipeline_arn for pipeline in self.retraining.values()],
            training_role_arn=training_role,  # SageMaker training only (an EKS cluster has no job role)
            execution_role_arns=[pipeline.role_arn for pipeline in self.retraining.values()],
            job_subnet_ids=[] if self.network is None else list(self.network.private_subnet_ids),
            name_prefix=f"{name}-",
            permissions_boundary_arn=args.permissions_boundary_arn,
            production=args.production,
            tags=merge_tags(tags, args.personas.tags),
        ), opts=child(self))


def _sagemaker_job_logs(parent: pulumi.Resource) -> list[Statement]:
    """CloudWatch Logs for SageMaker jobs, limited to SageMaker's own log groups in this account."""
    groups = aws_context(parent).arn("logs", "log-group:/aws/sagemaker/*")
    return [
        Statement(actions=["logs:CreateLogGroup"], resources=[groups]),
        Statement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                  resources=[pulumi.Output.concat(groups, ":log-stream:*")]),
    ]
