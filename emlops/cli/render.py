"""Human-readable preview output: the component tree, counts per type and the stack outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from emlops.catalog.resources import lookup
from emlops.offline.plan import Plan, PlanResource


def _physical_name(resource: PlanResource) -> Optional[str]:
    """The resource's physical name, from the input its catalogue entry names (a bucket's `bucket`, ...)."""
    entry = lookup(resource.type)
    value: object = resource.inputs
    for part in (entry.naming.property if entry is not None else "name").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


def _label(resource: PlanResource) -> str:
    kind = "[bold]" + resource.type + "[/bold]" if not resource.custom else resource.type
    flags = []
    if resource.protect:
        flags.append("protect")
    if resource.retain_on_delete:
        flags.append("retain")
    suffix = f" [yellow]({', '.join(flags)})[/yellow]" if flags else ""
    name = _physical_name(resource)
    physical = f" [dim]→ {escape(name)}[/dim]" if resource.custom and isinstance(name, str) else ""
    return f"[cyan]{escape(resource.name)}[/cyan]  {kind}{physical}{suffix}"


def build_tree(plan: Plan) -> Tree:
    roots = [r for r in plan.resources if r.parent is None]
    title = f"[bold]{plan.project}[/bold] / [bold]{plan.stack}[/bold]: {len(plan.resources)} resources"
    tree = Tree(title)

    def add(node: Tree, resource: PlanResource) -> None:
        branch = node.add(_label(resource))
        for child in plan.children(resource.urn):
            add(branch, child)

    for root in roots:
        add(tree, root)
    return tree


def print_preview(plan: Plan, diagnostics: list[str], json_path: Optional[Path], console: Optional[Console] = None) -> None:
    console = console or Console(highlight=False, soft_wrap=False)
    console.print(build_tree(plan))

    counts = Table(title="Resources by type", title_justify="left", show_edge=False)
    counts.add_column("type")
    counts.add_column("count", justify="right")
    for type_, count in sorted(plan.type_counts().items()):
        counts.add_row(type_, str(count))
    console.print(counts)

    outputs = Table(title="Outputs", title_justify="left", show_edge=False)
    outputs.add_column("name")
    outputs.add_column("value", overflow="fold")
    for name, value in sorted(plan.outputs.items()):
        # escaped: an unknown value ("[unknown: models:/churn@champion]") is not rich markup
        outputs.add_row(escape(name), escape(value if isinstance(value, str) else json.dumps(value)))
    console.print(outputs)

    for message in diagnostics:
        console.print(f"[yellow]{escape(message)}[/yellow]")
    if json_path is not None:
        console.print(f"plan written to {json_path}")
