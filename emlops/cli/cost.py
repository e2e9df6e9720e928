"""`emlops cost STACK`: what a stack runs in a month and, with a price book, what that costs;
`emlops prices refresh`: build the price book from the AWS Price List API.

The price book lives at `prices/aws-price-book.json` in the project unless `--prices`/`--output` say otherwise.
Bad input (a missing or malformed book or plan, an unknown format) ends with one line on stderr and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

EXIT_INPUT = 2
EXIT_INTERNAL = 1


def _fail(command: str, message: str, code: int = EXIT_INPUT) -> None:
    from emlops.program.config_errors import printable

    typer.echo(printable(f"emlops {command}: {message}"), err=True)
    raise typer.Exit(code)


def default_book_path() -> Optional[Path]:
    """`prices/aws-price-book.json` of the project the command runs in, or None outside a project."""
    from emlops.program.config import ConfigError
    from emlops.program.project import find_project
    from emlops.review.prices import DEFAULT_PATH

    try:
        return find_project().root / DEFAULT_PATH
    except ConfigError:
        return None


def load_book(path: Optional[Path], command: str):
    """The book at PATH (which must exist), else the project's default book if there is one, else None."""
    from emlops.review.prices import PriceBook, PriceBookError

    if path is None:
        path = default_book_path()
        if path is None or not path.exists():
            return None
    try:
        return PriceBook.load(path)
    except PriceBookError as exc:
        _fail(command, str(exc))


def _plan(stack: str, plan_path: Optional[Path]):
    from emlops.review.comment import CommentError, load_plan

    if plan_path is not None:
        try:
            plan = load_plan(plan_path)
        except CommentError as exc:
            _fail("cost", str(exc))
        if plan.stack != stack:
            _fail("cost", f"--plan {plan_path}: is the plan of stack {plan.stack!r}, not {stack!r}")
        return plan
    from emlops.cli.process import one_preview_process
    from emlops.offline.preview import PreviewError, preview_stack

    one_preview_process(stack)
    try:
        return preview_stack(stack).plan
    except PreviewError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:  # a bug in emlops or a component, not bad input
        _fail("cost", f"internal error while previewing {stack}: {type(exc).__name__}: {exc}", EXIT_INTERNAL)


def _stack_regions() -> list[str]:
    from emlops.program.config import ConfigError
    from emlops.program.project import find_project

    try:
        project = find_project()
        regions = set()
        for stack in project.stacks():
            document = project.read_stack(stack)
            region = (((document or {}).get("config") or {}).get("emlops:platform") or {}).get("region")
            if isinstance(region, str):
                regions.add(region)
        return sorted(regions)
    except (ConfigError, AttributeError):
        return []


def register(app: typer.Typer) -> None:
    """Add `cost` and `prices refresh` to APP."""
    from emlops.review.cost import FORMATS

    @app.command("cost")
    def cost_command(
        stack: str = typer.Argument(..., help="Stack name: previews stacks/Pulumi.<stack>.yaml (or reads --plan)."),
        plan_path: Optional[Path] = typer.Option(None, "--plan", help="Price this plan file (emlops.plan/v1) "
                                                 "instead of previewing the stack."),
        prices: Optional[Path] = typer.Option(None, "--prices", help="Price book (emlops.prices/v1). Default: "
                                              "prices/aws-price-book.json in the project, if it exists."),
        output_format: str = typer.Option("table", "--format", help="table, json or markdown."),
    ) -> None:
        """What STACK runs in a month (capacity) and, with a price book, its monthly low and high cost."""
        from emlops.review.cost import cost_of, render

        if output_format not in FORMATS:
            _fail("cost", f"--format: {output_format!r} is not supported; allowed: {', '.join(FORMATS)}")
        book = load_book(prices, "cost")
        typer.echo(render(cost_of(_plan(stack, plan_path), book), output_format), nl=False)

    prices_app = typer.Typer(help="The price book `emlops cost` reads, from the AWS Price List API.",
                             no_args_is_help=True)
    app.add_typer(prices_app, name="prices")

    @prices_app.command("refresh")
    def refresh_command(
        regions: Optional[list[str]] = typer.Option(None, "--region", help="Region to price (repeatable). "
                                                    "Default: the regions of the project's stacks."),
        output: Optional[Path] = typer.Option(None, "--output", help="Where to write the book. Default: "
                                              "prices/aws-price-book.json in the project."),
    ) -> None:
        """Build the price book with pricing:GetProducts (needs AWS credentials; the API answers in us-east-1)."""
        from botocore.exceptions import BotoCoreError, ClientError

        from emlops.review.prices import refresh, write

        regions = list(regions or _stack_regions())
        if not regions:
            _fail("prices refresh", "no region: give --region REGION (no stack file of a project names one)")
        output = output or default_book_path()
        if output is None:
            _fail("prices refresh", "give --output FILE (not in an emlops project)")
        try:
            book = refresh(regions)
        except (BotoCoreError, ClientError) as exc:
            _fail("prices refresh", f"the AWS Price List API did not answer: {exc}")
        write(book, output)
        counts = ", ".join(f"{region}: {len(content['prices'])} prices" for region, content in book["regions"].items())
        typer.echo(f"price book written to {output} ({counts}; built {book['generatedAt']})")
