"""The parts of a CloudWatch dashboard body: metric lines, graph, text and alarm-status widgets, laid out on
CloudWatch's 24-column grid.

Everything here is a plain dict or list in a fixed key order (the body's JSON is the same for the same
dashboard, so previews and diffs are stable); only values that come from other resources (alarm names) may be
Outputs, which `json_document` resolves once per Output. The format is CloudWatch's "Dashboard Body Structure
and Syntax".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import pulumi

# What SageMaker publishes where (Amazon SageMaker AI metrics in Amazon CloudWatch): invocation, latency,
# multi-model loading and asynchronous backlog metrics in AWS/SageMaker; the instances' utilisation and
# LoadedModelCount in /aws/sagemaker/Endpoints.
SAGEMAKER = "AWS/SageMaker"
ENDPOINT_INSTANCES = "/aws/sagemaker/Endpoints"

GRID_WIDTH = 24  # CloudWatch's dashboard grid is 24 columns wide
PERIOD = 300  # seconds per data point of the endpoint's graphs (CloudWatch's default period)
START = "-P1D"  # the time range a dashboard opens with: the last day (a daily monitoring run included)
MICROSECONDS = {"left": {"label": "microseconds", "showUnits": False}}
PERCENT = {"left": {"label": "percent", "min": 0, "showUnits": False}}

Dimensions = Sequence[tuple[str, pulumi.Input[str]]]


def line(namespace: str, metric: str, dimensions: Dimensions, stat: str, label: str) -> list[Any]:
    """One metric of a graph: `[namespace, metric, dimension, value, ..., {label, stat}]`."""
    entry: list[Any] = [namespace, metric]
    for name, value in dimensions:
        entry += [name, value]
    entry.append({"label": label, "stat": stat})
    return entry


def variant(endpoint_name: str, variant_name: str) -> Dimensions:
    """The dimensions of a production (or shadow) variant's metrics."""
    return (("EndpointName", endpoint_name), ("VariantName", variant_name))


def graph(title: str, lines: list[list[Any]], region: str, *, period: int = PERIOD,
          y_axis: Optional[dict] = None) -> dict[str, Any]:
    """The properties of a time-series metric widget."""
    properties: dict[str, Any] = {"title": title, "view": "timeSeries", "stacked": False, "region": region,
                                  "period": period, "metrics": lines}
    if y_axis is not None:
        properties["yAxis"] = y_axis
    return properties


def alarm_status(title: str, alarm_arns: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """The properties of an alarm-status widget: alarms in ALARM first, then the most recently changed."""
    return {"title": title, "alarms": list(alarm_arns), "sortBy": "stateUpdatedTimestamp"}


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """`items` in consecutive lists of at most `size` (none for no items)."""
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


class Grid:
    """Widgets placed left to right on the 24-column grid, a new row when the next one does not fit."""

    def __init__(self) -> None:
        self.widgets: list[dict[str, Any]] = []
        self._x = self._y = self._row_height = 0

    def add(self, kind: str, properties: dict[str, Any], width: int, height: int) -> None:
        if self._x + width > GRID_WIDTH:
            self.new_row()
        self.widgets.append({"type": kind, "x": self._x, "y": self._y, "width": width, "height": height,
                             "properties": properties})
        self._x += width
        self._row_height = max(self._row_height, height)

    def new_row(self) -> None:
        """The next widget starts a row of its own."""
        if self._x:
            self._y += self._row_height
            self._x = self._row_height = 0

    def text(self, markdown: str, height: int = 2) -> None:
        self.new_row()
        self.add("text", {"markdown": markdown}, GRID_WIDTH, height)

    def metric(self, properties: dict[str, Any], width: int = 12, height: int = 6) -> None:
        self.add("metric", properties, width, height)

    def alarms(self, title: str, alarm_arns: Sequence[pulumi.Input[str]], per_widget: int) -> None:
        """Alarm-status widgets, a full row each, of at most `per_widget` alarms."""
        parts = chunks(alarm_arns, per_widget)
        for index, part in enumerate(parts, start=1):
            self.new_row()
            name = title if len(parts) == 1 else f"{title} ({index}/{len(parts)})"
            # the widget shows its alarms as tiles, about six to a row
            self.add("alarm", alarm_status(name, part), GRID_WIDTH, 2 + -(-len(part) // 6))
        self.new_row()

    def body(self) -> dict[str, Any]:
        """The dashboard's body: its time range, each graph's own period obeyed, and the widgets."""
        return {"start": START, "periodOverride": "inherit", "widgets": self.widgets}


def metric_count(widgets: Sequence[dict[str, Any]]) -> list[int]:
    """The number of metrics each metric widget graphs (CloudWatch limits them per widget and per dashboard)."""
    return [len(w["properties"]["metrics"]) for w in widgets if w["type"] == "metric"]
