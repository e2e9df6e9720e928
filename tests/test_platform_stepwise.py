"""MlPlatform.build, what the program calls: the platform stage by stage, what is built so far registering while
the rest is built (infra/stepwise.py). Its plan is the one of the platform built at once, `MlPlatform(...)`.

With no turns of the loop between steps, the build is the one at once: nothing the platform builds registers before
its last stage. The shipped previews (`shipped_plan`) let the loop run `TURNS` times after each step."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import emlops.program.stepwise
from emlops.components.monitoring import ModelMonitor
from emlops.offline.engine import RecordingMonitor
from emlops.offline.plan import Plan
from emlops.offline.preview import preview_stack
from emlops.program.platform import MlPlatform
from emlops.program.stackfile import find_project
from tests.conftest import ROOT

Registered = list[tuple[str, str]]


def preview_recording(stack: str, turns: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Plan, Registered]:
    """The stack's plan with `turns` turns after each step, and what of the stack had registered when its first
    ModelMonitor was built (type and name, in order)."""
    monkeypatch.setattr(emlops.program.stepwise, "TURNS", turns)
    registered: Registered = []
    at_first_monitor: list[Registered] = []
    register, build = RecordingMonitor.RegisterResource, ModelMonitor.__init__

    def recording(self, request):
        if request.type == "pulumi:pulumi:Stack":  # this stack's run, after the shared stack's
            registered.clear()
        registered.append((request.type, request.name))
        return register(self, request)

    def monitor(self, *args, **kwargs):
        at_first_monitor.append(list(registered))
        build(self, *args, **kwargs)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", recording)
    monkeypatch.setattr(ModelMonitor, "__init__", monitor)
    return preview_stack(stack, project=find_project(ROOT)).plan, at_first_monitor[0]


@pytest.mark.parametrize(("stack", "providers"), [("staging", ["aws"]), ("prod", ["aws", "aws-native"])])
def test_built_at_once_the_plan_is_the_same(stack, providers, monkeypatch, shipped_plan: Callable[[str], Plan]):
    plan, before_monitors = preview_recording(stack, 0, monkeypatch)
    assert plan.dumps() == shipped_plan(stack).dumps()
    assert before_monitors == [("pulumi:pulumi:Stack", f"emlops-{stack}"),
                               *[(f"pulumi:providers:{p}", f"{p}-{stack}") for p in providers]]


@pytest.mark.parametrize("stack", ["dev", "shared"])
def test_built_at_once_a_stack_without_monitors_has_the_same_plan(stack, monkeypatch,
                                                                  shipped_plan: Callable[[str], Plan]):
    monkeypatch.setattr(emlops.program.stepwise, "TURNS", 0)
    assert preview_stack(stack, project=find_project(ROOT)).plan.dumps() == shipped_plan(stack).dumps()


def test_registering_as_soon_as_it_can_the_plan_is_the_same(monkeypatch, shipped_plan: Callable[[str], Plan]):
    """The other extreme: every step waits until whatever can register has registered (the mocks answer at once),
    so prod's endpoints have registered before its monitors are built."""
    plan, before_monitors = preview_recording("prod", 1000, monkeypatch)
    assert plan.dumps() == shipped_plan("prod").dumps()
    endpoints = {name for typ, name in before_monitors if typ == "aws:sagemaker/endpoint:Endpoint"}
    assert endpoints == {r.name for r in plan.resources if r.type == "aws:sagemaker/endpoint:Endpoint"}
    assert len(endpoints) == 3


def test_what_serving_built_registers_before_the_monitors_are_built(monkeypatch):
    """The monitoring stage comes after serving: built stage by stage, what serving built has begun to register by
    then (the endpoints themselves wait for their models and roles)."""
    _, before_monitors = preview_recording("staging", emlops.program.stepwise.TURNS, monkeypatch)
    assert {("emlops:index:ModelEndpoint", "staging-churn"), ("emlops:index:ModelEndpoint", "staging-fraud"),
            ("aws:iam/role:Role", "staging-churn-execution-role"),
            ("aws:cloudwatch/metricAlarm:MetricAlarm", "staging-fraud-primary-5xx")} <= set(before_monitors)


def test_build_refuses_a_subclass_whose_init_it_would_skip():
    """`build` makes the platform without calling `__init__` (it takes the steps itself), so a subclass's own
    `__init__` would silently not run: it is refused before anything is built."""
    class Extended(MlPlatform):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    with pytest.raises(TypeError, match=r"^Extended overrides __init__, which MlPlatform\.build does not run; extend "
                                        r"a stage instead \(the README's 'Adding a component'\), or build it at once "
                                        r"with Extended\(\.\.\.\)$"):
        asyncio.run(Extended.build("dev", None, None))
