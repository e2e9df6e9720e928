"""What a `FeatureStore` takes: its feature groups' settings (a stack file's `feature_groups`) and its context.

The name rules are CreateFeatureGroup's own (botocore's `FeatureGroupName` and `FeatureName` shapes and
the API's documentation); tests/test_feature_store.py checks them against botocore, so previews do not
pay for importing it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Optional

import pulumi
from pydantic import Field, field_validator, model_validator

from emlops.components.settings import Governance, Settings

if TYPE_CHECKING:
    from emlops.components.storage import SecureBucket

# CreateFeatureGroup: FeatureGroupName and FeatureName (same rule; the pattern alone allows more
# than 64 characters through repeated '-'/'_', so the length is checked too).
FEATURE_GROUP_NAME_PATTERN = "[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}"
FEATURE_NAME_PATTERN = "[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}"
MAX_NAME_LENGTH = 64
MAX_FEATURES = 2500
MAX_DESCRIPTION = 128
FEATURE_TYPES = ("Integral", "Fractional", "String")
# SageMaker adds these columns to every offline store table.
RESERVED_FEATURE_NAMES = ("is_deleted", "write_time", "api_invocation_time")
# EventTime is a Unix timestamp in seconds (Fractional) or an ISO-8601 string (String).
EVENT_TIME_TYPES = ("Fractional", "String")
TTL_UNITS = ("Hours", "Days")
OFFLINE_PREFIX = "feature-store/"
GLUE_CATALOG = "AwsDataCatalog"
_NAME_RULE = f"1-{MAX_NAME_LENGTH} ASCII letters, digits, '-' or '_', starting and ending with a letter or digit"

FeatureType = Literal["Integral", "Fractional", "String"]


def _valid_name(name: str, pattern: str) -> bool:
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and re.fullmatch(pattern, name) is not None


def check_feature_name(name: str) -> None:
    """CreateFeatureGroup's FeatureName rule and its reserved names."""
    if not _valid_name(name, FEATURE_NAME_PATTERN):
        raise ValueError(f"feature name {name!r} must be {_NAME_RULE}")
    # Offline tables are Glue tables, whose column names are lowercase: `Write_Time` is `write_time`.
    if name.lower() in RESERVED_FEATURE_NAMES:
        raise ValueError(f"feature name {name!r} is reserved by SageMaker Feature Store "
                         f"({', '.join(RESERVED_FEATURE_NAMES)}); rename it")


def check_feature_group_name(name: str) -> None:
    if not _valid_name(name, FEATURE_GROUP_NAME_PATTERN):
        raise ValueError(f"feature group name {name!r} must be {_NAME_RULE}")


def feature_group_name(store_name: str, group_name: str) -> str:
    """The SageMaker name of a group, `<feature store>-<group>`, checked against the API's limits."""
    if not _valid_name(store_name, FEATURE_GROUP_NAME_PATTERN):
        raise ValueError(f"feature store name {store_name!r} must be ASCII letters, digits, '-' or '_', "
                         "starting and ending with a letter or digit")
    joined = f"{store_name}-{group_name}"
    if len(joined) > MAX_NAME_LENGTH:
        raise ValueError(f"feature group name {joined!r} is {len(joined)} characters; SageMaker allows at most "
                         f"{MAX_NAME_LENGTH}: shorten the feature store name {store_name!r} or the group name "
                         f"{group_name!r}")
    return joined


def glue_name(name: str) -> str:
    """A Glue (and Athena) friendly name: lowercase, '_' instead of '-'."""
    return name.lower().replace("-", "_")



_NAME_SCHEMA = {"maxLength": MAX_NAME_LENGTH}


class FeatureSettings(Settings):
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


