"""AWS's limits inside component settings: strict types, instance types, content types, S3 locations.

Each limit is tested twice: the component's settings in Python (the exact message), and a stack file (one
stderr line naming the file and key, exit 2, no plan)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emlops.components.endpoint_args import DataCaptureSettings, VariantSettings
from emlops.components.kubernetes_args import TeamSettings
from emlops.components.monitoring_args import MonitoringSettings
from emlops.components.network_args import ManagedNetworkSettings
from emlops.components.retraining_args import RetrainingSettings
from tests.conftest import edit_stack, preview_error


def settings_error(model, raw: dict) -> tuple[tuple, str]:
    """(location, message) of the one error `raw` gives `model`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return tuple(errors[0]["loc"]), errors[0]["msg"]


# -- strict booleans and integers (Settings' base) -------------------------------------------------------------

VARIANT = {"instance_type": "ml.m5.large"}


@pytest.mark.parametrize("model, raw, loc, message", [
    (VariantSettings, {**VARIANT, "initial_instance_count": True}, ("initial_instance_count",),
     "must be a whole number"),
    (VariantSettings, {**VARIANT, "initial_instance_count": 1.5}, ("initial_instance_count",),
     "must be a whole number"),
    (VariantSettings, {**VARIANT, "initial_instance_count": "3"}, ("initial_instance_count",),
     "must be a whole number"),
    (VariantSettings, {**VARIANT, "weight": True}, ("weight",), "must be a number"),
    (ManagedNetworkSettings, {"public_subnets": 1}, ("public_subnets",), "must be true or false"),
    (ManagedNetworkSettings, {"public_subnets": "yes"}, ("public_subnets",), "must be true or false"),
    (DataCaptureSettings, {"enabled": 0}, ("enabled",), "must be true or false"),
    (MonitoringSettings, {"instance_count": False}, ("instance_count",), "must be a whole number"),
    (TeamSettings, {"name": "fraud", "gpus": True, "cpu": "8", "memory": "32Gi"}, ("gpus",),
     "must be a whole number"),
])
def test_booleans_and_whole_numbers_are_strict(model, raw, loc, message):
    assert settings_error(model, raw) == (loc, message)


def test_strict_types_accept_what_they_say():
    assert VariantSettings(**VARIANT, initial_instance_count=3, weight=2).weight == 2.0
    assert ManagedNetworkSettings(public_subnets=False).public_subnets is False


@pytest.mark.parametrize("old, new, message", [
    ("max_session_hours: 8", "max_session_hours: true",
     "emlops:platform.personas.max_session_hours: must be a whole number, got True"),
    ("max_session_hours: 8", "max_session_hours: 1.5",
     "emlops:platform.personas.max_session_hours: must be a whole number, got 1.5"),
    ("max_session_hours: 8", 'max_session_hours: "3"',
     "emlops:platform.personas.max_session_hours: must be a whole number, got '3'"),
    ("az_count: 2", "az_count: true", "emlops:platform.network.managed.az_count: must be a whole number, got True"),
    ("production: false", "production: 1", "emlops:platform.production: must be true or false, got 1"),
    ("production: false", "production: yes please",
     "emlops:platform.production: must be true or false, got 'yes please'"),
    ("initial_instance_count: 1", "initial_instance_count: 1.0",
     "emlops:platform.models[1].variants[0].initial_instance_count: must be a whole number, got 1.0"),
])
def test_stack_file_types_are_strict(project_copy, old, new, message):
    edit_stack(project_copy, "dev", old, new)
    assert preview_error(project_copy, "dev") == f"stacks/Pulumi.dev.yaml: {message}"
