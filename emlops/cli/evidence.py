"""`emlops report STACK`: the evidence report of a stack for compliance frameworks, as markdown or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

FORMATS = ("markdown", "html")
EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}


def output_formats(output_format: Optional[str], outputs: list[Path]) -> list[str]:
    """The format of each output (of standard output when there is none): `--format` for all of them, else each
    file's extension; exit 2 with one line on a file whose format neither says."""
    if output_format is not None or not outputs:
        return [output_format or "markdown"] * max(1, len(outputs))
    unknown = [str(path) for path in outputs if path.suffix.lower() not in EXTENSIONS]
    if unknown:
        typer.echo(f"--output {unknown[0]}: name it .md or .html, or give --format markdown or html", err=True)
        raise typer.Exit(2)
    return [EXTENSIONS[path.suffix.lower()] for path in outputs]


def register(app: typer.Typer) -> None:
    """Add `report` to APP."""

    @app.command("report")
    def report_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        plan_path: Optional[Path] = typer.Option(None, "--plan", help="Report on this plan file (emlops.plan/v1) "
                                                 "instead of previewing; the stack's config is still read."),
        framework: Optional[str] = typer.Option(
            None, "--framework", help="Only this framework: nist-800-53, soc2, iso-27001, pci-dss, hipaa or "
            "cis-aws (default: all of them)."),
        output_format: Optional[str] = typer.Option(
            None, "--format", help="markdown or html (default: each --output's extension, .md or .html; markdown "
            "on standard output)."),
        outputs: Optional[list[Path]] = typer.Option(
            None, "--output", help="Write the report to this file instead of standard output; give it again for "
            "more files (e.g. --output r.html --output r.md: one evaluation, both formats)."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
    ) -> None:
        """Per control of each framework: the rules that evidence it, their result per resource, the suppressions
        with their reasons, and the controls no rule here covers. Exit 0 whatever the findings
        (`emlops check` is the gate)."""
        from emlops.program.config_errors import printable
        from emlops.cli.check import refuse_bad_options, stack_errors

        outputs = outputs or []
        formats = output_formats(output_format, outputs)
        # only --format can name an unknown format: an output's extension maps to a known one
        refuse_bad_options(output_format or formats[0], FORMATS, framework, plan_path, stack)
        from emlops.review.evidence import report_stack
        from emlops.review.evidence_render import RENDERERS

        with stack_errors(stack, "reporting on", debug):
            report = report_stack(stack, plan_path, framework)
            texts = [RENDERERS[each](report) for each in formats]
        if not outputs:
            typer.echo(texts[0], nl=False)
            return
        for output, text in zip(outputs, texts):
            try:
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                typer.echo(printable(f"--output {output}: cannot write the report: {exc.strerror or exc}"), err=True)
                raise typer.Exit(2)
            typer.echo(f"evidence report of {stack} written to {output}", err=True)
