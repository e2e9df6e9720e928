"""The composition root: the stack file's sections (`PlatformConfig`) and the stages that build them (`MlPlatform`).

`PlatformConfig` is what `emlops:platform` may say: what every stack says about itself (`StackConfig`) and a
section per component, each the component's own settings model, as it is; the rules across sections are in
`rules.py`. `MlPlatform` reads as the platform's wiring diagram, one stage per concern, in the order they are
built: network -> base (data key, buckets, the job role) -> data (feature store) -> training -> alerts -> registry ->
serving -> monitoring -> dashboards -> model cards -> retraining -> batch transform -> data pipelines -> personas
-> budget -> audit. Each stage hands a component its section and its context (what earlier stages built: keys,
buckets, network, topic, governance).
Model sources are resolved before the platform exists (`program.py`); it builds nothing that is not in the stack
file.

Adding a component is a field here, a stage here and the component's module (README, "Adding a component").
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import replace
from typing import Any, Optional

import pulumi
from pydantic import Field, model_validator

from emlops.components.alerts import AlertsSettings, notification_topic
from emlops.components.batch_transform import BatchTransform, BatchTransformContext
from emlops.components.batch_transform_args import pipeline_name as batch_pipeline_name
from emlops.components.data_pipeline_args import claims_lifecycle_rule
from emlops.components.endpoint import EndpointContext, ModelEndpoint
from emlops.components.feature_store import FeatureStore, FeatureStoreContext
from emlops.components.feature_store_args import FeatureGroupSettings
from emlops.components.iam import ServiceRole, ServiceRoleArgs, platform_role_path, sagemaker_job_log_statements
from emlops.components.kms import KmsKey, KmsKeyArgs, KmsSettings
from emlops.components.monitoring import ModelMonitor, MonitorContext
from emlops.components.network import Network, NetworkContext
from emlops.components.network_access import https_only_security_group
from emlops.components.network_args import NetworkSettings
from emlops.components.options import child, type_token
from emlops.components.personas_args import PersonasSettings
from emlops.components.registry import ModelRegistry, RegistryContext
from emlops.components.registry_args import ClusterAccess
from emlops.components.settings import Governance, Placement
from emlops.components.storage import LifecycleRule, ObjectLock, SecureBucket, SecureBucketArgs, StorageSettings
from emlops.components.training import TrainingCluster, TrainingContext
from emlops.components.training_args import TrainingSettings
from emlops.program import names, rules
from emlops.program.budget import BUDGETS, alerts_publishers, budget
from emlops.program.config import StackConfig, config_json_schema, load_config, parse_config
from emlops.program.config_guardrails import GuardrailsConfig
from emlops.program.config_models import BatchTransformConfig, ModelConfig, RegistryConfig
from emlops.program.dashboards import dashboards
from emlops.program.data_pipelines import DataPipelineSettings, data_pipelines
from emlops.program.governance import AUDIT_DESCRIPTION, AuditSettings, audit, model_cards
from emlops.program.names import endpoint_component, monitor_component, registry_component
from emlops.program.personas import personas
from emlops.program.registry_groups import RegistryGroups
from emlops.program.retraining import retraining
from emlops.program.serving import PlatformContext, ScoringModel, ServedModel, success_topic
from emlops.program.stepwise import stepwise


class PlatformConfig(StackConfig, RegistryGroups):
    """The whole platform of one stack (`emlops:platform` in `stacks/Pulumi.<stack>.yaml`)."""

    kms: KmsSettings = Field(default_factory=KmsSettings, description="KMS key settings of the platform's keys.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="S3 bucket settings.")
    network: Optional[NetworkSettings] = Field(
        None, description="The VPC whose private subnets models run in. Required when a model runs on instances.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="Model registry settings.")
    feature_groups: list[FeatureGroupSettings] = Field(
        default_factory=list, description="SageMaker feature groups of the platform's feature store. Default: none.")
    training: Optional[TrainingSettings] = Field(
        None, description="Training infrastructure (SageMaker jobs or an EKS GPU cluster). Default: none.")
    models: list[ModelConfig] = Field(default_factory=list, description="Models, each served by its own endpoint.")
    batch_transforms: list[BatchTransformConfig] = Field(default_factory=list, description="SageMaker pipelines that "
                                                         "score datasets with a model on a schedule. Default: none.")
    data_pipelines: list[DataPipelineSettings] = Field(
        default_factory=list, description="Datasets' paths into feature groups. Default: none.")
    personas: Optional[PersonasSettings] = Field(
        None, description="IAM roles people assume (data-scientist, ml-engineer, platform-admin, business-viewer), "
        "each with its own least-privilege policy. Default: none.")
    audit: Optional[AuditSettings] = Field(None, description=AUDIT_DESCRIPTION)
    guardrails: GuardrailsConfig = Field(
        default_factory=GuardrailsConfig,
        description="Guardrails: allowed SageMaker instance types and accepted exceptions to policy rules "
        "(`emlops check`, `policy/`). Default: every instance type botocore allows, no exceptions.")
    alerts: AlertsSettings = Field(default_factory=AlertsSettings,
                                 description="Subscribers of the stack's alerts topic (drift, violations, failures).")

    @model_validator(mode="after")
    def _sections_fit(self) -> "PlatformConfig":
        rules.check(self)
        return self


def parse_platform_config(raw: Any, source: str) -> PlatformConfig:
    """Validate a stack's `emlops:platform` value; ConfigError with one line naming `source` and the key."""
    return parse_config(PlatformConfig, raw, source)


