"""Settings of the serving modes beyond real-time: asynchronous inference and shadow tests (`EndpointSettings`
embeds them; endpoint_args.py checks how they combine with the rest)."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, field_validator, model_validator

from emlops.components.api_limits import check_instance_type
from emlops.components.locations import check_key_prefix
from emlops.components.settings import AtKey, Settings, error_message

SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"


class AsyncInferenceSettings(Settings):
    """Asynchronous inference: requests queue at the endpoint, responses and failures are written to S3 (the
    platform's inference bucket, KMS-encrypted), successes and errors are announced on SNS."""

    output_prefix: str = Field(description="Key prefix in the platform's inference bucket under which responses "
                               "(`<output_prefix>responses/`) and failures (`<output_prefix>failures/`) are written, "
                               "e.g. `async/doc-scoring/`.")
    input_prefix: Optional[str] = Field(None, description="Key prefix in the inference bucket where callers upload "
                                        "request payloads (InvokeEndpointAsync's InputLocation); the model reads only "
                                        "there. Default: `<output_prefix>requests/`.")
    max_concurrent_invocations_per_instance: int = Field(
        4, ge=1, le=1000, description="Requests one instance works on at a time (SageMaker's "
        "`MaxConcurrentInvocationsPerInstance`, 1-1000). Default: 4.")
    target_backlog_per_instance: int = Field(
        5, ge=1, le=100_000, description="Queued requests per instance that autoscaling holds "
        "(`ApproximateBacklogSizePerInstance`). Default: 5.")
    notify_success: bool = Field(True, description="Announce each response on a KMS-encrypted topic of its own "
                                 "(`<endpoint>-async-success`, for the callers to subscribe to). Failures always go "
                                 "to the environment's alerts topic. Default: true.")

    @field_validator("output_prefix", "input_prefix")
    @classmethod
    def _prefix(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_key_prefix(value)

    @model_validator(mode="after")
    def _apart(self) -> "AsyncInferenceSettings":
        written = (self.responses_prefix, self.failures_prefix)
        if any(self.requests_prefix.startswith(p) or p.startswith(self.requests_prefix) for p in written):
            raise AtKey("input_prefix", f"{self.requests_prefix!r} overlaps where responses and failures are written "
                        f"({', '.join(written)}); the model reads requests and writes results in separate prefixes")
        return self

    @property
    def requests_prefix(self) -> str:
        return self.input_prefix or f"{self.output_prefix}requests/"

    @property
    def responses_prefix(self) -> str:
        return f"{self.output_prefix}responses/"

    @property
    def failures_prefix(self) -> str:
        return f"{self.output_prefix}failures/"


class ShadowSettings(Settings):
    """A shadow variant: a challenger model that receives a copy of the production variant's requests; its
    responses are captured (with the production variant's) but never returned to callers."""

    variant_name: str = Field("shadow", pattern=SAGEMAKER_NAME,
                              description="Name of the shadow variant. Default: shadow.",
                              json_schema_extra=error_message("must be 1-63 letters, digits or '-', starting and "
                                                              "ending with a letter or digit"))
    instance_type: Optional[str] = Field(None, description="Instance type of the shadow variant. Default: the "
                                         "production variant's.")
    initial_instance_count: int = Field(1, ge=1, le=100, description="Instances of the shadow variant. Default: 1.")
    traffic_percent: int = Field(100, ge=1, le=100, description="Share of production requests copied to the "
                                 "shadow variant, in percent. Default: 100.")

    @field_validator("instance_type")
    @classmethod
    def _known_instance_type(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_instance_type(value, "hosting")
