"""`emlops preview --all`: every stack of the project, each previewed in its own process, as many at a time as
there are CPUs (what the pull-request workflow calls), and the terminal progress of a single preview.

A stack's preview is one short-lived process: its plan is written to `<json-dir>/<stack>.json` and the parent
reads back only its resource count. One stack's failure (its one-line error, its exit code) does not stop the
others; the command exits with the worst code (2 for a bad stack file over 1 for an internal error).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import typer


def preview_all(json_dir: Optional[Path], mlflow_uri: Optional[str], quiet: bool) -> int:
    """Preview every stack of the project; one line per stack (its plan, or its error); the worst exit code."""
    from emlops.cli.process import AT_ONCE
    from emlops.program.config import ConfigError
    from emlops.program.stackfile import find_project

    try:
        project = find_project()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        return 2
    stacks = project.stacks()
    if json_dir is not None:
        json_dir.mkdir(parents=True, exist_ok=True)

    at_once = max(1, min(len(stacks), os.cpu_count() or 1))
    # each preview builds its definitions in a worker of its own only if there are cores to spare (cli/process.py)
    environment = {**os.environ, AT_ONCE: str(at_once)}

    def run(stack: str) -> tuple[str, int, str]:
        plan = (json_dir or Path(os.devnull)) / f"{stack}.json" if json_dir is not None else None
        command = [sys.executable, "-m", "emlops", "preview", stack, "--quiet"]
        command += ["--json", str(plan)] if plan is not None else []
        command += ["--mlflow-uri", mlflow_uri] if mlflow_uri else []
        done = subprocess.run(command, cwd=project.root, capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            return stack, done.returncode, done.stderr.strip() or f"emlops preview {stack}: exit {done.returncode}"
        if plan is None:
            return stack, 0, f"{stack}: previewed"
        count = len(json.loads(plan.read_text(encoding="utf-8"))["resources"])
        return stack, 0, f"{stack}: {count} resources -> {plan}"

    # the biggest stack files start first (more config, more resources: the longest previews), so that the last to
    # start are short and the cores finish together; the lines keep the stacks' order
    order = sorted(stacks, key=lambda stack: -_size(project.stack_path(stack)))
    with ThreadPoolExecutor(max_workers=at_once) as pool:
        done = dict(zip(order, pool.map(run, order)))
    results = [done[stack] for stack in stacks]
    for stack, code, line in results:
        if code != 0:
            typer.echo(line, err=True)
        elif not quiet:
            typer.echo(line)
    return max((code for _, code, _ in results), default=0)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # its preview reports it


def terminal_progress(quiet: bool) -> Optional[Callable[[str, int], None]]:
    """A progress callback that keeps one status line on a terminal's stderr ("previewing prod: 1,200 resources
    registered"), or None when nobody is watching (-q, or stderr is not a terminal): then nothing is printed."""
    if quiet or not sys.stderr.isatty():
        return None
    from rich.console import Console

    status = Console(stderr=True).status("previewing")
    status.start()

    def progress(stack: str, count: int) -> None:
        if count % 25 == 0 or count < 25:
            status.update(f"previewing {stack}: {count:,} resources registered")

    progress.stop = status.stop  # type: ignore[attr-defined]
    return progress