def load_platform_config() -> PlatformConfig:
    """Read and validate the running Pulumi program's stack config."""
    return load_config(PlatformConfig)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of `emlops:platform`, for editors and the README's config reference."""
    return config_json_schema(PlatformConfig)


class MlPlatform(pulumi.ComponentResource):
    """One environment's MLOps platform (see the module docstring for its stages)."""

    def __init__(self, name: str, settings: PlatformConfig, context: PlatformContext,
                 opts: Optional[pulumi.ResourceOptions] = None):
        """Build the whole platform at once: what it builds registers once it is all built (the program builds it
        with `build`, which makes the same resources)."""
        self._begin(name, settings, context, opts)
        for _ in self._stages():
            pass

    @classmethod
    async def build(cls, name: str, settings: PlatformConfig, context: PlatformContext,
                    opts: Optional[pulumi.ResourceOptions] = None) -> "MlPlatform":
        """The same platform, built by a Pulumi program's async entry point (`pulumi.run`): after each model's
        components it lets the event loop run, so what is built so far registers while the rest is built."""
        if cls.__init__ is not MlPlatform.__init__:
            raise TypeError(f"{cls.__name__} overrides __init__, which MlPlatform.build does not run; extend a stage "
                            f"instead (the README's 'Adding a component'), or build it at once with {cls.__name__}(...)")
        platform = cls.__new__(cls)
        platform._begin(name, settings, context, opts)
        await stepwise(platform._stages())
        return platform

    def _begin(self, name: str, settings: PlatformConfig, context: PlatformContext,
               opts: Optional[pulumi.ResourceOptions]) -> None:
        if settings.registry.mlflow.kind == "kubernetes" and context.mlflow_backend_store_uri is None:
            raise ValueError("a self-hosted MLflow server needs its backend store URI (a secret)")
        super().__init__(type_token("MlPlatform"), name, None, opts)
        self._name, self._settings, self._context = name, settings, context
        tags = {**settings.tags.as_dict(), "environment": settings.environment, "managed-by": "emlops"}
        self._governance = Governance(tags, settings.permission_boundary_arn, settings.production,
                                      role_path=platform_role_path(settings.environment))

    def _stages(self) -> Iterator[None]:
        """The stages in order, yielding after each model's endpoint, monitor, dashboard, card and retraining (where
        `build` lets them register). No stage adds a child to a component built before a yield (stepwise.py)."""
        name, settings, context, tags = self._name, self._settings, self._context, self._governance.tags
        models = list(context.models)

        self.network = self._network() if settings.network is not None else None
        self._base()
        self.feature_store = self._data()
        self.training = self._training()
        self.alerts_topic_arn = self._alerts(models)
        self.registry = self._registry()
        self.endpoints = yield from self._serving(models)
        self.monitors = yield from self._monitoring(models)
        self.dashboards = yield from dashboards(self, name, settings.region, settings.account_id, models,
                                                self.endpoints, self.monitors)
        self.model_cards = yield from model_cards(self, settings, models, context.shared, self._governance)
        self.retraining = yield from retraining(self, name, settings.environment, models, self._governance)
        self.batch_transforms = self._batch_transforms(list(context.batch_transforms))
        self.data_pipelines = data_pipelines(self, settings, self.datasets, self.feature_store, self.network,
                                             self._workloads, self.alerts_topic_arn, self._governance)
        self.personas = personas(self, name, settings, context.shared, self._governance)
        self.budget = budget(self, settings.environment, settings.guardrails, self.alerts_topic_arn, tags)
        self.audit_trail_arn = audit(self, settings, self._governance)

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

    # -- network -------------------------------------------------------------------------------------------

    def _network(self) -> Network:
        """A managed VPC with its own flow-log key (CloudWatch Logs of the region uses it), or the one you bring."""
        name, settings, governance = self._name, self._settings, self._governance
        if not settings.network.is_managed:
            return Network(f"{name}-network", settings.network, NetworkContext(governance=replace(governance, protect=False)),
                           opts=child(self))
        logs_key = KmsKey(f"{name}-logs", KmsKeyArgs(
            description=f"Encrypts the VPC flow logs of the {settings.environment} ML platform",
            settings=settings.kms,
            # CloudWatch Logs encrypts the flow-log group with it, on behalf of this account only
            service_principals=[f"logs.{settings.region}.{settings.partition.dns_suffix}"],
            protect=governance.protect, tags=governance.tags), opts=child(self))
        # workloads reach a shared registry's bucket, key and images through the endpoints too
        shared = self._context.shared
        return Network(f"{name}-network", settings.network, NetworkContext(
            log_kms_key_arn=logs_key.arn, governance=governance,
            resource_account_ids=[shared.ref.account_id] if shared is not None else []), opts=child(self))

    def placement(self, security_group_ids: Sequence[pulumi.Input[str]] = ()) -> Placement:
        return Placement(self.network.vpc_id, list(self.network.private_subnet_ids), security_group_ids)

    # -- base: the data key, the access-log, dataset and artifact buckets, the job role ---------------------

    def _base(self) -> None:
        name, settings, governance = self._name, self._settings, self._governance
        tags, protect = governance.tags, governance.protect
        # The promotion path: accounts consuming this registry may read (and decrypt) model artifacts, only
        # under models/ of the artifacts bucket; publishers may also write there (their retraining registers
        # new versions); nothing else of this environment.
        consumers, publishers = settings.registry.consumer_account_ids, settings.registry.publisher_account_ids
        self.data_key = KmsKey(f"{name}-data", KmsKeyArgs(
            description=f"Encrypts the datasets and model artifacts of the {settings.environment} ML platform",
            settings=settings.kms, s3_decrypt_account_ids=consumers, s3_encrypt_account_ids=publishers,
            s3_decrypt_bucket_prefixes=[f"{name}-artifacts-bucket-"] if consumers or publishers else [],
            protect=protect, tags=tags), opts=child(self))
        self.access_logs = SecureBucket(f"{name}-access-logs", SecureBucketArgs(
            sse_algorithm="AES256", receives_access_logs=True,
            lifecycle_rules=[settings.storage.expire_access_logs()], protect=protect, tags=tags), opts=child(self))
        # A registry-only stack (the shared-services account) holds no datasets and runs no jobs.
        holds_data = bool(settings.models or settings.training or settings.feature_groups or settings.batch_transforms)
        self.datasets = self._data_bucket("datasets", eventbridge=any(
            b.start_on_new_data for b in (*settings.batch_transforms, *settings.data_pipelines)),
            rules=[claims_lifecycle_rule(p.name) for p in settings.data_pipelines]) if holds_data else None
        # Registered versions point at their artifact under models/ by S3 URI, and SageMaker's model packages take
        # no object version: so the artifacts bucket keeps every version it is written, unchangeable and undeletable,
        # as long as old versions are kept (S3 Object Lock; compliance mode in production, where not even the
        # account root can remove one, governance mode elsewhere, which no role here may bypass).
        self.artifacts = self._data_bucket("artifacts", consumers, publishers, object_lock=ObjectLock(
            "COMPLIANCE" if settings.production else "GOVERNANCE", settings.storage.noncurrent_version_retention_days))
        # what batch transforms score lands apart from the data it was scored from; asynchronous endpoints' requests,
        # responses and failures too
        scoring = settings.batch_transforms or any(m.serving == "async" for m in settings.models)
        self.inference = self._data_bucket("inference") if scoring else None
        self.model_builder_role = None
        if holds_data:
            self.model_builder_role = ServiceRole(f"{name}-model-builder", ServiceRoleArgs(
                services=["sagemaker.amazonaws.com"],
                description=f"SageMaker processing and training jobs of {settings.environment}: "
                            "read datasets, write model artifacts",
                permissions_boundary_arn=governance.permissions_boundary_arn,
                tags=tags), opts=child(self))
            self.datasets.grant_read(self.model_builder_role)
            self.artifacts.grant_read_write(self.model_builder_role, prefix="models/")
            self.model_builder_role.add_policy("logs", sagemaker_job_log_statements(self))

    def _data_bucket(self, purpose: str, readers: Sequence[str] = (), writers: Sequence[str] = (),
                     object_lock: Optional[ObjectLock] = None, eventbridge: bool = False,
                     rules: Sequence[LifecycleRule] = ()) -> SecureBucket:
        """A bucket of the platform's data: the data key, access logs, old versions expire (and RULES apply)."""
        return SecureBucket(f"{self._name}-{purpose}", SecureBucketArgs(eventbridge=eventbridge,
            kms_key_arn=self.data_key.arn, access_log_bucket=self.access_logs.bucket_name,
            lifecycle_rules=[self._settings.storage.keep_versions(), *rules], reader_account_ids=list(readers),
            writer_account_ids=list(writers), reader_prefix="models/" if readers or writers else "",
            protect=self._governance.protect, tags=self._governance.tags, object_lock=object_lock), opts=child(self))

    # -- data and training ----------------------------------------------------------------------------------

    def _data(self) -> Optional[FeatureStore]:
        if not self._settings.feature_groups:
            return None
        return FeatureStore(f"{self._name}-features", self._settings.feature_groups, FeatureStoreContext(
            kms_key_arn=self.data_key.arn, offline_bucket=self.datasets, governance=self._governance),
            opts=child(self))

    def _training(self) -> Optional[TrainingCluster]:
        training = self._settings.training
        if training is None:
            return None
        # the EKS kind makes its own key: its control-plane log group needs the logs service on it
        sagemaker = training.kind == "sagemaker"
        # data scientists pass the training role to their jobs: it reads and writes only what they may
        personas = self._settings.personas or PersonasSettings()
        return TrainingCluster(f"{self._name}-training", training, TrainingContext(
            placement=self.placement(), kms_key_arn=self.data_key.arn if sagemaker else None,
            input_bucket=self.datasets if sagemaker else None, output_bucket=self.artifacts if sagemaker else None,
            input_prefix=personas.datasets_prefix if sagemaker else "",
            output_prefix=personas.experiments_prefix if sagemaker else "",
            endpoint_egress=self.network.endpoint_egress,
            region=self._settings.region, governance=self._governance), opts=child(self))

    # -- alerts and registry --------------------------------------------------------------------------------

    def _registry_groups(self) -> list[str]:
        """The package groups this stack's registry holds (none when a shared registry holds them)."""
        return [] if self._settings.registry.shared_stack else self._settings.registry_groups()

    def _alerts(self, models: list[ServedModel]) -> Optional[pulumi.Output[str]]:
        """One alerts topic per environment, made before the registry and the endpoints so that approvals and
        the endpoints' rollback alarms notify it too; the monitors' drift alarms and run outcomes publish to it."""
        subscriptions, publishers = self._settings.alerts.subscriptions, alerts_publishers(self._settings.guardrails)
        # asynchronous endpoints and batch transforms announce their failures there too, a budget its forecasts
        announced = any(m.monitored or m.settings.serving == "async" for m in models) or BUDGETS in publishers
        if not (announced or self._settings.batch_transforms or self._settings.data_pipelines
                or (self._registry_groups() and subscriptions)):
            return None
        return notification_topic(self, f"{self._name}-alerts", replace(self._governance, permissions_boundary_arn=None),
                                  subscriptions=subscriptions, publishers=publishers,
                                  purpose=f"the alerts of the {self._settings.environment} ML platform")

    def _registry(self) -> Optional[ModelRegistry]:
        """A package group per served model and per group a model is sourced from (or none, with a shared
        registry), the settings' own groups and repositories, and MLflow as configured."""
        settings = self._settings.registry
        groups = self._registry_groups()
        if not groups and not settings.image_repositories and settings.mlflow.kind == "none":
            return None
        cluster = None
        if settings.mlflow.kind == "kubernetes":
            cluster = ClusterAccess(self.training.kubernetes_provider, self.training.oidc_provider_arn,
                                    self.training.oidc_issuer_url)
        return ModelRegistry(registry_component(self._name), settings, RegistryContext(
            account_id=self._settings.account_id, model_groups=groups,
            approval_topic_arn=self.alerts_topic_arn if groups else None,
            announced_groups=[g for g in groups if g in self._settings.announced_groups()],
            kms_key_arn=self.data_key.arn, artifact_bucket=self.artifacts, cluster=cluster,
            backend_store_uri=self._context.mlflow_backend_store_uri, governance=self._governance), opts=child(self))

    # -- serving and monitoring -----------------------------------------------------------------------------

    def _serving(self, models: list[ServedModel]) -> Generator[None, None, dict[str, ModelEndpoint]]:
        name, governance = self._name, self._governance
        self.capture = self._data_bucket("capture") if any(m.captures_data for m in models) else None
        # One group for the network interfaces of every endpoint and monitoring job: no inbound rule, so
        # sharing it lets no workload reach another; HTTPS out only (the VPC endpoints).
        self._workloads: list[pulumi.Input[str]] = []
        if self.network is not None and any(m.monitored or not m.settings.serverless for m in models):
            group = https_only_security_group(self, f"{name}-workloads", self.network.vpc_id,
                                              "SageMaker endpoints and model monitors of", governance.tags,
                                              egress_to=self.network.endpoint_egress)
            self._workloads = [group.id]
        endpoints = {}
        for model in models:
            endpoints[model.name] = ModelEndpoint(endpoint_component(name, model.name), model.settings, EndpointContext(
                artifact=model.artifact, image_uri=model.image_uri,
                # serverless endpoints have no VPC
                placement=None if model.settings.serverless else self.placement(self._workloads),
                kms_key_arn=self.data_key.arn, capture_bucket=self.capture if model.captures_data else None,
                alarm_topic_arn=self.alerts_topic_arn, secret_environment=model.secret_environment,
                challenger=model.challenger,
                # an MLflow challenger runs on the model's image; a package names its own
                challenger_image_uri=model.image_uri if model.challenger and not model.challenger.package_arn else None,
                inference_bucket=self.inference if model.settings.serving == "async" else None,
                success_topic_arn=success_topic(self, name, model, self._governance, self.data_key.arn),
                large_model=model.settings.large_model,
                governance=replace(governance, protect=False)), opts=child(self))
            yield
        return endpoints

    def _monitoring(self, models: list[ServedModel]) -> Generator[None, None, dict[str, ModelMonitor]]:
        name, key = self._name, self.data_key.arn
        monitors = {}
        for model in [m for m in models if m.monitored]:
            monitors[model.name] = ModelMonitor(monitor_component(name, model.name), model.settings.monitoring,
                                                MonitorContext(
                endpoint_name=endpoint_component(name, model.name), capture_s3_uri=self.endpoints[model.name].data_capture_uri,
                reports_bucket=self.capture, model_name=self.endpoints[model.name].model_name, package_baseline=model.package_baseline,
                placement=self.placement(self._workloads), production=self._settings.production,
                capture_kms_key_arn=key, volume_kms_key_arn=key, output_kms_key_arn=key,
                alarm_topic_arn=self.alerts_topic_arn, region=self._settings.region, governance=self._governance),
                opts=child(self))
            yield
        return monitors

    # -- batch transform --------------------------------------------------------------------------------------------

    def _batch_transforms(self, batch: list[ScoringModel]) -> dict[str, BatchTransform]:
        """Datasets in, inference results out, in the workloads' group (or one of their own), failures told."""
        return {b.name: BatchTransform(names.batch_transform_component(self._name, b.name), b.settings, BatchTransformContext(
            pipeline_name=batch_pipeline_name(self._settings.environment, b.name), artifact=b.artifact,
            image_uri=b.image_uri, input_bucket=self.datasets, output_bucket=self.inference,
            placement=self.placement(self._workloads), alerts_topic_arn=self.alerts_topic_arn,
            kms_key_arn=self.data_key.arn, region=self._settings.region, governance=self._governance),
            opts=child(self)) for b in batch}
