"""Stack config sections for serving: `models` and `batch_transforms`, the network they run in, and the registry
they come from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, Optional
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from emlops.catalog.aws import has_gpu
from emlops.components.batch_transform_args import BatchTransformSettings
from emlops.components.endpoint_args import (ENVIRONMENT_MAX_ENTRIES, EndpointSettings, ShadowSettings,
                                             check_environment_names, printable_key)
from emlops.components.locations import check_s3_uri
from emlops.components.model_card import ModelCardSettings
from emlops.components.settings import AtKey, Settings
from emlops.components.monitoring_args import MonitoringSettings
from emlops.components.retraining_args import RetrainingSettings
from emlops.components.registry_args import RegistrySettings

MODEL_NAME = r"^[a-z0-9](-?[a-z0-9])*$"
# botocore's TrackingServerArn and MlflowAppArn (SageMaker), with the names of TrackingServerName.
SAGEMAKER_ARN_PREFIX = r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:"
TRACKING_SERVER_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"
TRACKING_SERVER_ARN = re.compile(
    rf"^{SAGEMAKER_ARN_PREFIX}(mlflow-tracking-server/{TRACKING_SERVER_NAME}|mlflow-app/[A-Za-z0-9-]+)$")
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_URL_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def tracking_uri_problem(uri: str) -> Optional[str]:
    """What is wrong with `uri` as the MLflow tracking server of a deploy, or None.

    The deploy serves whatever artifact the server names for a `models:/` reference, so it must reach the server it
    means: over TLS (plain http lets anyone on the network path answer, and read the credentials), at a SageMaker
    tracking server ARN, or on the deploying machine itself (a port-forward or tunnel does its own transport).
    """
    allowed = ("must be a SageMaker MLflow tracking server ARN (arn:aws:sagemaker:<region>:<account>:"
               "mlflow-tracking-server/<name>) or an https:// URL of an MLflow server")
    if any(char.isspace() or not char.isprintable() for char in uri):
        return allowed + " (no spaces or control characters)"
    if uri.startswith("arn:"):
        return None if TRACKING_SERVER_ARN.match(uri) else allowed
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return allowed
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return allowed
    if parts.username is not None or parts.password is not None:
        return ("must not hold credentials; the deploy gives them to MLflow as MLFLOW_TRACKING_TOKEN or "
                "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD")
    if parts.query or parts.fragment or (port is None and ":" in parts.netloc.rsplit("]", 1)[-1]):
        return allowed + " (no query, fragment or empty port)"
    if parts.hostname not in _LOOPBACK_HOSTS and not _URL_HOST.match(parts.hostname):
        return allowed + f" (host {parts.hostname!r} is not a DNS name)"
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        return ("must be https:// (plain http:// lets anyone on the network path choose the model the deploy serves "
                "and read its MLflow credentials; http:// is allowed only to localhost, 127.0.0.1 or [::1])")
    return None


# Keys of the `emlops` config namespace that hold a model's secret environment values (`emlops:<key>`).
SECRET_CONFIG_KEY = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,99}$")
RESERVED_CONFIG_KEYS = ("platform", "mlflowBackendStoreUri")
# Environment variable names that say their value is a secret (a word of the name, as in DB_PASSWORD, HF_TOKEN).
_SECRET_WORDS = {"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL", "CREDENTIALS",
                 "PRIVATEKEY"}
_SECRET_PAIRS = {("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("AUTH", "KEY"), ("CLIENT", "SECRET")}


def check_plain_environment(environment: Mapping[str, str], advice: str) -> None:
    """AtKey at the first variable whose name says it holds a secret (an `arn:` value names a secret in Secrets
    Manager, it is not one); `advice` (with `{name}`) says where the secret goes instead."""
    for name, value in environment.items():
        word = secret_looking_name(name)
        if word is not None and not value.startswith("arn:"):
            raise AtKey(f"environment.{printable_key(name)}", (
                f"looks like a secret ({word} in its name); environment values are plaintext in the stack file, the "
                f"plan and the Pulumi state: {advice.format(name=name)}"))


def check_image_for_source(source: "ModelSourceConfig", image: Optional["ImageConfig"]) -> None:
    """A model package names its own image; anything else needs one."""
    package = source.model_package_group or source.model_package_arn
    if package and image:
        raise ValueError("a model package names its own image; drop image")
    if not package and not image:
        raise ValueError("image is required unless the source is a model package")


def secret_looking_name(name: str) -> Optional[str]:
    """The word of an environment variable name that says it holds a secret (`PASSWORD` in `DB_PASSWORD`), or
    None. Words are what `_`, `-` and `.` separate; plurals such as `MAX_TOTAL_TOKENS` are counts, not secrets."""
    words = [word for word in re.split(r"[_.-]+", name.upper()) if word]
    for word in words:
        if word in _SECRET_WORDS:
            return word
    for pair in zip(words, words[1:]):
        if pair in _SECRET_PAIRS:
            return "_".join(pair)
    return None


def mlflow_reference(description: str) -> Optional[str]:
    """A setting naming an MLflow registered model version: `models:/<name>@<alias>` or `models:/<name>/<version>`."""
    return Field(None, pattern=r"^models:/[^/@\s]+(@[A-Za-z0-9_-]+|/[0-9]+)$", description=description,
                 json_schema_extra={"errorMessage": "must be 'models:/<name>@<alias>' or 'models:/<name>/<version>'"})


def package_group_name(description: str) -> Optional[str]:
    """A setting naming a SageMaker model package group."""
    return Field(None, pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description=description,
                 json_schema_extra={"errorMessage": "must be a SageMaker model package group name"})


def check_exactly_one(settings: Settings, keys: tuple[str, ...]) -> None:
    """ValueError unless exactly one of `keys` is set on `settings` (naming the ones that are)."""
    given = [key for key in keys if getattr(settings, key)]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(keys)}" + (f" (got {', '.join(given)})" if given else ""))


class ModelSourceConfig(Settings):
    """Where the model artifact comes from: exactly one of the four keys."""

    mlflow: Optional[str] = mlflow_reference(
        "MLflow registry reference, `models:/<name>@<alias>` or `models:/<name>/<version>`, resolved against "
        "`registry.mlflow_tracking_uri` when the stack is previewed or deployed.")
    model_package_group: Optional[str] = package_group_name(
        "SageMaker model package group: its latest `Approved` package is deployed.")
    model_package_arn: Optional[str] = Field(
        None, pattern=r"^arn:aws(-cn|-us-gov)?:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[A-Za-z0-9_-]{1,63}/[0-9]+$",
        description="A pinned SageMaker model package version (must be `Approved`).",
        json_schema_extra={"errorMessage": "must be a model package ARN, "
                           "arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>"},
    )
    s3_uri: Optional[str] = Field(
        None, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+(\.tar\.gz|/)$",
        description="Explicit model artifact: a `.tar.gz` object or an S3 prefix ending in `/`.",
        json_schema_extra={"errorMessage": "must be s3://<bucket>/<key>.tar.gz or an S3 prefix ending in '/'"},
    )

    @field_validator("s3_uri")
    @classmethod
    def _s3_rules(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            check_s3_uri(value, prefix=True)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "ModelSourceConfig":
        check_exactly_one(self, ("mlflow", "model_package_group", "model_package_arn", "s3_uri"))
        return self


class ChallengerSourceConfig(Settings):
    """The challenger a shadow variant serves, named in the registry the model's own source uses, so that
    `emlops promote` can make it the champion there: exactly one of the two keys."""

    mlflow: Optional[str] = mlflow_reference(
        "MLflow reference of the challenger, e.g. `models:/churn@challenger`, of the same registered model as "
        "`source.mlflow`.")
    model_package_group: Optional[str] = package_group_name(
        "SageMaker model package group (the same as `source.model_package_group`): its newest package pending "
        "manual approval is the challenger.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "ChallengerSourceConfig":
        check_exactly_one(self, ("mlflow", "model_package_group"))
        return self


class ShadowConfig(ShadowSettings):
    """A shadow test: the shadow variant's settings and the challenger it serves."""

    challenger: ChallengerSourceConfig = Field(description="The model the shadow variant serves.")