class FeatureGroupSettings(Settings):
    """One SageMaker feature group (`<environment feature store>-<name>` in SageMaker)."""

    name: str = Field(
        description="Group name: letters, digits, '-' or '_', starting and ending with a letter or digit. "
        "The SageMaker name adds the feature store's name in front (64 characters in all).",
        json_schema_extra={**_NAME_SCHEMA, "pattern": f"^{FEATURE_GROUP_NAME_PATTERN}$"},
    )
    description: str = Field("", description=f"Shown in the SageMaker console (at most {MAX_DESCRIPTION} "
                             "characters). Default: none.", json_schema_extra={"maxLength": MAX_DESCRIPTION})
    features: list[FeatureSettings] = Field(
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
    def _group(self) -> "FeatureGroupSettings":
        at = f"feature group {self.name!r}"
        if not self.features:
            raise ValueError(f"{at} needs at least one feature")
        if len(self.features) > MAX_FEATURES:
            raise ValueError(f"{at} has {len(self.features)} features; SageMaker allows at most {MAX_FEATURES}")
        names = [f.name.lower() for f in self.features]
        # (declaration order among names that differ only in case)
        repeated = sorted(dict.fromkeys(f.name for f in self.features if names.count(f.name.lower()) > 1),
                          key=str.lower)
        if repeated:
            raise ValueError(f"{at}: feature names must be unique (ignoring case); repeated: {', '.join(repeated)}")
        types = {f.name: f.type for f in self.features}
        for label in ("record_identifier", "event_time_feature"):
            if getattr(self, label) not in types:
                raise ValueError(f"{at}: {label} {getattr(self, label)!r} is not one of its features; declare it "
                                 "in features")
        event_type = types[self.event_time_feature]
        if event_type not in EVENT_TIME_TYPES:
            raise ValueError(f"{at}: event_time_feature {self.event_time_feature!r} is {event_type}; it must be "
                             "Fractional (Unix seconds) or String (ISO-8601)")
        if len(self.description) > MAX_DESCRIPTION:
            raise ValueError(f"{at}: description is {len(self.description)} characters; SageMaker allows at most "
                             f"{MAX_DESCRIPTION}")
        if not self.online.enabled and not self.offline.enabled:
            raise ValueError(f"{at} needs a store: enable online, offline or both")
        return self

    def ttl(self) -> Optional[dict]:
        """The online store's TTL as the API takes it (`{"unit": "Days", "value": 30}`), or None."""
        if self.online.ttl_hours:
            return {"unit": "Hours", "value": self.online.ttl_hours}
        if self.online.ttl_days:
            return {"unit": "Days", "value": self.online.ttl_days}
        return None


def check_feature_groups(store_name: str, groups: Sequence[FeatureGroupSettings]) -> Optional[tuple[str, str]]:
    """The first problem of a store's groups together as (key path under `feature_groups`, message), or None:
    names unique, also as Glue table names, and `<store>-<group>` within SageMaker's 64 characters."""
    names = [g.name for g in groups]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        return "", f"feature group names must be unique; repeated: {', '.join(repeated)}"
    tables: dict[str, str] = {}
    for group in groups:
        other = tables.setdefault(glue_name(group.name), group.name)
        if other != group.name:
            return "", (f"feature groups {other!r} and {group.name!r} would share the Glue table "
                        f"{glue_name(group.name)!r}; rename one")
    for index, group in enumerate(groups):
        try:
            feature_group_name(store_name, group.name)
        except ValueError as error:
            return f"[{index}].name", str(error)
    return None


@dataclass(frozen=True)
class FeatureStoreContext:
    """What the platform supplies to a `FeatureStore`."""

    kms_key_arn: Optional[pulumi.Input[str]] = None
    """Key of the online stores and of the offline store's objects. Default: a KMS key is created."""
    offline_bucket: Optional["SecureBucket"] = None
    """Bucket of the offline store (written under `feature-store/`). Default: a SecureBucket is created when a
    group has an offline store."""
    governance: Governance = field(default_factory=Governance)
    """Tags, the offline store role's permissions boundary, and protection of the groups (and a created key and
    bucket)."""
