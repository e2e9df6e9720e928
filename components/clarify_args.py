"""SageMaker Clarify monitoring of an endpoint: its settings (`models[].monitoring.bias` and `.explainability`), the
Clarify image, and the analysis configurations the jobs read.

    monitoring:
      bias:
        ground_truth_s3_uri: s3://acme-ml-prod-ground-truth/churn/
        features: [tenure_months, monthly_charges, contract_type]
        label: churned
        positive_outcome: [1]
        probability_attribute: "0"
        probability_threshold: 0.5
        facets:
          - {name: contract_type, values: [month-to-month]}
        thresholds: {DPPL: 0.1, DI: 0.8}
      explainability:
        baseline_s3_uri: s3://acme-ml-prod-monitoring/baselines/fraud/shap-baseline.csv
        features: [amount, merchant_risk, hour, card_age_days]
        top_features: [amount, merchant_risk]
        min_attribution: 0.05

Bias drift compares the post-training bias metrics of the declared facets (computed over the captured predictions
joined with the ground truth) with the baselining job's constraints; explainability drift compares the features'
global SHAP values (Kernel SHAP against the baseline records, on a shadow endpoint of the model) with its own. Each
chosen metric gets a CloudWatch alarm; runs that find violations notify the alerts topic and start retraining like
the other monitors' (monitoring.py, clarify_monitoring.py).
"""

from __future__ import annotations

import re
from typing import Any, Optional, Union

from pydantic import Field, field_validator, model_validator

from emlops.components.api_limits import check_instance_type
from emlops.components.images import catalogue_image_uri, sdk_image_catalogue
from emlops.components.locations import S3ObjectUri, S3PrefixUri
from emlops.components.settings import Settings, error_message

# Clarify's post-training bias metrics (the SDK's `run_post_training_bias` methods). Positive values, and a disparate
# impact (DI, a ratio) below 1, disadvantage the facet; the fair value is 0, or 1 for DI.
POST_TRAINING_METRICS = ("DPPL", "DI", "DCA", "DCR", "RD", "DAR", "DRR", "AD", "CDDPL", "TE", "FT")
RATIO_METRICS = ("DI",)
# Where Clarify publishes what a real-time endpoint's monitors compute (dimension names from AWS's documentation).
BIAS_NAMESPACE = "aws/sagemaker/Endpoints/bias-metrics"
BIAS_DIMENSIONS = ("BiasStage", "Endpoint", "Facet", "FacetValue", "Label", "LabelValue", "MonitoringSchedule")
EXPLAINABILITY_NAMESPACE = "aws/sagemaker/Endpoints/explainability-metrics"
SHADOW_ENDPOINT_PREFIX = "sm-clarify"  # Clarify's name prefix of the shadow endpoints it creates and deletes
CLARIFY_VERSION = "1.0"  # the SDK's one Clarify processing image version (its tag)

Value = Union[str, int, float]
# Clarify names metrics after features (`feature_<name>`); the monitor's drift features follow the same rule.
_FEATURE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _check_features(values: list[str]) -> list[str]:
    for feature in values:
        if not _FEATURE.match(feature):
            raise ValueError(f"feature {feature!r} must be 1-128 letters, digits, '_', '.' or '-'")
    if len(set(values)) != len(values):
        raise ValueError(f"must be unique; got {', '.join(values)}")
    return values


class FacetSettings(Settings):
    """A sensitive attribute whose groups are compared."""

    name: str = Field(description="The feature (one of `features`).")
    values: list[Value] = Field(default_factory=list, description="The facet's values (or, for a numeric "
                                "feature, one threshold above which a record is in the facet) whose group is "
                                "compared with the rest. Default: every value is compared with the rest.")


class BiasSettings(Settings):
    """Bias drift of the endpoint's predictions on declared facets (SageMaker Clarify, against ground truth)."""

    ground_truth_s3_uri: S3PrefixUri = Field(
        description="Where the ground-truth labels are uploaded (read-only for the monitor).",
        json_schema_extra=error_message("must be an S3 URI, s3://<bucket>/[<prefix>]"))
    features: list[str] = Field(min_length=1, description="The columns of a captured request (CSV), in order.")
    label: str = Field(min_length=1, max_length=128, description="Name of the ground-truth label.")
    positive_outcome: list[Value] = Field(min_length=1, description="The label values (or one threshold) that are "
                                          "the positive outcome.")
    facets: list[FacetSettings] = Field(min_length=1, description="The sensitive attributes (declared facets).")
    probability_attribute: Optional[str] = Field(None, min_length=1, description="Index or JSONPath of the "
                                                 "probability in the captured response. Default: none (the response "
                                                 "is the predicted label).")
    probability_threshold: Optional[float] = Field(None, gt=0, lt=1, description="Probability from which a "
                                                   "prediction is positive (with `probability_attribute`). Default: "
                                                   "none.")
    thresholds: dict[str, float] = Field(
        min_length=1, description="Post-training bias metrics with an alarm per facet, and the value that trips it: "
        "above it for DPPL, DCA, DCR, RD, DAR, DRR, AD, CDDPL, TE and FT, below it for DI.")
    baseline_constraints_s3_uri: Optional[S3ObjectUri] = Field(
        None, description="`analysis.json` constraints of a Clarify bias baselining job; runs worse than them are "
        "violations. Default: none (the alarms are the only check).",
        json_schema_extra=error_message("must be an S3 object URI, s3://<bucket>/<key>"))

    @field_validator("features")
    @classmethod
    def _features(cls, values: list[str]) -> list[str]:
        return _check_features(values)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, values: dict[str, float]) -> dict[str, float]:
        for metric, threshold in values.items():
            if metric not in POST_TRAINING_METRICS:
                raise ValueError(f"{metric!r} is not a post-training bias metric; use "
                                 f"{', '.join(POST_TRAINING_METRICS)}")
            if metric in RATIO_METRICS and threshold <= 0:
                raise ValueError(f"{metric} is a ratio (1 is fair): its threshold ({threshold}) must be above 0")
        return values

    @model_validator(mode="after")
    def _columns(self) -> "BiasSettings":
        for facet in self.facets:
            if facet.name not in self.features:
                raise ValueError(f"facet {facet.name!r} is not one of features ({', '.join(self.features)})")
        if len({f.name for f in self.facets}) != len(self.facets):
            raise ValueError("facets must name each feature once")
        if self.label in self.features:
            raise ValueError(f"label {self.label!r} is the ground truth, not a feature of the request")
        if (self.probability_threshold is None) != (self.probability_attribute is None):
            raise ValueError("probability_attribute and probability_threshold go together: give both or neither")
        return self