# Large-model inference images of the SageMaker SDK's catalogue: Hugging Face TGI and DJL LMI (GPU only).
LLM_FRAMEWORKS = ("huggingface-llm", "djl-lmi")


class ImageConfig(Settings):
    """The inference container: a SageMaker framework image for the stack's region, or your own ECR image."""

    framework: Optional[Literal["xgboost", "sklearn", "pytorch", "tensorflow", "huggingface", "huggingface-llm",
                                "djl-lmi"]] = Field(
        None, description="Built-in framework whose image URI comes from the SageMaker SDK's catalogue; "
        "`huggingface-llm` (Text Generation Inference) and `djl-lmi` (DJL large-model inference) are large-model "
        "images that run on GPU instances.")
    framework_version: Optional[str] = Field(None, description="Framework version, e.g. `1.7-1` for xgboost, `3.3.6` "
                                             "for huggingface-llm, `0.33.0` for djl-lmi.")
    python_version: Optional[str] = Field(None, description="Python version tag (`py3`, `py310`) where the "
                                          "framework needs one. Default: the SDK's default.")
    base_framework_version: Optional[str] = Field(None, description="For huggingface: the framework underneath, "
                                                  "e.g. `pytorch2.6.0`. Default: none.")
    uri: Optional[str] = Field(
        None, pattern=r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$",
        description="Your own image in ECR (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`).",
        json_schema_extra={"errorMessage": "must be an ECR image URI, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"},
    )

    @model_validator(mode="after")
    def _framework_or_uri(self) -> "ImageConfig":
        if bool(self.framework) == bool(self.uri):
            raise ValueError("give either framework (with framework_version) or uri")
        if self.framework and not self.framework_version:
            raise ValueError(f"framework {self.framework!r} needs a framework_version")
        return self


