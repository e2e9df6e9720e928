"""The background build worker of a CLI preview (components/build_worker.py, emlops/offline/build_start.py):
definitions that miss the cache are built in one other process, the plan is the same bytes, and whatever
goes wrong in the worker ends as the in-process build would."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emlops.cli.process import AT_ONCE, spare_cores
from emlops.components import build_worker
from emlops.offline.build_start import declares_pipelines
from tests import worker_builds
from tests.conftest import ROOT


@pytest.fixture
def worker():
    """The worker allowed in this test only (as in the `emlops` command's process), and stopped after it."""
    build_worker.allow()
    yield build_worker
    build_worker.stop()
    build_worker.allow(False)


def test_a_failing_or_dying_worker_ends_as_the_build_in_this_process(worker, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    ran.mkdir()
    # the build raises in the worker: it runs again here, and its own exception (type, message) is what surfaces
    with pytest.raises(ValueError) as raised:
        asyncio.run(worker.run(functools.partial(worker_builds.raises, str(ran))))
    assert str(raised.value) == "retraining: comparison '~' is not one of >=, >, <=, <"
    pids = {int(name.name) for name in ran.iterdir()}
    assert os.getpid() in pids and len(pids) == 2  # once in the worker, once here
    # the worker dies mid-build: built here instead, and every later build too (the pool is broken)
    for name in ran.iterdir():
        name.unlink()
    assert asyncio.run(worker.run(functools.partial(worker_builds.dies_in_a_worker, str(ran)))) == \
        f"built in {os.getpid()}"
    assert [int(name.name) for name in ran.iterdir()] != [os.getpid()] and len(list(ran.iterdir())) == 1
    assert asyncio.run(worker.run(worker_builds.where)) == f"built in {os.getpid()}"


def test_without_the_command_nothing_starts_a_worker() -> None:
    build_worker.start()
    assert not build_worker.running()
    assert asyncio.run(build_worker.run(worker_builds.where)) == f"built in {os.getpid()}"


@pytest.mark.parametrize(("platform", "expected"), [
    ({"models": [{"name": "churn", "retraining": {"enabled": True}}]}, True),
    ({"models": [{"name": "churn", "retraining": {"enabled": False}}, {"name": "fraud"}]}, False),
    ({"batch_transforms": [{"name": "nightly"}]}, True),
    ({"data_pipelines": [{"name": "customers"}]}, True),
    ({"models": "not a list", "batch_transforms": []}, False),
])
def test_which_stack_files_declare_a_pipeline(platform, expected) -> None:
    assert declares_pipelines(platform) is expected


@pytest.mark.parametrize(("cores", "at_once", "expected"), [
    (2, None, True), (1, None, False), (2, "2", False), (8, "4", True), (2, "not a number", True)])
def test_a_worker_only_where_each_preview_running_at_once_has_a_core_to_spare(monkeypatch, cores, at_once,
                                                                              expected) -> None:
    # `emlops preview --all` on 2 cores runs 2 previews at once (and says so to each): they build in-process
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    if at_once is None:
        monkeypatch.delenv(AT_ONCE, raising=False)
    else:
        monkeypatch.setenv(AT_ONCE, at_once)
    assert spare_cores() is expected


# Runs as the `emlops` console script does: a file run as __main__, whose main() a spawned child must not run.
CONSOLE = """
import json, sys
from emlops.cli import main
if __name__ == "__main__":
    from emlops.components import build_worker
    from emlops.offline.build_start import start_early
    sys.argv = ["emlops", "preview", "dev", "--json", sys.argv[1], "-q"]
    try:
        main()
    except SystemExit as exit:
        code = exit.code
    sdk = "sagemaker.mlops" in sys.modules
    starts = {}
    for stack in ("dev", "shared", "prod"):
        start_early(stack)
        starts[stack] = build_worker.running()
        build_worker.stop()
    print(json.dumps({"exit": code, "sdk imported": sdk, "starts early": starts}))
"""


@pytest.mark.processes
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="on one core the command builds in its own process")
def test_the_command_builds_a_missed_definition_in_the_worker_into_the_same_plan(tmp_path: Path,
                                                                                  shipped_plan) -> None:
    script, cache = tmp_path / "emlops_console.py", tmp_path / "cache"
    script.write_text(CONSOLE)
    env = {**os.environ, "EMLOPS_CACHE_DIR": str(cache), AT_ONCE: "1"}
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "dev.json")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    # the data pipeline's definition was built (it is on disk), not by this process: it never imported the SDK's
    # pipelines; after the preview, its manifest says dev's definitions are all on disk: no early start
    assert json.loads(run.stdout) == {"exit": 0, "sdk imported": False,
                                      "starts early": {"dev": False, "shared": False, "prod": True}}
    assert len(list((cache / "data-pipeline").iterdir())) == 1
    shipped_plan("dev").write(tmp_path / "in-process.json")
    assert (tmp_path / "dev.json").read_bytes() == (tmp_path / "in-process.json").read_bytes()


def test_a_bad_stack_file_ends_the_command_without_waiting_for_the_worker(project_copy: Path) -> None:
    """The worker starts before the stack file is validated (dev declares a pipeline, nothing is cached): an error
    ends the command, and the command kills the worker instead of waiting for it to import the SDK."""
    stack = project_copy / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("      owner: ml-platform@example.com\n", ""))
    code = ("import os, sys\n"
            "os.cpu_count = lambda: 2  # a core to spare, whatever this machine has\n"
            "from emlops.components import build_worker\n"
            "stop = build_worker.stop\n"
            "def stopped():\n"
            "    print(f'worker running: {build_worker.running()}', file=sys.stderr)\n"
            "    stop()\n"
            "build_worker.stop = stopped\n"
            "sys.argv = ['emlops', 'preview', 'dev']\n"
            "from emlops.cli import main\n"
            "main()\n")
    env = {**os.environ, "EMLOPS_CACHE_DIR": str(project_copy / "cache")}
    result = subprocess.run([sys.executable, "-c", code], cwd=project_copy, env=env, capture_output=True, text=True,
                            timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == ["stacks/Pulumi.dev.yaml: emlops:platform.tags.owner: field required",
                                          "worker running: True"]


def test_stopping_the_worker_leaves_no_pool_thread_for_the_interpreters_exit(worker) -> None:
    """A pool thread still running at exit races Python's own exit hook for its wake-up pipe, which printed
    "Exception ignored ... Bad file descriptor" after a command's one-line error now and then."""
    from concurrent.futures import process

    worker.expect("eu-west-1", start_now=True)
    [thread] = [t for t in list(process._threads_wakeups) if t.is_alive()]
    worker.stop()
    assert not thread.is_alive() and not worker.running()
