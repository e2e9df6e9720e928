"""Review commands: `emlops diff`, `emlops graph` and `emlops pr-comment` (they read plan.json files).

Bad input (a missing file, a file that is not an emlops plan, an unknown format, a stack file the gate cannot
use) ends with one line on stderr and exit code 2, never a traceback. `emlops diff --fail-on-stateful` (the
stateful-change gate) ends with exit code 1 and one line per stateful resource lost without an accepted change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

EXIT_INPUT = 2
EXIT_INTERNAL = 1  # also the gate's verdict: a stateful resource lost without an accepted change


def _fail(command: str, message: str, code: int = EXIT_INPUT) -> None:
    typer.echo(f"emlops {command}: {message}", err=True)
    raise typer.Exit(code)


def _run(command: str, action: Callable[[], None]) -> None:
    from emlops.review.comment import CommentError
    from emlops.review.gate import GateError

    try:
        action()
    except CommentError as exc:
        _fail(command, str(exc))
    except GateError as exc:  # the stack file's own errors name the file already
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    except ValueError as exc:  # an unsupported --format
        _fail(command, str(exc))


def _choose(command: str, option: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        _fail(command, f"{option}: {value!r} is not supported; allowed: {', '.join(allowed)}")


def register(app: typer.Typer) -> None:
    """Add `diff`, `graph` and `pr-comment` to APP."""

    @app.command("diff")
    def diff_command(
        base: Path = typer.Argument(..., help="The plan before the change (emlops.plan/v1 JSON)."),
        head: Path = typer.Argument(..., help="The plan after the change."),
        output_format: str = typer.Option("markdown", "--format", help="markdown or text."),
        fail_on_stateful: bool = typer.Option(
            False, "--fail-on-stateful", help="The stateful-change gate: exit 1 when HEAD replaces or deletes a "
            "stateful resource (key, bucket, feature group, package group, repository, ...) that the stack file "
            "(stacks/Pulumi.<the plans' stack>.yaml) does not accept in guardrails.accepted_stateful_changes."),
    ) -> None:
        """Show what changes from BASE to HEAD: added, removed, changed and replaced resources."""
        _choose("diff", "--format", output_format, ("markdown", "text"))

        def action() -> None:
            from emlops.review import diff as diff_module
            from emlops.review.comment import load_plan

            base_plan, head_plan = load_plan(base), load_plan(head)
            changes = diff_module.diff_plans(base_plan, head_plan)
            report = None
            if fail_on_stateful:
                from emlops.review import gate

                report = gate.gate(base_plan, head_plan, changes)
            render = diff_module.render_markdown if output_format == "markdown" else diff_module.render_text
            text = render(changes, head_plan.stack)
            if report is not None:
                text += "\n" + (gate.render_markdown if output_format == "markdown" else gate.render_text)(report)
            typer.echo(text, nl=False)
            if report is not None:
                for line in report.lines() + [f"warning: {w}" for w in report.warnings]:
                    typer.echo(f"emlops diff: {line}", err=True)
                if report.failed:
                    raise typer.Exit(EXIT_INTERNAL)

        _run("diff", action)

    @app.command("graph")
    def graph_command(
        stack: Optional[str] = typer.Argument(None, help="Stack to preview offline (stacks/Pulumi.<stack>.yaml)."),
        plan_path: Optional[Path] = typer.Option(None, "--plan", help="Draw this plan file instead of a stack."),
        output_format: str = typer.Option("mermaid", "--format", help="mermaid or dot."),
        sources: list[str] = typer.Option([], "--from", help="Draw only the shortest paths from this resource "
                                          "(its logical name, e.g. prod-datasets-bucket; repeatable) ..."),
        targets: list[str] = typer.Option([], "--to", help="... to this one (e.g. prod-churn-endpoint; repeatable)."),
    ) -> None:
        """Draw the platform of STACK (or of a plan file): components, key resources, data flow."""
        from emlops.review.graph import FORMATS

        _choose("graph", "--format", output_format, FORMATS)
        if (stack is None) == (plan_path is None):
            _fail("graph", "give either a STACK or --plan PATH (not both)")
        if bool(sources) != bool(targets):
            _fail("graph", "--from and --to go together: give both or neither")

        def action() -> None:
            from emlops.review.comment import load_plan
            from emlops.review.graph import graph

            if plan_path is not None:
                plan = load_plan(plan_path)
            else:
                from emlops.cli.process import one_preview_process
                from emlops.offline.preview import PreviewError, preview_stack

                one_preview_process(stack)
                try:
                    plan = preview_stack(stack).plan
                except PreviewError as exc:
                    typer.echo(str(exc), err=True)
                    raise typer.Exit(exc.exit_code) from None
                except Exception as exc:  # a bug in emlops or a component, not bad input
                    typer.echo(f"emlops: internal error while previewing {stack}: {type(exc).__name__}: {exc}",
                               err=True)
                    raise typer.Exit(EXIT_INTERNAL) from None
            try:
                text = graph(plan, output_format, sources, targets)
            except ValueError as exc:
                _fail("graph", str(exc))
            typer.echo(text, nl=False)

        _run("graph", action)

    @app.command("pr-comment")
    def pr_comment_command(
        base: Path = typer.Option(..., "--base", help="Directory of the base branch's <stack>.json plans."),
        head: Path = typer.Option(..., "--head", help="Directory of the PR's <stack>.json plans "
                                  "(and optional <stack>.check.json reports)."),
        output: Optional[Path] = typer.Option(None, "--output", help="Write the comment here instead of stdout."),
        prices: Optional[Path] = typer.Option(None, "--prices", help="Price book (emlops.prices/v1) for each stack's "
                                              "monthly cost before and after. Default: prices/aws-price-book.json in "
                                              "the project, if it exists; without one, no cost is shown."),
    ) -> None:
        """Build the pull-request comment: per stack the diff, the policy verdict, the cost and a diagram."""
        from emlops.cli.cost import load_book

        book = load_book(prices, "pr-comment")

        def action() -> None:
            from emlops.review.comment import build_comment

            text = build_comment(base, head, prices=book)
            if output is None:
                typer.echo(text, nl=False)
            else:
                output.write_text(text, encoding="utf-8")

        _run("pr-comment", action)
