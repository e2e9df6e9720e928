"""What a `DataPipeline` takes: its settings (a stack file's `data_pipelines[]` entry) and its context.

    data_pipelines:
      - name: customers
        feature_group: customers                 # one of the stack's feature_groups
        landing_prefix: landing/customers/       # of the datasets bucket
        start_on_new_data: true
        schedule: cron(0 4 * * ? *)
        validation:
          constraints_s3_uri: s3://acme-ml-baselines/customers/constraints.json
        transformation:
          image: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/customers-features:2.1.0

Everything a run writes is under `data-pipelines/<name>/` of the datasets bucket: `batches/<run>/` (what it claimed
from the landing prefix), `claims/` (a marker per landed object version a run claimed), `reports/<run>/` (the
analyzer's), `transformed/<run>/` (the features it ingests) and
`quarantine/<run>/` (a batch that failed validation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.api_limits import check_instance_type
from emlops.components.batch_transform_args import KEY_PREFIX, KEY_PREFIX_HELP, overlap
from emlops.components.kms import KmsSettings
from emlops.components.locations import S3ObjectUri, check_key_prefix
from emlops.components.retraining_args import _ECR_IMAGE
from emlops.components.schedules import check_eventbridge_schedule
from emlops.components.settings import (AtKey, Governance, Placement, Settings, check_log_retention,
                                         error_message)
from emlops.components.storage import LifecycleRule

if TYPE_CHECKING:
    from emlops.components.network_access import EndpointEgress
    from emlops.components.storage import SecureBucket

PIPELINES_FOLDER = "data-pipelines/"
"""Where every data pipeline keeps its batches, claims, reports, transformed features and quarantine."""
RESERVED_FOLDERS = (PIPELINES_FOLDER, "feature-store/", "athena-results/")
"""Prefixes of the datasets bucket the platform writes itself (no landing prefix may overlap one)."""
_NAME = r"^[a-z0-9](-?[a-z0-9]){0,31}$"
_IMAGE_HELP = "must be an ECR image URI with a tag, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>"


CLAIMS_KEPT_DAYS = 7
"""Days a claim marker is kept: a run needs it only until it moved the object (minutes), or until a later run took
a dead run's claim over (15 minutes); a week leaves time to see which run claimed what."""


def claims_lifecycle_rule(name: str) -> LifecycleRule:
    """The datasets bucket's rule that expires pipeline `name`'s claim markers (and their old versions)."""
    return LifecycleRule(id=f"expire-{name}-claims", prefix=run_folder(name, "claims"),
                         expiration_days=CLAIMS_KEPT_DAYS, noncurrent_version_expiration_days=1)


def run_folder(name: str, kind: str) -> str:
    """`data-pipelines/<name>/<kind>/`: batches, claims, reports, transformed or quarantine."""
    return f"{PIPELINES_FOLDER}{name}/{kind}/"


class ValidationSettings(Settings):
    """The validation step: SageMaker Model Monitor's analyzer checks the batch against declared constraints."""

    constraints_s3_uri: S3ObjectUri = Field(description="The constraints the batch must meet, in the analyzer's "
                                            "`constraints.json` format (a baselining job writes one; edit it to "
                                            "declare what is allowed), e.g. `s3://ml-baselines/customers/"
                                            "constraints.json`.",
                                            json_schema_extra=error_message("must be an S3 object URI, "
                                                                            "s3://<bucket>/<key>"))
    dataset_format: Literal["csv", "json"] = Field("csv", description="Format of the landed objects: CSV with a "
                                                   "header line, or JSON Lines. Default: csv.")
    instance_type: str = Field("ml.m5.xlarge", description="Instance type of the analyzer's processing job "
                               "(botocore's `ProcessingInstanceType`). Default: ml.m5.xlarge.")
    volume_size_gb: int = Field(30, ge=1, le=16384, description="Volume of the analyzer's instance in GB. "
                                "Default: 30.")
    max_runtime_minutes: int = Field(60, ge=1, le=1440, description="Longest the analyzer may run, in minutes. "
                                     "Default: 60.")

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return check_instance_type(value, "processing")


class TransformationSettings(Settings):
    """The transformation step: the team's processing image turns a validated batch into feature records."""

    image: Optional[str] = Field(None, pattern=_ECR_IMAGE, description="ECR image of the transformation, with a tag "
                                 "or digest. It reads the batch under `/opt/ml/processing/input` and writes CSV "
                                 "files with a header line of feature names to `/opt/ml/processing/output`. "
                                 "Required.", json_schema_extra=error_message(_IMAGE_HELP))
    command: list[str] = Field(["python3", "/opt/program/transform.py"], min_length=1,
                               description="Entrypoint of the transformation. Default: "
                               "`python3 /opt/program/transform.py`.")
    instance_type: str = Field("ml.m5.xlarge", description="Instance type of the transformation's processing job. "
                               "Default: ml.m5.xlarge.")
    volume_size_gb: int = Field(30, ge=1, le=16384, description="Volume of its instance in GB. Default: 30.")
    max_runtime_minutes: int = Field(60, ge=1, le=1440, description="Longest it may run, in minutes. Default: 60.")
    network_isolation: bool = Field(True, description="Run the container without network access (it reads and "
                                    "writes only through SageMaker's S3 channels). Default: true.")

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        return check_instance_type(value, "processing")


