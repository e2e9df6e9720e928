"""Offline preview speed and memory.

1. The prod stack against a flat pulumi_aws program of the same size, both in-process under the
   same truthful mocks (emlops.offline.engine): the ratio is what the components, grants and policy
   rendering cost on top of Pulumi's own mock machinery. A cold `emlops preview prod` (new process,
   imports included) is timed too, since that is what CI pays.
2. Scale: generated production stacks with 10 and 100 models, each previewed in its own process
   so its peak memory (max RSS, imports included) is its own. Time must grow linearly
   (time(100) <= 11 x time(10)) and peak memory at 100 models stay under 400 MB.

    python benchmarks/preview.py [--repeat 5] [--sizes 10 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emlops.offline.engine import run_function  # noqa: E402
from emlops.offline.mocks import AwsIdentity  # noqa: E402
from emlops.offline.preview import preview_stack  # noqa: E402
from emlops.program.stackfile import find_project  # noqa: E402


def time_prod(repeat: int) -> tuple[list[float], int]:
    project = find_project(ROOT)
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = len(preview_stack("prod", project=project).plan.resources)
        times.append(time.perf_counter() - start)
    return times, count


def flat_program(count: int):
    """`count` registrations in total (the root stack included), all plain IAM roles."""
    import pulumi_aws as aws

    def program() -> None:
        for i in range(count - 1):
            aws.iam.Role(f"role-{i}", assume_role_policy='{"Version": "2012-10-17", "Statement": []}')

    return program


def time_flat(count: int, repeat: int) -> list[float]:
    identity = AwsIdentity("333333333333", "eu-west-1")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        plan = run_function(flat_program(count), identity=identity, stack="flat").plan
        times.append(time.perf_counter() - start)
        assert len(plan.resources) == count, (len(plan.resources), count)
    return times


def time_cold() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "emlops", "preview", "prod", "--quiet"], cwd=ROOT, check=True)
    return time.perf_counter() - start


def generated_stack(models: int) -> str:
    """A production stack with `models` provisioned, captured, canaried, autoscaled models."""
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
    network:
      vpc_id: vpc-0f1a2b3c4d5e6f7a8
      private_subnet_ids: [subnet-0e1f2a3b4c5d6e7f8, subnet-0f2a3b4c5d6e7f8a9, subnet-0a3b4c5d6e7f8a9b0]
    models:{entries}"""


def measure_generated(models: int) -> dict:
    """Preview a generated stack in this process; report time, resource count and peak RSS."""
    with tempfile.TemporaryDirectory() as scratch:
        project = Path(scratch)
        shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
        (project / "infra").symlink_to(ROOT / "infra")
        (project / "stacks").mkdir()
        (project / "stacks" / "Pulumi.bench.yaml").write_text(generated_stack(models))
        start = time.perf_counter()
        plan = preview_stack("bench", project=find_project(project)).plan
        seconds = time.perf_counter() - start
    peak_mb = _peak_rss_mb()
    return {"models": models, "resources": len(plan.resources), "seconds": seconds, "peak_mb": peak_mb}


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the process's own address space;
    ru_maxrss would also count the parent's pages that the fork copied before exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: KiB on Linux, bytes on macOS


def time_generated(models: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--measure", str(models)], cwd=ROOT, check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100])
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # child process of the scale test
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure_generated(args.measure)))
        return

    time_prod(1)  # warm-up: imports and caches
    prod, count = time_prod(args.repeat)
    flat = time_flat(count, args.repeat)
    cold = time_cold()
    prod_median, flat_median = statistics.median(prod), statistics.median(flat)
    print(f"resources registered (prod):      {count}")
    print(f"prod preview, in-process median:  {prod_median * 1000:.0f} ms  "
          f"({prod_median / count * 1000:.2f} ms/resource)")
    print(f"flat pulumi_aws, same count:      {flat_median * 1000:.0f} ms  "
          f"({flat_median / count * 1000:.2f} ms/resource)")
    print(f"ratio prod / flat:                {prod_median / flat_median:.2f}")
    print(f"cold `emlops preview prod -q`:    {cold:.2f} s (new process, imports included)")

    scale = [time_generated(size) for size in args.sizes]
    for row in scale:
        print(f"generated prod stack, {row['models']:>3} models: {row['resources']:>5} resources, "
              f"{row['seconds']:.2f} s, peak RSS {row['peak_mb']:.0f} MB")
    if len(scale) >= 2:
        small, large = scale[0], scale[-1]
        factor = large["models"] / small["models"]
        print(f"time({large['models']}) / time({small['models']}) = {large['seconds'] / small['seconds']:.2f} "
              f"(linear bound: {factor * 1.1:.1f}); peak at {large['models']} models "
              f"{'under' if large['peak_mb'] < 400 else 'OVER'} 400 MB")


if __name__ == "__main__":
    main()
