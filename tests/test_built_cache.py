"""`components/built_cache.py` and its use by the preview: the same inputs are built once, on disk only
where the preview asks, and a cache that cannot be read or written is a miss, never an error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emlops.components import built_cache
from emlops.offline.preview import cache_directory
from tests.conftest import ROOT

SOURCE = Path(built_cache.__file__)


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """Each test starts with nothing kept in this process and no directory."""
    monkeypatch.setattr(built_cache, "_MEMORY", {})
    monkeypatch.setattr(built_cache, "_directory", None)


def counting(result: str = "built"):
    calls = []

    def build() -> str:
        calls.append(1)
        return result
    return build, calls


def test_the_same_inputs_are_built_once_per_process_and_other_inputs_again() -> None:
    build, calls = counting()
    for inputs in ({"a": 1}, {"a": 1}, {"a": 2}):
        assert built_cache.cached("kind", inputs, packages=["pytest"], source=SOURCE, build=build) == "built"
    assert len(calls) == 2


def test_a_directory_keeps_results_for_the_next_process(tmp_path: Path) -> None:
    built_cache.use_directory(tmp_path)
    build, calls = counting('{"Version": "2020-12-01"}')
    built_cache.cached("pipeline", {"a": 1}, packages=["pytest"], source=SOURCE, build=build)
    [kept] = (tmp_path / "pipeline").iterdir()
    assert json.loads(kept.read_text()) == {"document": '{"Version": "2020-12-01"}'}
    built_cache.forget()  # as a new process would start
    again, calls_again = counting("not used")
    assert built_cache.cached("pipeline", {"a": 1}, packages=["pytest"], source=SOURCE,
                              build=again) == '{"Version": "2020-12-01"}'
    assert (len(calls), len(calls_again)) == (1, 0)


def test_a_package_version_or_a_source_change_is_a_new_key(tmp_path: Path) -> None:
    other_source = tmp_path / "driver.py"
    other_source.write_text("# another way of calling the SDK\n")
    keys = {built_cache._key("k", {"a": 1}, ["pytest"], SOURCE),
            built_cache._key("k", {"a": 1}, ["pytest", "pluggy"], SOURCE),
            built_cache._key("k", {"a": 1}, ["no-such-distribution"], SOURCE),
            built_cache._key("k", {"a": 1}, ["pytest"], other_source)}
    assert len(keys) == 4


def test_a_build_driven_by_several_modules_changes_key_with_any_of_them(tmp_path: Path) -> None:
    shared = tmp_path / "sdk.py"
    shared.write_text("# how every definition calls the SDK\n")
    before = built_cache._key("k", {"a": 1}, ["pytest"], (SOURCE, shared))
    assert before == built_cache._key("k", {"a": 1}, ["pytest"], [SOURCE, shared])
    assert before != built_cache._key("k", {"a": 1}, ["pytest"], SOURCE)
    shared.write_text("# the SDK called another way\n")
    assert built_cache._key("k", {"a": 1}, ["pytest"], (SOURCE, shared)) != before


def test_an_unreadable_entry_is_a_miss_and_is_rebuilt(tmp_path: Path) -> None:
    built_cache.use_directory(tmp_path)
    key = built_cache._key("pipeline", {"a": 1}, ["pytest"], SOURCE)
    (tmp_path / "pipeline").mkdir()
    (tmp_path / "pipeline" / f"{key}.json").write_text('{"document": ')  # cut short
    build, calls = counting("rebuilt")
    assert built_cache.cached("pipeline", {"a": 1}, packages=["pytest"], source=SOURCE, build=build) == "rebuilt"
    assert json.loads((tmp_path / "pipeline" / f"{key}.json").read_text()) == {"document": "rebuilt"}


def test_a_directory_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-directory"
    blocked.write_text("")
    built_cache.use_directory(blocked)
    build, calls = counting("built")
    assert built_cache.cached("pipeline", {"a": 1}, packages=["pytest"], source=SOURCE, build=build) == "built"


def test_a_stacks_manifest_says_whether_its_last_previews_documents_are_all_on_disk(tmp_path: Path) -> None:
    built_cache.use_directory(tmp_path)
    assert not built_cache.probably_all_kept("/project:dev")  # never previewed: a miss is likely
    since = built_cache.used()
    for inputs in ({"a": 1}, {"a": 2}, {"a": 1}):
        built_cache.cached("pipeline", inputs, packages=["pytest"], source=SOURCE, build=lambda: "built")
    built_cache.remember("/project:dev", since)
    [manifest] = (tmp_path / "manifests").iterdir()
    keys = [f"pipeline/{built_cache._key('pipeline', {'a': a}, ['pytest'], SOURCE)}" for a in (1, 2)]
    assert json.loads(manifest.read_text()) == {"document": keys}  # each key once, in the order asked
    assert built_cache.probably_all_kept("/project:dev")
    assert not built_cache.probably_all_kept("/project:prod") and not built_cache.probably_all_kept("/other:dev")
    (tmp_path / f"{keys[1]}.json").unlink()
    assert not built_cache.probably_all_kept("/project:dev")
    built_cache.use_directory(None)  # nowhere to keep anything: no manifest either
    built_cache.remember("/project:dev", since)
    assert not built_cache.probably_all_kept("/project:dev")


@pytest.mark.parametrize(("env", "expected"), [
    ({"EMLOPS_CACHE_DIR": "/srv/cache", "XDG_CACHE_HOME": "/xdg"}, Path("/srv/cache")),
    ({"EMLOPS_CACHE_DIR": ""}, None),
    ({"XDG_CACHE_HOME": "/xdg"}, Path("/xdg/emlops")),
    ({"HOME": "/home/ml"}, Path("/home/ml/.cache/emlops")),
])
def test_the_previews_cache_directory(monkeypatch, env, expected) -> None:
    for name in ("EMLOPS_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cache_directory() == expected


PREVIEW_AND_REPORT = """
import sys
from emlops.offline.preview import preview_stack
plan = preview_stack("dev").plan
[definition] = {r.inputs["pipelineDefinition"] for r in plan.resources if r.name == "dev-customers-data-pipeline"}
print(len(plan.resources), "sagemaker.mlops" in sys.modules, "sagemaker.core" in sys.modules, definition)
"""


@pytest.mark.processes
def test_a_second_preview_process_reads_the_definitions_and_images_instead_of_importing_the_sdk(tmp_path: Path) -> None:
    env = {"EMLOPS_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", PREVIEW_AND_REPORT], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    first, second = [run.stdout.split(" ", 3) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    # the first built the definition and asked for the model's framework image with the SDK; the second did neither
    assert (first[1:3], second[1:3]) == (["True", "True"], ["False", "False"])
    assert first[0] == second[0] and first[3] == second[3]  # the same plan size and the same definition
    assert len(list((tmp_path / "data-pipeline").iterdir())) == 1  # dev's customers data pipeline
    assert len(list((tmp_path / "framework-image").iterdir())) == 2  # dev's fraud (xgboost) and assistant (TGI) images
