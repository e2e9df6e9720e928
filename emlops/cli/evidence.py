"""`emlops report STACK`: the evidence report of a stack for compliance frameworks, as markdown or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

FORMATS = ("markdown", "html")


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
        output_format: str = typer.Option("markdown", "--format", help="markdown or html."),
        output: Optional[Path] = typer.Option(None, "--output", help="Write the report to this file instead of "
                                              "standard output."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
    ) -> None:
        """Per control of each framework: the rules that evidence it, their result per resource, the suppressions
        with their reasons, and the controls no rule here covers. Exit 0 whatever the findings
        (`emlops check` is the gate)."""
        from emlops.program.config_errors import printable
        from emlops.cli.check import refuse_bad_options, stack_errors

        refuse_bad_options(output_format, FORMATS, framework, plan_path, stack)
        from emlops.review.evidence import report_stack
        from emlops.review.evidence_render import RENDERERS

        with stack_errors(stack, "reporting on", debug):
            text = RENDERERS[output_format](report_stack(stack, plan_path, framework))
        if output is None:
            typer.echo(text, nl=False)
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            typer.echo(printable(f"--output {output}: cannot write the report: {exc.strerror or exc}"), err=True)
            raise typer.Exit(2)
        typer.echo(f"evidence report of {stack} written to {output}", err=True)
