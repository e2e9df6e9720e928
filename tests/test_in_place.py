"""The mocks' answers are served in the program's own thread (emlops/offline/in_place.py)."""

from __future__ import annotations

import asyncio
import threading

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import mocks as pulumi_mocks

from emlops.offline import mocks
from emlops.offline.engine import run_function
from emlops.offline.in_place import ServedInPlace, now
from tests.conftest import IDENTITY


def test_a_call_runs_when_submitted_in_the_submitting_thread_and_its_error_is_the_futures():
    executor = ServedInPlace()
    ran: list[int] = []
    done = executor.submit(lambda value: ran.append(threading.get_ident()) or value * 2, 21)
    assert (done.done(), done.result(), ran) == (True, 42, [threading.get_ident()])
    failed = executor.submit(lambda: {}["missing"])
    assert failed.done() and isinstance(failed.exception(), KeyError)


def test_a_coroutine_that_never_waits_is_run_to_its_end_and_one_that_waits_is_refused():
    async def plain() -> str:
        return "answer"

    assert now(plain()) == "answer"

    async def waits() -> None:
        await asyncio.get_event_loop().create_future()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with pytest.raises(RuntimeError, match="^serializing a mock's answer waited on a future; the offline engine "
                                               "serves answers in place$"):
            now(waits())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_program_is_answered_in_its_own_thread_and_pulumis_helper_is_put_back(monkeypatch):
    answered: list[int] = []
    new_resource = mocks.TruthfulMocks.new_resource

    def recording(self, args):
        answered.append(threading.get_ident())
        return new_resource(self, args)

    monkeypatch.setattr(mocks.TruthfulMocks, "new_resource", recording)
    helper = pulumi_mocks._sync_await

    def program() -> None:
        region = aws.get_region()  # a data source: an Invoke, answered through Pulumi's mock monitor
        key = aws.kms.Key("key", description=f"in {region.region}")
        aws.kms.Alias("alias", name="alias/in-place", target_key_id=key.id)
        pulumi.export("key", key.arn)

    plan = run_function(program, identity=IDENTITY).plan
    assert [r.name for r in plan.resources] == ["emlops-test", "key", "alias"]
    assert plan.get("key").inputs["description"] == "in eu-west-1"
    assert plan.outputs["key"].startswith("arn:aws:kms:eu-west-1:123456789012:key/")
    assert answered == [threading.get_ident()] * 2
    assert pulumi_mocks._sync_await is helper