class ModelIdentity(Settings):
    """Which model a `models[]` entry serves: its name, where it comes from and its image (listed first)."""

    name: str = Field(pattern=MODEL_NAME, max_length=32,
                      description="Model name (lowercase letters, digits, single '-'); used in resource names.",
                      json_schema_extra={"errorMessage": "must be lowercase letters and digits, single '-' between"})
    source: ModelSourceConfig = Field(description="Where the model artifact comes from.")
    image: Optional[ImageConfig] = Field(None, description="Inference container; not used with a model package "
                                         "source (the package names its image).")


# EndpointSettings first in the bases puts ModelIdentity's keys first in the schema and in error messages.
class ModelConfig(EndpointSettings, ModelIdentity):
    """One model and the SageMaker endpoint that serves it: the endpoint's own settings, plus where the model
    comes from, its image, and how it is monitored and retrained."""

    secret_environment: dict[str, str] = Field(
        default_factory=dict,
        description="Container environment variables whose values are secrets: variable name to a key of the "
        "`emlops` config namespace, set with `pulumi config set --secret emlops:<key> <value>` (e.g. "
        "`DB_PASSWORD: churnDbPassword`). The program reads them as Pulumi secrets; the plan shows `[secret]`. "
        "Default: none.")
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings,
                                         description="Data-quality monitoring of the captured traffic.")
    retraining: RetrainingSettings = Field(default_factory=RetrainingSettings,
                                         description="A retraining pipeline started on drift or on a schedule.")
    shadow: Optional[ShadowConfig] = Field(None, description="A shadow test: a challenger served on a copy of the "
                                           "production traffic, both captured; `emlops promote` makes it the champion. "
                                           "Default: none.")
    model_card: Optional[ModelCardSettings] = Field(None, description="The model's SageMaker model card, linked to its "
                                                    "package group; production needs one with a risk rating. Default: none.")

    def monitored(self, environment: str) -> bool:
        """Whether a monitor compares the captured data with a baseline (never for multi-model endpoints, which
        SageMaker Model Monitor does not support)."""
        return self.mode != "multi_model" and self.monitoring.is_enabled(self.captures_data(environment))

    @property
    def large_model(self) -> bool:
        """The image is a large-model inference image (GPU only)."""
        return self.image is not None and self.image.framework in LLM_FRAMEWORKS

    @model_validator(mode="after")
    def _modes_fit_the_source(self) -> "ModelConfig":
        """Multi-model endpoints serve a prefix, shadows promote through the source's registry, large-model
        images need GPUs."""
        if self.mode == "multi_model":
            if not (self.source.s3_uri and self.source.s3_uri.endswith("/")):
                raise AtKey("source", "mode multi_model serves every model archive under one S3 prefix: give "
                            "source.s3_uri ending in '/'")
            if self.monitoring.enabled:
                raise AtKey("monitoring.enabled", "SageMaker Model Monitor does not monitor multi-model endpoints; "
                            "drop monitoring (data capture still records requests and responses)")
        if self.shadow is not None:
            self._check_challenger()
        if self.large_model:
            framework = self.image.framework
            if self.serverless is not None:
                raise AtKey("serverless", f"{framework} images run on GPU instances and serverless endpoints have "
                            "none; use variants with a GPU instance type (ml.g5, ml.g6, ml.p4d, ...)")
            keys = [f"variants[{i}].instance_type" for i in range(len(self.variants))] + ["shadow.instance_type"]
            for key, instance_type in zip(keys, self.instance_types):
                if not has_gpu(instance_type):
                    raise AtKey(key, f"{instance_type!r} has no GPU; {framework} images run on GPU instances "
                                "(ml.g5, ml.g6, ml.p4d, ...)")
        return self

    def _check_challenger(self) -> None:
        challenger, source = self.shadow.challenger, self.source
        if challenger.mlflow is not None:
            name = challenger.mlflow.split("/")[1].split("@")[0]
            if not (source.mlflow and "@" in source.mlflow and source.mlflow.split("/")[1].split("@")[0] == name):
                raise AtKey("shadow.challenger.mlflow", f"emlops promote moves the source's alias to the challenger: "
                            f"source.mlflow must be an alias of the same registered model (models:/{name}@<alias>)")
            if challenger.mlflow == source.mlflow:
                raise AtKey("shadow.challenger.mlflow", f"is the source itself ({source.mlflow}); name the "
                            "challenger's alias, e.g. models:/{0}@challenger".format(name))
        elif challenger.model_package_group != source.model_package_group:
            raise AtKey("shadow.challenger.model_package_group", "emlops promote approves the challenger in the "
                        "source's group: source.model_package_group must be the same group "
                        f"({challenger.model_package_group!r})")

    def captures_data(self, environment: str) -> bool:
        """Whether the endpoint captures data (on by default except in `dev` and for serverless)."""
        if self.data_capture.enabled is not None:
            return self.data_capture.enabled
        return self.serverless is None and environment != "dev"

    @model_validator(mode="after")
    def _image_of_the_source(self) -> "ModelConfig":
        check_image_for_source(self.source, self.image)
        package = self.source.model_package_group or self.source.model_package_arn
        for key in ("environment", "secret_environment"):
            if package and getattr(self, key):
                raise AtKey(key, "a model package names its own container and environment; drop it")
        return self

    @model_validator(mode="after")
    def _secrets_stay_secret(self) -> "ModelConfig":
        """Secret-looking variables are refused in `environment`; `secret_environment` names config keys."""
        check_plain_environment(self.environment, "move it to secret_environment ({name}: <config key>) and set the "
                                "key with `pulumi config set --secret emlops:<config key> <value>`")
        check_environment_names(list(self.secret_environment), at="secret_environment.")
        total = len(self.environment) + len(self.secret_environment)
        if total > ENVIRONMENT_MAX_ENTRIES:
            raise ValueError(f"environment and secret_environment hold {total} variables; SageMaker allows at most "
                             f"{ENVIRONMENT_MAX_ENTRIES} in a container's environment (CreateModel)")
        for name, key in self.secret_environment.items():
            at = f"secret_environment.{printable_key(name)}"
            if name in self.environment:
                raise AtKey(at, "is also in environment; a variable is either plain or secret")
            if not SECRET_CONFIG_KEY.match(key) or key in RESERVED_CONFIG_KEYS:
                raise AtKey(at, f"{key!r} is not a config key for a secret: letters, digits, '_' or '-', starting "
                            f"with a letter (the value is set with `pulumi config set --secret emlops:<key>`), not "
                            f"{' or '.join(RESERVED_CONFIG_KEYS)}")
        return self