class ExplainabilitySettings(Settings):
    """Feature-attribution drift of the endpoint's predictions (SageMaker Clarify, Kernel SHAP)."""

    baseline_s3_uri: S3ObjectUri = Field(
        description="The SHAP baseline: CSV records of the features only (e.g. a sample or the mean of the "
        "training data), that Kernel SHAP compares each record with.",
        json_schema_extra=error_message("must be an S3 object URI, s3://<bucket>/<key>"))
    features: list[str] = Field(min_length=1, description="The columns of a captured request (CSV), in order.")
    top_features: list[str] = Field(min_length=1, description="The features that should drive the model's scores "
                                    "(some of `features`): each gets an alarm when its global SHAP value falls "
                                    "below `min_attribution`.")
    min_attribution: float = Field(gt=0, description="Global SHAP value (mean absolute) below which a top feature's "
                                   "alarm fires.")
    probability_attribute: Optional[str] = Field(None, min_length=1, description="Index or JSONPath of the score "
                                                 "in the response that is explained. Default: the whole response.")
    num_samples: int = Field(100, ge=1, le=10000, description="Synthetic records per explained record (Kernel "
                             "SHAP). Default: 100.")
    shadow_instance_type: str = Field("ml.m5.xlarge", description="Instance type of the shadow endpoint Clarify "
                                      "creates from the model for each run, and deletes after it. Default: "
                                      "ml.m5.xlarge.")
    baseline_constraints_s3_uri: Optional[S3ObjectUri] = Field(
        None, description="`analysis.json` constraints of a Clarify explainability baselining job; runs whose "
        "attributions drift from them are violations. Default: none (the alarms are the only check).",
        json_schema_extra=error_message("must be an S3 object URI, s3://<bucket>/<key>"))

    @field_validator("features")
    @classmethod
    def _features(cls, values: list[str]) -> list[str]:
        return _check_features(values)

    @field_validator("shadow_instance_type")
    @classmethod
    def _shadow(cls, value: str) -> str:
        return check_instance_type(value, "hosting")

    @model_validator(mode="after")
    def _top(self) -> "ExplainabilitySettings":
        unknown = [f for f in self.top_features if f not in self.features]
        if unknown:
            raise ValueError(f"top_features {', '.join(unknown)} are not among features ({', '.join(self.features)})")
        if len(set(self.top_features)) != len(self.top_features):
            raise ValueError(f"top_features must be unique; got {', '.join(self.top_features)}")
        return self


# -- the image ------------------------------------------------------------------------------------------

def _clarify_catalogue() -> dict:
    return sdk_image_catalogue("clarify")["processing"]["versions"][CLARIFY_VERSION]


def clarify_image_uri(region: str) -> str:
    """The SageMaker Clarify processing image of `region`, from the SageMaker SDK's image catalogue."""
    return catalogue_image_uri(_clarify_catalogue(), region, "Clarify", CLARIFY_VERSION)


# -- the analysis configurations -----------------------------------------------------------------------

def bias_analysis_config(bias: BiasSettings) -> dict[str, Any]:
    """What the bias job reads from its ConfigUri: the columns, label, facets and post-training metrics."""
    config: dict[str, Any] = {
        "version": "1.0",
        "headers": [*bias.features, bias.label],
        "label": bias.label,
        "label_values_or_threshold": list(bias.positive_outcome),
        "facet": [{"name_or_index": f.name, **({"value_or_threshold": list(f.values)} if f.values else {})}
                  for f in bias.facets],
        "methods": {"post_training_bias": {"methods": list(bias.thresholds)}},
    }
    if bias.probability_threshold is not None:
        config["probability_threshold"] = bias.probability_threshold
    return config


def explainability_analysis_config(explainability: ExplainabilitySettings, model_name: str) -> dict[str, Any]:
    """What the explainability job reads from its ConfigUri: Kernel SHAP against the baseline, on a shadow endpoint
    of `model_name` that the job creates and deletes."""
    predictor: dict[str, Any] = {"model_name": model_name, "instance_type": explainability.shadow_instance_type,
                                 "initial_instance_count": 1, "endpoint_name_prefix": SHADOW_ENDPOINT_PREFIX,
                                 "content_type": "text/csv", "accept_type": "text/csv"}
    if explainability.probability_attribute is not None:
        predictor["probability"] = explainability.probability_attribute
    return {
        "version": "1.0",
        "headers": list(explainability.features),
        "methods": {"shap": {"baseline": explainability.baseline_s3_uri, "num_samples": explainability.num_samples,
                             "agg_method": "mean_abs", "use_logit": False, "save_local_shap_values": False}},
        "predictor": predictor,
    }
