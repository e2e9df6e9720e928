"""The `emlops` command: offline previews and tooling built on the mock engine."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    help="emlops: an enterprise MLOps platform on AWS, previewed offline.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_INPUT = 2  # bad stack config or component arguments
EXIT_INTERNAL = 1


def _fail(message: str, code: int = EXIT_INPUT) -> None:
    from emlops.program.config_errors import printable

    typer.echo(printable(message), err=True)  # one line, whatever the message quotes
    raise typer.Exit(code)


@app.command()
def preview(
    stack: Optional[str] = typer.Argument(None, help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the plan (emlops.plan/v1) to this file."),
    all_stacks: bool = typer.Option(False, "--all", help="Preview every stack of the project, each in its own "
                                    "process, as many at a time as there are CPUs."),
    json_dir: Optional[Path] = typer.Option(None, "--json-dir", help="With --all: write each plan to "
                                            "DIR/<stack>.json."),
    mlflow_uri: Optional[str] = typer.Option(
        None, "--mlflow-uri", help="Resolve models:/ references against this MLflow tracking URI "
        "(e.g. sqlite:///mlflow.db); without it they are shown as unknown."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
) -> None:
    """Show what STACK would create, without the Pulumi CLI, credentials or network."""
    from emlops.cli.preview_all import preview_all, terminal_progress

    if all_stacks:
        if stack is not None or json_path is not None:
            _fail("--all previews every stack: give no STACK, and --json-dir DIR instead of --json")
        raise typer.Exit(preview_all(json_dir, mlflow_uri, quiet))
    if stack is None:
        _fail("give a STACK (stacks/Pulumi.<stack>.yaml) or --all")
    if json_dir is not None:
        _fail("--json-dir goes with --all; for one stack, use --json PATH")
    from emlops.cli.process import background_builds, one_preview_process

    background_builds(stack)  # before the preview's imports: the SDK's import overlaps them
    from emlops.offline.preview import PreviewError, preview_stack

    one_preview_process()
    progress = terminal_progress(quiet)
    try:
        result = preview_stack(stack, mlflow_uri=mlflow_uri, progress=progress)
    except PreviewError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:  # a bug in emlops or a component, not bad input
        if debug:
            traceback.print_exc()
        _fail(f"emlops: internal error while previewing {stack}: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback)", EXIT_INTERNAL)
    finally:
        if progress is not None:
            progress.stop()

    if json_path is not None:
        result.plan.write(json_path)
    if not quiet:
        from emlops.cli.render import print_preview

        print_preview(result.plan, result.diagnostics, json_path)



@app.command("config-schema")
def config_schema(
    output_format: str = typer.Option("json", "--format", help="json (JSON Schema) or markdown (reference)."),
) -> None:
    """Print the stack configuration schema (`emlops:platform`)."""
    if output_format == "json":
        from emlops.program.platform import json_schema

        typer.echo(json.dumps(json_schema(), indent=2))
    elif output_format == "markdown":
        from emlops.cli.docs import config_reference

        typer.echo(config_reference(), nl=False)
    else:
        _fail(f"--format: {output_format!r} is not supported; allowed: json, markdown")


def _register_operations() -> None:
    # Operator commands (boto3) live in their own module; importing it is cheap: boto3, the components and the
    # approval and promotion modules load when a command runs (tests/test_cli.py holds `import emlops.cli` to it).
    from emlops.cli.operations import register

    register(app)


_register_operations()


def _register_review() -> None:
    # diff / graph / pr-comment read plan.json files; importing the module is cheap (no pulumi).
    from emlops.cli.review import register

    register(app)


_register_review()


def _register_check() -> None:
    # `check` runs the policy pack's rules on the offline plan; pulumi_policy loads only when it runs.
    from emlops.cli.check import register

    register(app)


_register_check()


def _register_cost() -> None:
    # `cost` reads a plan and a price book; `prices refresh` loads boto3 only when it runs.
    from emlops.cli.cost import register

    register(app)


_register_cost()


def _register_evidence() -> None:
    # `report` gathers the guardrails' evidence per framework control; the rules load only when it runs.
    from emlops.cli.evidence import register

    register(app)


_register_evidence()


def main() -> None:
    """Console entry point."""
    from emlops.cli.process import console_process

    console_process()
    try:
        app(prog_name="emlops")
    finally:
        # a definition worker the command started (cli/process.py) is killed, not waited for: an error that ends
        # the command before its preview (a bad stack file) must not wait for the worker to import the SDK
        worker = sys.modules.get("emlops.components.build_worker")
        if worker is not None:
            worker.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