class DataPipelineSettings(Settings):
    """One dataset's path into the feature store: a SageMaker pipeline (built by the SageMaker SDK) that claims what
    landed under `landing_prefix`, validates it, quarantines it when it fails, transforms it with the team's image
    and ingests it into `feature_group`; started when data lands and/or on a schedule; failed runs notify the
    alerts topic."""

    name: str = Field(pattern=_NAME, description="Pipeline name: 1-32 lowercase letters, digits and single '-'. "
                      "Its SageMaker pipeline is `<environment>-<name>-data`.",
                      json_schema_extra=error_message("must be 1-32 lowercase letters, digits and single '-', "
                                                      "starting and ending with a letter or digit"))
    feature_group: str = Field(description="The feature group (one of the stack's `feature_groups`) the records "
                               "are ingested into.")
    landing_prefix: str = Field(pattern=KEY_PREFIX, max_length=256, description="Key prefix of the datasets bucket "
                                "where producers land batches, e.g. `landing/customers/`; not `data-pipelines/`, "
                                "`feature-store/` or `athena-results/`, which the platform writes.",
                                json_schema_extra=error_message(KEY_PREFIX_HELP))
    start_on_new_data: bool = Field(True, description="Start a run when an object is created under "
                                    "`landing_prefix` (S3 events through EventBridge; a run claims everything that "
                                    "landed, later runs find nothing and end). Default: true.")
    schedule: Optional[str] = Field(None, description="EventBridge schedule that also starts a run, e.g. "
                                    "`cron(0 4 * * ? *)`. Default: none.")
    quarantine: bool = Field(True, description="Move a batch that fails validation to "
                             "`data-pipelines/<name>/quarantine/<run>/` (else it stays in its batch folder). "
                             "Required in production. Default: true.")
    log_retention_days: int = Field(365, description="Days the logs of the claim, gate and ingest steps (the "
                                    "pipeline's Lambda function) are kept in their own KMS-encrypted log group, "
                                    "`/emlops/data-pipelines/<environment>-<name>-data` (a CloudWatch Logs "
                                    "retention). Default: 365.")
    validation: ValidationSettings = Field(description="The validation step.")
    transformation: TransformationSettings = Field(default_factory=TransformationSettings,
                                                   description="The transformation step (its image is required).")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: Optional[str]) -> Optional[str]:
        return value if value is None else check_eventbridge_schedule(value)

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        return check_log_retention(value)

    @field_validator("landing_prefix")
    @classmethod
    def _landing(cls, value: str) -> str:
        check_key_prefix(value)
        for folder in RESERVED_FOLDERS:
            if overlap(value, folder):
                raise ValueError(f"{value!r} overlaps {folder!r}, which the platform writes; choose another prefix")
        return value

    @model_validator(mode="after")
    def _complete(self) -> "DataPipelineSettings":
        if self.transformation.image is None:
            raise AtKey("transformation.image", "field required: the transformation step runs the team's "
                        "processing image (an ECR image URI with a tag)")
        if self.schedule is None and not self.start_on_new_data:
            raise AtKey("start_on_new_data", "nothing would start the pipeline: keep start_on_new_data true or give "
                        "a schedule")
        return self


def pipeline_name(environment: str, name: str) -> str:
    """`<environment>-<name>-data`: the data pipeline's SageMaker pipeline, the name `emlops ingest` starts."""
    return f"{environment}-{name}-data"


@dataclass(frozen=True)
class DataPipelineContext:
    """What the platform supplies to a `DataPipeline`."""

    pipeline_name: str
    """SageMaker pipeline name; the platform uses `<environment>-<name>-data` (`pipeline_name(...)`)."""
    datasets_bucket: "SecureBucket"
    """The bucket of the landing prefix and of `data-pipelines/<name>/`; its key encrypts what the steps write."""
    feature_group_name: pulumi.Input[str]
    """SageMaker name of the feature group the records go to."""
    feature_group_arn: pulumi.Input[str]
    placement: Placement
    """Private subnets (and security groups) of the processing jobs and the Lambda steps."""
    alerts_topic_arn: pulumi.Input[str]
    """SNS topic told when a run fails (a quarantined batch fails its run); EventBridge must be able to publish."""
    endpoint_egress: Optional["EndpointEgress"] = None
    """Where the jobs' and the function's HTTPS goes (the VPC endpoints) in a security group of the pipeline's own.
    Default: any address (a VPC you bring: its private subnets decide the route)."""
    feature_store_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the feature group's online store (the ingest step decrypts with it). Default: offline store only."""
    region: Optional[str] = None
    """Region of the analyzer image. Default: the region of the component's provider."""
    kms: KmsSettings = field(default_factory=KmsSettings)
    """Deletion window and rotation of the key of the function's log group. Default: 30 days, yearly rotation."""
    governance: Governance = field(default_factory=Governance)
    """Tags of every child, the roles' permissions boundary and path, and whether the log group and its key are
    protected and retained (production)."""

    def check(self) -> None:
        """ValueError in one line when the context cannot work (before anything is created)."""
        if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", self.pipeline_name):
            raise ValueError(f"pipeline_name {self.pipeline_name!r} must be letters, digits and '-' (at most 256)")
        if self.datasets_bucket.kms_key_arn is None:
            raise ValueError("the datasets bucket has no KMS key: the steps encrypt what they write with it")
