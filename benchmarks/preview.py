"""Offline preview speed and memory: every row of issue 14's table, measured in one run.

    python benchmarks/preview.py [--repeat 5] [--models 100] [--suite]

Warm rows run in-process (imports and caches already loaded, the median of `--repeat` runs after one
warm-up), each under the same truthful mocks (emlops.offline.engine) against two floors:
- the flat pulumi_aws program of the same resource count (plain IAM roles, one input each);
- the replay of the plan the preview made: the same resources (types, names, parents, providers,
  protection and inputs, with every property of their SDK class, so as many Outputs per resource)
  registered directly, in the same order, without any component code, Output between resources or apply.
  A bucket or an endpoint configuration costs Pulumi more than a role (it has more properties, each an
  Output); the replay pays that too, so its ratio is what the components, grants and policies cost on
  top of Pulumi's own machinery for these very resources.
1. prod (`--stack`): a prod preview also previews the shared stack (its registry's stack reference), so it is
   compared with flat programs of both counts (prod's own resources, and every registration the preview
   makes) and with the replay of both plans.
2. a generated production stack of `--models` provisioned, captured, canaried, autoscaled, monitored
   models.

Cold rows run what a user or CI runs, each in a new process (imports included), timed from start to
exit, with the process's peak resident memory:
3. `emlops preview prod -q` (`--stack`), with an empty definition cache (a fresh `EMLOPS_CACHE_DIR`) and with the
   cache the first run filled (components/built_cache.py);
4. `emlops preview` of the generated stack, the flat program of the same count, and the replay of the
   generated stack's plan;
5. what the PR workflow's head step runs: `emlops preview --all --json-dir DIR -q`, then
   `emlops check STACK --plan DIR/STACK.json` for each stack, with an empty and a filled cache (`--stacks`
   measures a project of some of the stacks only: the smoke test's smallest size).
`--suite` also times the test suite (`python -m pytest -q`).

This script itself imports nothing heavy: every measurement runs in a child process, so a child's peak
memory is its own (Linux counts a forked child's peak from its parent's size).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import floors  # noqa: E402 (the programs the preview is compared with, beside this script)

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("shared", "dev", "staging", "prod")
ROWS = ("warm", "cold", "workflow")


# ---- children: the measurements themselves ----------------------------------------------------------------

def _warm_replay(plans: list[dict], repeat: int) -> float:
    """The replays of PLANS one after the other (a stack's and those of the stacks it reads, as its preview
    previews them too)."""
    from emlops.offline.engine import run_function
    from emlops.offline.mocks import AwsIdentity

    identity = AwsIdentity("333333333333", "eu-west-1")

    def run() -> None:
        for plan in plans:
            references = {item["inputs"]["name"]: {} for item in plan["resources"]
                          if item["type"] == "pulumi:pulumi:StackReference"}
            replayed = run_function(floors.replay_program(plan), identity=identity, stack=plan["stack"],
                                    project=plan["project"], stack_outputs=references).plan
            assert len(replayed.resources) == len(plan["resources"]), (len(replayed.resources), plan["stack"])
    return _median_seconds(run, repeat)


def _median_seconds(run, repeat: int) -> float:
    run()  # warm-up: imports and caches
    times = []
    for _ in range(repeat):
        # what earlier runs left is frozen, so each run's collections scan that run's own objects only
        gc.collect()
        gc.freeze()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _warm_flat(count: int, repeat: int) -> float:
    from emlops.offline.engine import run_function
    from emlops.offline.mocks import AwsIdentity

    identity = AwsIdentity("333333333333", "eu-west-1")

    def run() -> None:
        plan = run_function(floors.flat_program(count), identity=identity, stack="flat").plan
        assert len(plan.resources) == count, (len(plan.resources), count)
    return _median_seconds(run, repeat)


def _warm_stack(project: Path, stack: str, repeat: int) -> dict:
    from emlops.offline.preview import preview_stack
    from emlops.program.stackfile import find_project

    found = find_project(project)
    registered: list[int] = []
    plans: list = []

    def run() -> None:
        counts: dict[str, int] = {}
        plan = preview_stack(stack, project=found,
                             progress=lambda name, count: counts.__setitem__(name, count)).plan
        registered[:] = [len(plan.resources), sum(counts.values())]
        plans[:] = [plan]
    seconds = _median_seconds(run, repeat)
    plan = json.loads(plans.pop().dumps())
    read = [json.loads(preview_stack(item["inputs"]["name"].rsplit("/", 1)[-1], project=found).plan.dumps())
            for item in plan["resources"] if item["type"] == "pulumi:pulumi:StackReference"]
    assert sum(len(each["resources"]) for each in [plan, *read]) == registered[1], "a referenced stack is missing"
    return {"seconds": seconds, "resources": registered[0], "registrations": registered[1],
            "replay_seconds": _warm_replay([*read, plan], repeat)}


def measure_warm(project: Path, stack: str, repeat: int) -> dict:
    """Child: the stack warm, and the flat program of its resource count (and of all its registrations)."""
    row = _warm_stack(project, stack, repeat)
    row["flat_seconds"] = _warm_flat(row["resources"], repeat)
    if row["registrations"] != row["resources"]:
        row["flat_registrations_seconds"] = _warm_flat(row["registrations"], repeat)
    return row


def measure_flat_cold(count: int) -> None:
    """Child: the flat program once, as a new process would run it, with the collector set as `emlops preview`
    sets it (emlops/cli/process.py), so the two cold rows differ by the program only."""
    from emlops.cli.process import console_process, one_preview_process
    from emlops.offline.engine import run_function
    from emlops.offline.mocks import AwsIdentity

    console_process()
    one_preview_process()
    run_function(floors.flat_program(count), identity=AwsIdentity("333333333333", "eu-west-1"), stack="flat")


def measure_replay_cold(path: Path) -> None:
    """Child: the replay of a plan once, as a new process would run it (the collector set as for the flat one)."""
    from emlops.cli.process import console_process, one_preview_process
    from emlops.offline.engine import run_function
    from emlops.offline.mocks import AwsIdentity

    console_process()
    plan = json.loads(path.read_text())
    one_preview_process()
    run_function(floors.replay_program(plan), identity=AwsIdentity("333333333333", "eu-west-1"), stack=plan["stack"],
                 project=plan["project"])


# ---- the parent: runs children, reports ------------------------------------------------------------------

def generated_stack(models: int) -> str:
    """A production stack with `models` provisioned, captured, canaried, autoscaled models, each with its card."""
    entries = "".join(f"""
      - name: model-{i:03d}
        source:
          s3_uri: s3://acme-ml-prod-models/model-{i:03d}/model.tar.gz
        image:
          uri: 333333333333.dkr.ecr.eu-west-1.amazonaws.com/serving:1.0.{i}
        variants:
          - instance_type: ml.m5.large
            initial_instance_count: 2
        deployment:
          strategy: canary
        autoscaling:
          min_instances: 2
          max_instances: 4
        monitoring:
          baseline:
            statistics_s3_uri: s3://acme-ml-prod-monitoring/model-{i:03d}/statistics.json
            constraints_s3_uri: s3://acme-ml-prod-monitoring/model-{i:03d}/constraints.json
        model_card:
          intended_uses: Benchmark model {i:03d}
          risk_rating: Low
          owner: bench