class BatchTransformIdentity(Settings):
    """Which batch transform an entry is and which model it runs (listed first)."""

    name: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
                      description="Batch transform name (a SageMaker name); its pipeline is `<environment>-<name>`.",
                      json_schema_extra={"errorMessage": "must be a SageMaker name: 1-63 letters, digits and '-', "
                                         "starting and ending with a letter or digit"})
    source: ModelSourceConfig = Field(description="The model it runs, as a model's `source`: the latest `Approved` "
                                      "package of a group, a pinned package, an MLflow model or an S3 artifact.")
    image: Optional[ImageConfig] = Field(None, description="Inference container of an MLflow model or S3 artifact; "
                                         "not used with a model package source (the package names its image).")


# BatchTransformSettings first in the bases puts BatchTransformIdentity's keys first in the schema and in errors.
class BatchTransformConfig(BatchTransformSettings, BatchTransformIdentity):
    """One `batch_transforms[]` entry: the batch transform's own settings, plus its name and the model it runs."""

    @model_validator(mode="after")
    def _image_and_environment(self) -> "BatchTransformConfig":
        check_image_for_source(self.source, self.image)
        check_plain_environment(self.environment, "pass the arn: of a Secrets Manager secret the container reads "
                                "at start instead")
        return self


class RegistryConfig(RegistrySettings):
    """The model registry: the registry component's own settings, plus which registry the stack deploys from and
    registers into (its own, or a shared-services stack's) and where `models:/...` references are looked up."""

    shared_stack: Optional[str] = Field(
        None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$",
        description="Stack (in this project) of the shared-services registry this environment deploys from and "
        "registers into, e.g. `shared`: `source.model_package_group` and retraining name its groups, and the "
        "environment reads its outputs through a stack reference. Default: the stack's own registry.",
        json_schema_extra={"errorMessage": "must be a stack name of this project, e.g. 'shared'"})
    mlflow_tracking_uri: Optional[str] = Field(
        None, description="MLflow tracking server that `models:/...` sources are resolved against when the stack is "
        "deployed: a SageMaker MLflow tracking server ARN (`arn:aws:sagemaker:<region>:<account>:"
        "mlflow-tracking-server/<name>`), or the `https://` URL of a self-hosted server, without credentials (the "
        "deploy gives them as `MLFLOW_TRACKING_TOKEN` or `MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`); "
        "plain `http://` only to this machine (`localhost`, `127.0.0.1`, `[::1]`, e.g. a port-forward). "
        "Default: none.")

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _tracking_server(cls, uri: Optional[str]) -> Optional[str]:
        if uri is not None:
            problem = tracking_uri_problem(uri)
            if problem:
                raise ValueError(f"{problem}, got {uri!r}")
        return uri

    @model_validator(mode="after")
    def _shared_or_own(self) -> "RegistryConfig":
        own = [key for key in ("consumer_account_ids", "publisher_account_ids", "package_groups",
                               "image_repositories") if getattr(self, key)]
        if self.shared_stack is not None and own:
            raise ValueError(f"{', '.join(own)} belong to the shared stack {self.shared_stack!r} when shared_stack "
                             "is set (this stack holds no package groups)")
        return self
