"""MlPlatform.build, what the program calls: the platform stage by stage, what is built so far registering while
the rest is built (infra/stepwise.py). Its plan is the one of the platform built at once, `MlPlatform(...)`."""

from __future__ import annotations

import pytest

import emlops.program.stepwise
from emlops.components.monitoring import ModelMonitor
from emlops.offline.engine import RecordingMonitor
from emlops.offline.preview import preview_stack
from emlops.program.platform import MlPlatform
from emlops.program.stackfile import find_project
from tests.conftest import ROOT


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stage_by_stage_plans_what_building_at_once_plans(stack, monkeypatch, shipped_plan):
    """With no turns of the loop between steps nothing registers before the platform is built, as with
    `MlPlatform(...)`. The shipped previews let the loop run after each model."""
    monkeypatch.setattr(emlops.program.stepwise, "TURNS", 0)
    assert preview_stack(stack, project=find_project(ROOT)).plan.dumps() == shipped_plan(stack).dumps()


def test_registering_as_soon_as_it_can_plans_the_same(monkeypatch, shipped_plan):
    """The other extreme: every step waits until whatever can register has registered (the mocks answer at once)."""
    monkeypatch.setattr(emlops.program.stepwise, "TURNS", 1000)
    assert preview_stack("prod", project=find_project(ROOT)).plan.dumps() == shipped_plan("prod").dumps()


@pytest.mark.parametrize("turns", [emlops.program.stepwise.TURNS, 0])
def test_what_serving_built_registers_before_the_monitors_are_built(turns, monkeypatch):
    """The monitoring stage comes after serving: built stage by stage, what serving built has begun to register by
    then (the endpoints themselves wait for their models and roles). Built at once, only the stack and its provider
    have."""
    monkeypatch.setattr(emlops.program.stepwise, "TURNS", turns)
    registered: list[tuple[str, str]] = []
    at_first_monitor: list[list[tuple[str, str]]] = []
    register, build = RecordingMonitor.RegisterResource, ModelMonitor.__init__

    def recording(self, request):
        if request.type == "pulumi:pulumi:Stack":  # staging's run, after the shared stack's
            registered.clear()
        registered.append((request.type, request.name))
        return register(self, request)

    def monitor(self, *args, **kwargs):
        at_first_monitor.append(list(registered))
        build(self, *args, **kwargs)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", recording)
    monkeypatch.setattr(ModelMonitor, "__init__", monitor)
    preview_stack("staging", project=find_project(ROOT))
    before = at_first_monitor[0]
    if turns:
        assert {("emlops:index:ModelEndpoint", "staging-churn"), ("emlops:index:ModelEndpoint", "staging-fraud"),
                ("aws:iam/role:Role", "staging-churn-execution-role"),
                ("aws:cloudwatch/metricAlarm:MetricAlarm", "staging-fraud-primary-5xx")} <= set(before)
    else:
        assert before == [("pulumi:pulumi:Stack", "emlops-staging"), ("pulumi:providers:aws", "aws-staging")]
