"""`emlops check STACK`: the guardrails report, as text (rich) or markdown, and the exit code CI acts on;
`emlops rules`: the rules themselves."""

from __future__ import annotations

import contextlib
import json
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # the rules load when the command runs, not when `emlops --help` does
    from emlops.review.check import CheckReport, Violation

SEVERITIES = ("critical", "high", "medium", "low")
_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def refuse_bad_options(output_format: str, allowed: tuple[str, ...], framework: Optional[str],
                       plan_path: Optional[Path], stack: Optional[str] = None) -> None:
    """Exit 2 with one line on a format or framework emlops does not know, before any preview; without a plan to
    read, make this process fit for the one preview it will run (of `stack`)."""
    from emlops.review.check import CheckError, framework_rules

    if output_format not in allowed:
        typer.echo(f"--format: {output_format!r} is not supported; allowed: {', '.join(allowed)}", err=True)
        raise typer.Exit(2)
    try:
        framework_rules(framework)
    except CheckError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(exc.exit_code)
    if plan_path is None:
        from emlops.cli.process import one_preview_process

        one_preview_process(stack)


@contextlib.contextmanager
def stack_errors(stack: str, doing: str, debug: bool) -> Iterator[None]:
    """Bad input (CheckError) as its one line and exit code; anything else as an internal error of emlops or a rule
    while `doing` STACK, exit 1 (its traceback with --debug)."""
    from emlops.program.config_errors import printable
    from emlops.review.check import CheckError

    try:
        yield
    except CheckError as exc:
        typer.echo(printable(str(exc)), err=True)
        raise typer.Exit(exc.exit_code)
    except Exception as exc:  # a bug in emlops or a rule, not bad input
        if debug:
            traceback.print_exc()
        typer.echo(printable(f"emlops: internal error while {doing} {stack}: {type(exc).__name__}: {exc} "
                             "(rerun with --debug for the traceback)"), err=True)
        raise typer.Exit(1)


def _resource(v: "Violation") -> str:
    return f"{v.name} ({v.type})" if v.name else "(stack)"


def _summary(report: "CheckReport") -> str:
    advisory = sum(1 for v in report.violations if v.enforcement == "advisory" and not v.suppressed)
    suppressed = sum(1 for v in report.violations if v.suppressed)
    rules = f"{report.rules_evaluated} rules" + (f" of {report.framework}" if report.framework else "")
    return (f"{rules} evaluated on {report.resources} resources of {report.stack}: "
            f"{report.mandatory_violations} mandatory violation(s), {advisory} advisory, {suppressed} suppressed")


def print_report(report: "CheckReport", console: Optional[Console] = None) -> None:
    console = console or Console(highlight=False, soft_wrap=False)
    open_violations = [v for v in report.violations if not v.suppressed]
    for severity in SEVERITIES:
        group = [v for v in open_violations if v.severity == severity]
        if not group:
            continue
        table = Table(title=f"[{_STYLE[severity]}]{severity.upper()}[/] ({len(group)})", title_justify="left",
                      show_edge=False)
        for column in ("rule", "resource", "violation", "remediation"):
            table.add_column(column, overflow="fold")
        for v in group:
            level = "" if v.enforcement == "mandatory" else " [dim](advisory)[/dim]"
            table.add_row(escape(v.rule) + level, escape(_resource(v)), escape(v.message), escape(v.remediation))
        console.print(table)
    suppressed = [v for v in report.violations if v.suppressed]
    if suppressed:
        table = Table(title=f"Suppressed ({len(suppressed)})", title_justify="left", show_edge=False)
        for column in ("rule", "resource", "violation", "reason"):
            table.add_column(column, overflow="fold")
        for v in suppressed:
            table.add_row(escape(v.rule), escape(_resource(v)), escape(v.message), escape(v.reason or ""))
        console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]", soft_wrap=True)
    verdict = "[red]FAILED[/red]" if report.failed else "[green]passed[/green]"
    console.print(f"{verdict}: {escape(_summary(report))}", soft_wrap=True)


