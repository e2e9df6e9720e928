"""`emlops cost`: the capacity model of a plan priced from a price book, per resource, component and stack.

Each line's monthly cost is its quantity times the book's price for its key in its region: low at the low
quantity (and, for a node group of several instance types, the cheapest type), high at the high quantity (the
dearest). A line whose price the book does not have is shown unpriced and named, and the totals say they leave it
out. Without a book, only the capacity is shown, with a note that prices are missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Optional

from emlops.offline.plan import Plan
from emlops.review.capacity import Capacity, Line, capacity_of
from emlops.review.prices import PriceBook

FORMATS = ("table", "json", "markdown")
CENT = Decimal("0.01")


def cents(value: Fraction) -> Decimal:
    """An exact amount rounded to the cent (half up)."""
    value = Fraction(value)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(CENT, rounding=ROUND_HALF_UP)


def usd(value: Fraction) -> str:
    """`$1,234.57`."""
    return f"${cents(value):,}" if value >= 0 else f"-${cents(-value):,}"


def quantity(value: Fraction) -> str:
    return f"{cents(value):,}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class PricedLine:
    line: Line
    low: Optional[Fraction]  # USD a month, exact; None when the book has no price for it
    high: Optional[Fraction]
    missing: tuple[str, ...] = ()


@dataclass
class CostReport:
    """A stack's capacity, priced when a book was given."""

    capacity: Capacity
    book: Optional[PriceBook]
    lines: list[PricedLine] = field(default_factory=list)

    @property
    def priced(self) -> bool:
        return self.book is not None

    @property
    def missing(self) -> list[str]:
        return sorted({f"{line.line.region} {key}" for line in self.lines for key in line.missing})

    def total(self, component: Optional[str] = None) -> tuple[Fraction, Fraction]:
        lines = [p for p in self.lines if p.low is not None and component in (None, p.line.component)]
        return sum((p.low for p in lines), Fraction(0)), sum((p.high for p in lines), Fraction(0))

    def components(self) -> list[str]:
        return list(dict.fromkeys(p.line.component for p in self.lines))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": "emlops.cost/v1", "stack": self.capacity.stack, "currency": "USD",
                               "priced": self.priced}
        out["lines"] = [{**p.line.to_json(), "monthlyLow": _text(p.low), "monthlyHigh": _text(p.high),
                         "missingPrices": list(p.missing)} for p in self.lines]
        out["usageOnly"] = [u.to_json() for u in self.capacity.usage_only]
        if self.priced:
            low, high = self.total()
            out["components"] = {c: dict(zip(("low", "high"), map(_text, self.total(c)))) for c in self.components()}
            out["total"] = {"low": _text(low), "high": _text(high), "complete": not self.missing}
            out["priceBook"] = {"path": str(self.book.path), "generatedAt": self.book.generated_at,
                                "testData": self.book.test_data, "offers": self.book.offers()}
        return out


def _text(value: Optional[Fraction]) -> Optional[str]:
    return None if value is None else str(cents(value))


def price(capacity: Capacity, book: Optional[PriceBook]) -> CostReport:
    report = CostReport(capacity, book)
    for line in capacity.lines:
        if book is None:
            report.lines.append(PricedLine(line, None, None))
            continue
        prices = {key: book.price(line.region, key) for key in line.price_keys}
        prices = {key: None if value is None else Fraction(value) for key, value in prices.items()}
        missing = tuple(key for key, value in prices.items() if value is None)
        if missing:
            report.lines.append(PricedLine(line, None, None, missing))
        else:
            report.lines.append(PricedLine(line, line.low * min(prices.values()), line.high * max(prices.values())))
    return report


def cost_of(plan: Plan, book: Optional[PriceBook]) -> CostReport:
    return price(capacity_of(plan), book)


def _rows(report: CostReport) -> list[list[str]]:
    rows = []
    for p in report.lines:
        line = p.line
        amount = quantity(line.low) if line.low == line.high else f"{quantity(line.low)}-{quantity(line.high)}"
        row = [line.component, line.resource, line.what, f"{amount} {line.unit}"]
        if report.priced:
            row += ["no price: " + ", ".join(p.missing), ""] if p.missing else [usd(p.low), usd(p.high)]
        rows.append(row)
    return rows


def _notes(report: CostReport, markdown: bool) -> list[str]:
    code = (lambda text: f"`{text}`") if markdown else (lambda text: text)
    notes = []
    assumptions = sorted({f"{p.line.resource}: {p.line.assumption}" for p in report.lines if p.line.assumption})
    if assumptions:
        notes += ["Assumptions:"] + [f"- {a}" for a in assumptions]
    if report.capacity.usage_only:
        notes += ["Billed by use only (not estimated):"]
        notes += [f"- {code(u.resource)} ({u.type}): {u.billed_by}" for u in report.capacity.usage_only]
    if report.book is None:
        notes += ["Prices missing: no price book, so only capacity is shown. Build one with "
                  f"{code('emlops prices refresh --region REGION')} "
                  "(AWS credentials that may call pricing:GetProducts) "
                  f"or pass {code('--prices FILE')}."]
    else:
        if report.missing:
            notes += ["The totals leave out lines the price book has no price for: " + ", ".join(report.missing)]
        if report.book.test_data:
            notes += [f"WARNING: the price book {report.book.path} is test data, not AWS's prices."]
        else:
            notes += [f"Prices: {report.book.path}, built {report.book.generated_at} from the AWS Price List API, "
                      "on-demand, free tiers not applied; offers: " + "; ".join(report.book.offers())]
    return notes


def _totals(report: CostReport) -> list[list[str]]:
    rows = [[f"{c} (component)", usd(report.total(c)[0]), usd(report.total(c)[1])] for c in report.components()]
    return rows + [[f"{report.capacity.stack} (stack, a month)", *map(usd, report.total())]]


def render_table(report: CostReport) -> str:
    headers = ["component", "resource", "what", "a month"] + (["low USD", "high USD"] if report.priced else [])
    out = [f"Capacity and cost of {report.capacity.stack}" if report.priced else
           f"Capacity of {report.capacity.stack} (prices missing)", ""]
    out += _aligned([headers] + _rows(report))
    if report.priced:
        out += [""] + _aligned([["total", "low USD", "high USD"]] + _totals(report))
    return "\n".join(out + [""] + _notes(report, False)) + "\n"


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def render_markdown(report: CostReport) -> str:
    headers = ["component", "resource", "what", "a month"] + (["low", "high"] if report.priced else [])
    out = [f"### Cost of `{report.capacity.stack}`" if report.priced else
           f"### Capacity of `{report.capacity.stack}` (prices missing)", ""]
    out += ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in _rows(report)]
    if report.priced:
        out += ["", "| total | low | high |", "|---|---|---|"]
        out += ["| " + " | ".join(row) + " |" for row in _totals(report)]
    return "\n".join(out + [""] + _notes(report, True)) + "\n"


def render(report: CostReport, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(report.to_json(), indent=2) + "\n"
    if output_format == "markdown":
        return render_markdown(report)
    if output_format == "table":
        return render_table(report)
    raise ValueError(f"--format: {output_format!r} is not supported; allowed: {', '.join(FORMATS)}")
