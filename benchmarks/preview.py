"""Offline preview speed: the prod stack against a flat pulumi_aws program of the same size.

Both run in-process under the same truthful mocks (emlops.engine), so the ratio shows what the
components, grants and policy rendering cost on top of Pulumi's own mock machinery. A cold
`emlops preview prod` (new process, imports included) is timed too, since that is what CI pays.

    python benchmarks/preview.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emlops.engine import run_function  # noqa: E402
from emlops.mocks import AwsIdentity  # noqa: E402
from emlops.preview import preview_stack  # noqa: E402
from emlops.stackfile import find_project  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