def markdown_report(report: "CheckReport") -> str:
    """The report as GitHub-flavoured markdown (for pull-request comments)."""
    verdict = "❌ failed" if report.failed else "✅ passed"
    lines = [f"### emlops check `{report.stack}`: {verdict}", "", _summary(report), ""]
    rows = report.violations
    if rows:
        lines += ["| severity | rule | resource | violation | remediation / reason |", "|---|---|---|---|---|"]
        for v in rows:
            rule = v.rule + ("" if v.enforcement == "mandatory" else " (advisory)")
            rule += " (suppressed)" if v.suppressed else ""
            note = f"suppressed: {v.reason}" if v.suppressed else v.remediation
            cells = [v.severity, f"`{rule}`", f"`{_resource(v)}`", v.message, note]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [f"> warning: {w}" for w in report.warnings]
    return "\n".join(lines).rstrip() + "\n"


def print_rules(console: Optional[Console] = None) -> None:
    """Every rule of the policy pack: name, kind, enforcement, severity and what it requires."""
    from emlops.guardrails import rule_rows

    console = console or Console(highlight=False, soft_wrap=False)
    table = Table(show_edge=False)
    for column in ("rule", "kind", "enforcement", "severity", "what it requires"):
        table.add_column(column, overflow="fold")
    for row in rule_rows():
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `check` and `rules` to APP."""

    @app.command("rules")
    def rules_command(
        output_format: str = typer.Option("text", "--format", help="text or markdown."),
    ) -> None:
        """List the guardrails: every rule `emlops check` and the policy pack run."""
        from emlops.guardrails import rules_markdown

        if output_format not in ("text", "markdown"):
            typer.echo(f"--format: {output_format!r} is not supported; allowed: text, markdown", err=True)
            raise typer.Exit(2)
        if output_format == "markdown":
            typer.echo(rules_markdown(), nl=False)
        else:
            print_rules()

    @app.command("check")
    def check_command(
        stack: str = typer.Argument(..., help="Stack name: reads stacks/Pulumi.<stack>.yaml."),
        plan_path: Optional[Path] = typer.Option(None, "--plan", help="Check this plan file (emlops.plan/v1) "
                                                 "instead of previewing; the stack's config is still read."),
        json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report (emlops.check/v1) here."),
        output_format: str = typer.Option("text", "--format", help="text or markdown."),
        pack_config: Optional[Path] = typer.Option(
            None, "--pack-config", help="Also write STACK's policy pack config (rule settings and suppressions) "
            "to this file, for `pulumi preview --policy-pack policy --policy-pack-config PATH`; it is written "
            "before the check runs, so a failing check still leaves it."),
        framework: Optional[str] = typer.Option(
            None, "--framework", help="Run only the rules that evidence controls of this framework: "
            "nist-800-53, soc2, iso-27001, pci-dss, hipaa or cis-aws."),
        prices: Optional[Path] = typer.Option(
            None, "--prices", help="Price book for guardrails.monthly_budget_usd (emlops.prices/v1). Default: "
            "prices/aws-price-book.json in the project, if it exists; without one the budget is not checked."),
        debug: bool = typer.Option(False, "--debug", help="Show tracebacks of internal errors."),
    ) -> None:
        """Run the guardrails (the policy pack's rules) on STACK's offline plan, and its budget with a price book;
        exit 1 on a mandatory violation."""
        from emlops.review.check import check_stack, stack_pack_config

        refuse_bad_options(output_format, ("text", "markdown"), framework, plan_path, stack)
        with stack_errors(stack, "checking", debug):
            if pack_config is not None:
                pack_config.write_text(json.dumps(stack_pack_config(stack), indent=2) + "\n", encoding="utf-8")
            report = check_stack(stack, plan_path, framework=framework, prices=prices)
        if json_path is not None:
            report.write(json_path)
        if output_format == "markdown":
            typer.echo(markdown_report(report), nl=False)
        else:
            print_report(report)
        if pack_config is not None:
            typer.echo(f"policy pack config of {stack} written to {pack_config}; use it with: pulumi preview "
                       f"-s {stack} --policy-pack policy --policy-pack-config {pack_config}")
        raise typer.Exit(1 if report.failed else 0)
