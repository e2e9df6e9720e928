"""Stack config section for the feature store: `feature_groups`, each a SageMaker feature group.

The checks are the component's own (`components.feature_store`), so a stack file and a program that
builds `FeatureStoreArgs` directly get the same one-line messages. The integrator adds
`feature_groups: list[FeatureGroupConfig]` to `PlatformConfig` and builds the component with
`feature_store_args(...)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Settings

from emlops.components.feature_store import (
    FEATURE_GROUP_NAME_PATTERN,
    FEATURE_NAME_PATTERN,
    MAX_DESCRIPTION,
    MAX_FEATURES,
    MAX_NAME_LENGTH,
    Feature,
    FeatureGroupSpec,
    FeatureStoreArgs,
    check_feature_group_name,
    check_feature_name,
    feature_group_name,
)

if TYPE_CHECKING:
    import pulumi

    from emlops.components.storage import SecureBucket

__all__ = ["FeatureConfig", "FeatureGroupConfig", "OfflineStoreSettings", "OnlineStoreSettings",
           "feature_groups_problem", "feature_store_args"]

_NAME_SCHEMA = {"maxLength": MAX_NAME_LENGTH}


class FeatureConfig(Settings):
    """One feature (column) of a feature group."""

    name: str = Field(
        description="Feature name: 1-64 letters, digits, '-' or '_', starting and ending with a letter or digit; "
        "not is_deleted, write_time or api_invocation_time (SageMaker adds those).",
        json_schema_extra={**_NAME_SCHEMA, "pattern": f"^{FEATURE_NAME_PATTERN}$"},
    )
    type: Literal["Integral", "Fractional", "String"] = Field(description="Feature type.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_feature_name(value)
        return value


class OnlineStoreSettings(Settings):
    """The online store: the latest record per identifier, for low-latency reads (KMS-encrypted)."""

    enabled: bool = Field(False, description="Keep an online store. Default: false (it is billed per use "
                          "and storage; the offline store serves training).")
    ttl_days: Optional[int] = Field(None, ge=1, description="Records expire this many days after their "
                                    "event time. Default: never.")
    ttl_hours: Optional[int] = Field(None, ge=1, description="Records expire this many hours after their "
                                     "event time (instead of ttl_days). Default: never.")

    @model_validator(mode="after")
    def _ttl(self) -> "OnlineStoreSettings":
        if self.ttl_days is not None and self.ttl_hours is not None:
            raise ValueError("give ttl_days or ttl_hours, not both")
        if (self.ttl_days is not None or self.ttl_hours is not None) and not self.enabled:
            raise ValueError("a TTL needs the online store: set enabled: true or drop the TTL")
        return self


class OfflineStoreSettings(Settings):
    """The offline store: every record, as an Iceberg table in S3 catalogued in Glue (KMS-encrypted)."""

    enabled: bool = Field(True, description="Keep an offline store. Default: true.")


class FeatureGroupConfig(Settings):
    """One SageMaker feature group (`<environment feature store>-<name>` in SageMaker)."""

    name: str = Field(
        description="Group name: letters, digits, '-' or '_', starting and ending with a letter or digit. "
        "The SageMaker name adds the feature store's name in front (64 characters in all).",
        json_schema_extra={**_NAME_SCHEMA, "pattern": f"^{FEATURE_GROUP_NAME_PATTERN}$"},
    )
    description: str = Field("", description=f"Shown in the SageMaker console (at most {MAX_DESCRIPTION} "
                             "characters). Default: none.", json_schema_extra={"maxLength": MAX_DESCRIPTION})
    features: list[FeatureConfig] = Field(
        description=f"The features, at most {MAX_FEATURES}, names unique ignoring case.",
        json_schema_extra={"minItems": 1, "maxItems": MAX_FEATURES},
    )
    record_identifier: str = Field(description="The feature that identifies a record (one of features).")
    event_time_feature: str = Field(description="The feature holding each record's event time (one of features, "
                                    "Fractional Unix seconds or an ISO-8601 String).")
    online: OnlineStoreSettings = Field(default_factory=OnlineStoreSettings,
                                        description="Online store. Default: off.")
    offline: OfflineStoreSettings = Field(default_factory=OfflineStoreSettings,
                                          description="Offline store. Default: on.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_feature_group_name(value)
        return value

    @model_validator(mode="after")
    def _group(self) -> "FeatureGroupConfig":
        self.to_spec()  # the component's checks, with its messages
        return self

    def to_spec(self) -> FeatureGroupSpec:
        """The component's description of this group."""
        ttl_unit, ttl_value = ("Hours", self.online.ttl_hours) if self.online.ttl_hours else ("Days", self.online.ttl_days)
        return FeatureGroupSpec(
            name=self.name,
            description=self.description,
            features=[Feature(f.name, f.type) for f in self.features],
            record_identifier=self.record_identifier,
            event_time_feature=self.event_time_feature,
            online_store=self.online.enabled,
            online_ttl_value=ttl_value,
            online_ttl_unit=ttl_unit,
            offline_store=self.offline.enabled,
        )


def feature_store_args(groups: Sequence[FeatureGroupConfig], tags: Mapping[str, str], protect: bool,
                       boundary: Optional[str], *, kms_key_arn: Optional["pulumi.Input[str]"] = None,
                       offline_bucket: Optional["SecureBucket"] = None) -> FeatureStoreArgs:
    """`FeatureStoreArgs` from the stack's `feature_groups` and the platform's tags, protection and boundary.

    Without `kms_key_arn` or `offline_bucket`, the feature store creates its own key and bucket.
    """
    return FeatureStoreArgs(
        feature_groups=[group.to_spec() for group in groups],
        kms_key_arn=kms_key_arn,
        offline_bucket=offline_bucket,
        permissions_boundary_arn=boundary,
        protect=protect,
        tags=dict(tags),
    )


def feature_groups_problem(store_name: str, groups: Sequence[FeatureGroupConfig]) -> Optional[tuple[str, str]]:
    """The first cross-group problem as (key path under the platform, message), or None.

    For `PlatformConfig`'s validator: names unique (also as Glue tables) and `<store>-<group>` within
    SageMaker's 64 characters, with the component's messages.
    """
    if not groups:
        return None
    try:
        FeatureStoreArgs(feature_groups=[group.to_spec() for group in groups])
    except ValueError as error:
        return "feature_groups", str(error)
    for index, group in enumerate(groups):
        try:
            feature_group_name(store_name, group.name)
        except ValueError as error:
            return f"feature_groups[{index}].name", str(error)
    return None
