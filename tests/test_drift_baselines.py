"""Models served from a model package are monitored against the package's drift-check baselines
when the stack names no baseline of its own (retraining attaches them when it registers a version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emlops.program.sources import ModelSource, ResolvedModel
from emlops.offline.preview import PreviewError, preview_stack

FRAUD_BASELINE = """        monitoring:
          baseline:
            statistics_s3_uri: s3://acme-ml-prod-monitoring/baselines/fraud/statistics.json
            constraints_s3_uri: s3://acme-ml-prod-monitoring/baselines/fraud/constraints.json
"""
# prod deploys from the shared registry (stacks/Pulumi.shared.yaml, account 444444444444)
GROUP_REF = "arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/fraud (latest Approved)"


def without_fraud_baseline(project: Path) -> None:
    stack = project / "stacks" / "Pulumi.prod.yaml"
    text = stack.read_text()
    assert FRAUD_BASELINE in text
    # its explainability monitoring stays (it needs no data-quality baseline)
    stack.write_text(text.replace(FRAUD_BASELINE, "        monitoring:\n"))


def test_offline_the_packages_baselines_stay_visibly_unknown(project_copy: Path):
    without_fraud_baseline(project_copy)
    plan = preview_stack("prod", start=project_copy).plan
    job = plan.get("prod-fraud-monitor-job").inputs
    assert job["dataQualityBaselineConfig"] == {
        "statisticsResource": {"s3Uri": f"[unknown: {GROUP_REF} drift-check statistics]"},
        "constraintsResource": {"s3Uri": f"[unknown: {GROUP_REF} drift-check constraints]"}}
    policy = json.loads(plan.get("prod-fraud-monitor-execution-permissions").inputs["policy"])
    [read] = [s for s in policy["Statement"] if s["Sid"] == "ReadBaseline"]
    assert read["Resource"] == [f"[unknown: {GROUP_REF} drift-check statistics]",
                                f"[unknown: {GROUP_REF} drift-check constraints]"]


class _Packages:
    """A resolver answering like LiveResolver does for an approved package with or without baselines."""

    def __init__(self, baselines):
        self.baselines = baselines

    def resolve(self, model: str, source: ModelSource) -> ResolvedModel:
        ref = source.reference
        if source.model_package_group is None:
            return ResolvedModel(ref, f"[unknown: {ref}]", compressed=False, known=False)
        assert source.model_package_group.startswith("arn:aws:sagemaker:eu-west-1:444444444444:model-package-group/")
        arn = f"arn:aws:sagemaker:eu-west-1:444444444444:model-package/{model}/3"
        return ResolvedModel(ref, f"s3://shared-artifacts-bucket-d00a643/models/{model}/v3/model.tar.gz", compressed=True,
                             model_package_arn=arn, drift_baselines=self.baselines)


def test_deployed_the_packages_baselines_are_the_monitors(project_copy: Path):
    without_fraud_baseline(project_copy)
    baselines = ("s3://ml-baselines/fraud/v3/statistics.json", "s3://ml-baselines/fraud/v3/constraints.json")
    plan = preview_stack("prod", start=project_copy, resolver=_Packages(baselines)).plan
    assert plan.get("prod-fraud-monitor-job").inputs["dataQualityBaselineConfig"] == {
        "statisticsResource": {"s3Uri": baselines[0]}, "constraintsResource": {"s3Uri": baselines[1]}}


def test_a_production_package_without_baselines_is_one_line(project_copy: Path):
    without_fraud_baseline(project_copy)
    with pytest.raises(PreviewError) as caught:
        preview_stack("prod", start=project_copy, resolver=_Packages(None))
    assert str(caught.value) == (
        "stacks/Pulumi.prod.yaml: emlops:platform.models[1].monitoring.baseline: model 'fraud': "
        f"{GROUP_REF} has no data-quality drift-check baselines; add statistics_s3_uri and constraints_s3_uri")