""" for i in range(models))
    return f"""config:
  emlops:platform:
    environment: bench
    production: true
    account_id: "333333333333"
    region: eu-west-1
    tags: {{owner: bench, cost-center: bench, data-classification: internal}}
    registry:
      mlflow: {{kind: none}}   # the package groups only (an MLflow role naming 100 groups exceeds IAM's policy size)
    audit:
      organization_trail: {{trail_arn: "arn:aws:cloudtrail:us-east-1:777777777777:trail/acme-organization-trail"}}
    network:
      vpc_id: vpc-0f1a2b3c4d5e6f7a8
      private_subnet_ids: [subnet-0e1f2a3b4c5d6e7f8, subnet-0f2a3b4c5d6e7f8a9, subnet-0a3b4c5d6e7f8a9b0]
    models:{entries}"""


def generated_project(scratch: Path, models: int) -> Path:
    """A project beside the real one: its program and components, one generated stack file `bench`."""
    shutil.copy(ROOT / "Pulumi.yaml", scratch / "Pulumi.yaml")
    (scratch / "infra").symlink_to(ROOT / "infra")
    (scratch / "stacks").mkdir()
    (scratch / "stacks" / "Pulumi.bench.yaml").write_text(generated_stack(models))
    return scratch


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from start to exit and peak resident MB of `command` (a new process); it must succeed."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}): {stderr.strip()}")
    peak_kb = usage.ru_maxrss if sys.platform != "darwin" else usage.ru_maxrss / 1024
    return seconds, peak_kb / 1024


def child_json(args: list[str], cwd: Path, env: dict[str, str]) -> Any:
    result = subprocess.run([sys.executable, __file__, *args], cwd=cwd, env=env, check=True, capture_output=True,
                            text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cold_runs(command: list[str], cwd: Path, env: dict[str, str], repeat: int,
              before_each=lambda: None) -> tuple[float, float]:
    """Median seconds and highest peak MB of `repeat` runs of `command`."""
    runs = []
    for _ in range(repeat):
        before_each()
        runs.append(timed(command, cwd, env))
    return statistics.median(seconds for seconds, _ in runs), max(peak for _, peak in runs)


def workflow_project(scratch: Path, stacks: list[str]) -> Path:
    """The project itself when the workflow row measures every stack, else one beside it with its program and
    only those stack files (`preview --all` previews every stack file of a project)."""
    if stacks == list(STACKS):
        return ROOT
    scratch.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", scratch / "Pulumi.yaml")
    (scratch / "infra").symlink_to(ROOT / "infra")
    (scratch / "stacks").mkdir()
    for stack in stacks:
        shutil.copy(ROOT / "stacks" / f"Pulumi.{stack}.yaml", scratch / "stacks" / f"Pulumi.{stack}.yaml")
    return scratch


def pr_workflow(env: dict[str, str], plans: Path, project: Path, stacks: list[str]) -> float:
    """Seconds of the PR workflow's head step: every stack previewed at once, then each checked from its plan."""
    start = time.perf_counter()
    emlops = [sys.executable, "-m", "emlops"]
    timed([*emlops, "preview", "--all", "--json-dir", str(plans), "-q"], project, env)
    for stack in stacks:
        timed([*emlops, "check", stack, "--plan", str(plans / f"{stack}.json"), "--json",
               str(plans / f"{stack}.check.json")], project, env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (the median is reported)")
    parser.add_argument("--models", type=int, default=100, help="models in the generated production stack")
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS),
                        help="which measurements: warm (in-process ratios), cold (new processes), workflow (PR step)")
    parser.add_argument("--stack", choices=STACKS, default="prod",
                        help="the shipped stack of the warm and cold rows (default: prod, the largest)")
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS),
                        help="the stacks of the workflow row (default: all of them, the PR workflow's project)")
    parser.add_argument("--suite", action="store_true", help="also time the test suite")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # a child's measurement
    args = parser.parse_args()
    if args.measure:
        kind, *values = args.measure
        if kind == "warm":  # PROJECT STACK [PROJECT STACK ...] REPEAT, one after the other in this process
            *pairs, repeat = values
            print(json.dumps([measure_warm(Path(project), stack, int(repeat))
                              for project, stack in zip(pairs[::2], pairs[1::2])]))
        elif kind == "flat-cold":
            measure_flat_cold(int(values[0]))
        elif kind == "replay-cold":
            measure_replay_cold(Path(values[0]))
        return

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        cache = scratch / "cache"
        env = {**os.environ, "EMLOPS_CACHE_DIR": str(cache)}
        empty_cache = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
        (scratch / "bench").mkdir()
        project = generated_project(scratch / "bench", args.models)

        if "warm" in args.rows:
            prod, bench = child_json(["--measure", "warm", str(ROOT), args.stack, str(project), "bench",
                                      str(args.repeat)], ROOT, env)
            report_warm(args.stack, prod, bench, args.models)
        if "cold" in args.rows:
            preview = [sys.executable, "-m", "emlops", "preview"]
            empty = cold_runs([*preview, args.stack, "-q"], ROOT, env, args.repeat, before_each=empty_cache)
            filled = cold_runs([*preview, args.stack, "-q"], ROOT, env, args.repeat)
            pad = " " * max(1, 10 - len(args.stack))
            print(f"cold `emlops preview {args.stack} -q`:{pad}{empty[0]:.2f} s, peak {empty[1]:.0f} MB (empty cache); "
                  f"{filled[0]:.2f} s, peak {filled[1]:.0f} MB (cache filled)")
            plan = project / "bench.json"
            bench_cold = cold_runs([*preview, "bench", "-q", "--json", str(plan)], project, env,
                                   max(1, args.repeat // 2))
            count = len(json.loads(plan.read_text())["resources"])
            print(f"cold `emlops preview bench -q`:     {bench_cold[0]:.2f} s, peak {bench_cold[1]:.0f} MB "
                  f"({args.models} models, {count} resources)")
            flat_cold = cold_runs([sys.executable, __file__, "--measure", "flat-cold", str(count)], ROOT, env,
                                  max(1, args.repeat // 2))
            print(f"cold flat program, same count:      {flat_cold[0]:.2f} s, peak {flat_cold[1]:.0f} MB")
            replay_cold = cold_runs([sys.executable, __file__, "--measure", "replay-cold", str(plan)], ROOT, env,
                                    max(1, args.repeat // 2))
            print(f"cold replay of the generated plan:  {replay_cold[0]:.2f} s, peak {replay_cold[1]:.0f} MB")
        if "workflow" in args.rows:
            empty_cache()
            stacks = [stack for stack in STACKS if stack in args.stacks]
            where = workflow_project(scratch / "workflow", stacks)
            empty = pr_workflow(env, scratch / "plans-empty", where, stacks)
            filled = pr_workflow(env, scratch / "plans-filled", where, stacks)
            print(f"PR workflow head step (preview --all + check --plan x{len(stacks)}): {empty:.2f} s (empty cache); "
                  f"{filled:.2f} s (cache filled)")
        if args.suite:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=ROOT, check=True,
                           capture_output=True)
            print(f"test suite:                         {time.perf_counter() - start:.1f} s")


def report_warm(stack: str, prod: dict, bench: dict, models: int) -> None:
    per = lambda row, key="seconds": row[key] / row["resources"] * 1000  # noqa: E731
    print(f"{stack} preview, in-process:{' ' * (11 - len(stack))}{prod['seconds'] * 1000:.0f} ms for "
          f"{prod['resources']} resources ({prod['registrations']} registrations with the stacks it reads)")
    print(f"flat pulumi_aws, {prod['resources']} resources:       {prod['flat_seconds'] * 1000:.0f} ms")
    print(f"ratio {stack} / flat:{' ' * (18 - len(stack))}{prod['seconds'] / prod['flat_seconds']:.2f}")
    if "flat_registrations_seconds" in prod:
        print(f"flat pulumi_aws, {prod['registrations']} registrations: "
              f"{prod['flat_registrations_seconds'] * 1000:.0f} ms; ratio "
              f"{prod['seconds'] / prod['flat_registrations_seconds']:.2f}")
    print(f"replay of the {prod['registrations']} registrations' plans (the resources of {stack} and of the stacks "
          f"it reads, registered directly): {prod['replay_seconds'] * 1000:.0f} ms; ratio "
          f"{prod['seconds'] / prod['replay_seconds']:.2f}")
    print(f"generated prod stack, {models:>3} models: {bench['resources']:>5} resources, in-process "
          f"{bench['seconds']:.2f} s ({per(bench):.2f} ms/resource); flat {bench['flat_seconds']:.2f} s "
          f"({per(bench, 'flat_seconds'):.2f} ms/resource); ratio {bench['seconds'] / bench['flat_seconds']:.2f}; "
          f"replay {bench['replay_seconds']:.2f} s, ratio {bench['seconds'] / bench['replay_seconds']:.2f}")


if __name__ == "__main__":
    main()
