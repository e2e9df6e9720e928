"""Training from the feature store: a retraining pipeline's training set, read point in time from feature groups'
offline stores through Athena (a stack file's `models[].retraining.features`).

    retraining:
      features:
        feature_groups: [customers, churn-labels]   # of the stack's feature_groups, offline stores
        label: churned                              # a feature of one of them (its group holds the labelled events)

The label's group gives the examples: every record (identifier, event time, label) not deleted. Each other group
gives, per example, its latest record with the same identifier whose event time is not after the example's
(`FeatureSource.query`): what was known when the label was observed, never what came after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import pulumi
from pydantic import Field

from emlops.components.feature_store_args import FeatureGroupSettings, glue_name
from emlops.components.settings import Settings

ATHENA_CATALOG = "AwsDataCatalog"


class TrainingFeaturesSettings(Settings):
    """Where retraining takes its training set from instead of a raw prefix: feature groups and the label."""

    feature_groups: list[str] = Field(min_length=1, description="Feature groups (names in the stack's "
                                      "`feature_groups`, each with an offline store and the same record identifier) "
                                      "whose features make the training set.")
    label: str = Field(description="The feature to predict: a feature of one of `feature_groups`, whose records are "
                       "the training examples.")

    def problem(self, groups: Sequence[FeatureGroupSettings]) -> Optional[tuple[str, str]]:
        """(key under `features`, message) of the first thing the stack's groups cannot give, or None."""
        known = {group.name: group for group in groups}
        for index, name in enumerate(self.feature_groups):
            if name not in known:
                return f"feature_groups[{index}]", (f"{name!r} is not one of the stack's feature_groups "
                                                    f"({', '.join(known) or 'none'}); declare it in feature_groups "
                                                    "or name one of them")
            if not known[name].offline.enabled:
                return f"feature_groups[{index}]", (f"{name!r} has no offline store, where training sets are read "
                                                    "from; enable offline on it")
        chosen = [known[name] for name in self.feature_groups]
        features = [f.name for group in chosen for f in group.features]
        if self.label not in features:
            return "label", (f"{self.label!r} is not among the features of {', '.join(self.feature_groups)} "
                             f"({', '.join(features)}); name one of them")
        identifiers = sorted({group.record_identifier for group in chosen})
        if len(identifiers) > 1:
            return "feature_groups", (f"the groups are joined on their record identifier, and theirs differ "
                                      f"({', '.join(identifiers)}); name groups with the same record identifier")
        return None


@dataclass(frozen=True)
class FeatureTable:
    """One feature group as its offline store's Glue table."""

    group: str
    """The group's name in the stack file."""
    name: str
    """Its SageMaker name."""
    table: str
    record_identifier: str
    event_time: str
    features: Sequence[str]
    arn: pulumi.Input[str]
    offline_prefix: str
    """Key prefix of its offline store in the offline bucket (`feature-store/<SageMaker name>/`)."""


@dataclass(frozen=True)
class FeatureSource:
    """What the platform supplies to a retraining pipeline that trains from the feature store."""

    database: pulumi.Input[str]
    """The feature store's Glue database."""
    label: str
    tables: Sequence[FeatureTable]
    """The label's group first, then the others."""
    offline_bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    """Key of the offline store's objects."""

    @property
    def label_table(self) -> FeatureTable:
        return self.tables[0]

    def columns(self) -> list[str]:
        """The training set's columns: the label first, then every other feature once (identifiers and event times
        left out: they say which record, not what it is)."""
        label_table = self.label_table
        skipped = {label_table.record_identifier, label_table.event_time, self.label}
        columns = [self.label]
        for table in self.tables:
            for feature in table.features:
                if feature not in skipped and feature != table.event_time and feature not in columns:
                    columns.append(feature)
        return columns

    def query(self, database: str) -> str:
        """The point-in-time query of the training set (Athena's SQL; one line per clause)."""
        label = self.label_table
        key, time = label.record_identifier, label.event_time
        columns = ", ".join(f'"{feature}"' for feature in label.features)
        lines = [f'WITH examples AS (SELECT {columns} FROM "{database}"."{label.table}" WHERE NOT is_deleted)']
        joins, picked = [], {self.label: "examples"}
        for index, table in enumerate(self.tables[1:], start=1):
            alias = f"g{index}"
            wanted = [f for f in table.features if f not in (table.record_identifier, table.event_time)]
            selected = ", ".join(f'f."{feature}"' for feature in wanted)
            lines.append(
                f', {alias} AS (SELECT e."{key}", e."{time}", {selected}, row_number() OVER (PARTITION BY e."{key}", '
                f'e."{time}" ORDER BY f."{table.event_time}" DESC, f.api_invocation_time DESC) AS latest '
                f'FROM examples e JOIN "{database}"."{table.table}" f ON f."{table.record_identifier}" = e."{key}" '
                f'AND f."{table.event_time}" <= e."{time}" WHERE NOT f.is_deleted)')
            joins.append(f'JOIN {alias} ON {alias}."{key}" = examples."{key}" AND {alias}."{time}" = examples."{time}" '
                         f"AND {alias}.latest = 1")
            for feature in wanted:
                picked.setdefault(feature, alias)
        for feature in label.features:
            if feature not in (key, time):
                picked.setdefault(feature, "examples")
        selected = ", ".join(f'{picked[column]}."{column}"' for column in self.columns())
        return "\n".join([*lines, f"SELECT {selected} FROM examples", *joins])


def feature_tables(groups: Sequence[FeatureGroupSettings], settings: TrainingFeaturesSettings,
                   sagemaker_names: dict[str, str], arns: dict[str, pulumi.Input[str]],
                   offline_prefix: str) -> list[FeatureTable]:
    """The tables of `settings.feature_groups`, the label's group first."""
    known = {group.name: group for group in groups}
    chosen = [known[name] for name in settings.feature_groups]
    chosen.sort(key=lambda group: settings.label not in [f.name for f in group.features])
    return [FeatureTable(group=group.name, name=sagemaker_names[group.name], table=glue_name(group.name), record_identifier=group.record_identifier,
                         event_time=group.event_time_feature, features=tuple(f.name for f in group.features),
                         arn=arns[group.name], offline_prefix=f"{offline_prefix}{sagemaker_names[group.name]}/")
            for group in chosen]


__all__ = ["ATHENA_CATALOG", "FeatureSource", "FeatureTable", "TrainingFeaturesSettings", "feature_tables"]
