"""The pull-request comment: per stack, what changes, what is replaced, what the policies say, and a picture.

`build_comment(base_dir, head_dir)` reads `<stack>.json` plans from both directories (and
`<stack>.check.json` reports, schema emlops.check/v1, from head). A stack only in head is new, one only in
base is removed. With a price book (`emlops.review.prices`), each changed stack's monthly cost, low to high, is
shown before and after with the difference (`emlops.review.cost`). The comment starts with `MARKER` so CI can
find and update its own comment, and stays under GitHub's 65536-character limit: diagrams go first, then long
diffs are cut, each with a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

from emlops.review.cost import cost_of, usd
from emlops.review.diff import PlanDiff, diff_plans, render_markdown
from emlops.review.graph import graph
from emlops.review.prices import PriceBook
from emlops.offline.plan import Plan

MARKER = "<!-- emlops-pr-preview -->"
GITHUB_LIMIT = 65536
COLLAPSE_LINES = 40  # a diff longer than this goes into <details>
CHECK_SCHEMA = "emlops.check/v1"
CHECK_SUFFIX = ".check.json"


class CommentError(Exception):
    """An input directory or file that cannot be used (one line for the user)."""


@dataclass
class StackReview:
    stack: str
    status: str  # "changed" | "unchanged" | "new" | "removed"
    diff: PlanDiff
    head: Optional[Plan]
    check: Optional[dict[str, Any]]
    cost_before: Optional[tuple[Fraction, Fraction]] = None  # (low, high) USD a month, with a price book
    cost_after: Optional[tuple[Fraction, Fraction]] = None

    @property
    def changed(self) -> bool:
        return not self.diff.empty or self.status in ("new", "removed")


def load_plan(path: Path) -> Plan:
    """A plan file, or CommentError with one line saying what is wrong."""
    try:
        return Plan.load(path)
    except FileNotFoundError:
        raise CommentError(f"{path}: no such file") from None
    except OSError as exc:
        raise CommentError(f"{path}: cannot be read ({exc.strerror or exc.__class__.__name__})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommentError(f"{path}: not JSON ({exc.__class__.__name__}: {exc})".split("\n")[0]) from None
    except ValueError as exc:
        raise CommentError(str(exc)) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise CommentError(f"{path}: not an emlops.plan/v1 plan (missing or malformed {exc})") from None


def load_check(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommentError(f"{path}: not a readable check report ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("schema") != CHECK_SCHEMA or not isinstance(data.get("violations"), list):
        raise CommentError(f"{path}: not an {CHECK_SCHEMA} report")
    if not all(isinstance(v, dict) and isinstance(v.get("rule"), str) for v in data["violations"]):
        raise CommentError(f"{path}: a violation without a rule; not an {CHECK_SCHEMA} report")
    return data


def _plans(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        raise CommentError(f"{directory}: not a directory")
    return {p.name[:-len(".json")]: p for p in sorted(directory.glob("*.json")) if not p.name.endswith(CHECK_SUFFIX)}


def review_stacks(base_dir: Path, head_dir: Path, prices: Optional[PriceBook] = None) -> list[StackReview]:
    """One review per stack found in either directory: changed and new stacks first, then by name; with a price
    book, each stack's monthly cost before and after."""
    base_files, head_files = _plans(Path(base_dir)), _plans(Path(head_dir))
    reviews = []
    for stack in sorted(set(base_files) | set(head_files)):
        base = load_plan(base_files[stack]) if stack in base_files else None
        head = load_plan(head_files[stack]) if stack in head_files else None
        check_path = Path(head_dir) / f"{stack}{CHECK_SUFFIX}"
        check = load_check(check_path) if head is not None and check_path.exists() else None
        empty = Plan((head or base).project, stack)
        diff = diff_plans(base or empty, head or empty)
        status = "new" if base is None else "removed" if head is None else "changed" if not diff.empty else "unchanged"
        review = StackReview(stack, status, diff, head, check)
        if prices is not None:
            review.cost_before = cost_of(base, prices).total() if base is not None else (Fraction(0), Fraction(0))
            review.cost_after = cost_of(head, prices).total() if head is not None else (Fraction(0), Fraction(0))
        reviews.append(review)
    reviews.sort(key=lambda r: (not r.changed, r.stack))
    return reviews


def verdict(check: dict[str, Any]) -> list[str]:
    """The policy verdict of a check report, in markdown lines."""
    violations = check["violations"]
    mandatory = [v for v in violations if v.get("enforcement") == "mandatory" and not v.get("suppressed")]
    advisory = [v for v in violations if v.get("enforcement") != "mandatory" and not v.get("suppressed")]
    suppressed = [v for v in violations if v.get("suppressed")]
    icon = "❌" if mandatory else "✅"
    lines = [f"{icon} **Policies**: {check.get('rulesEvaluated', '?')} rules evaluated, "
             f"{len(mandatory)} mandatory violation{'s' * (len(mandatory) != 1)}, {len(advisory)} advisory, "
             f"{len(suppressed)} suppressed"]
    for v in mandatory:
        where = f" `{v['name']}`" if v.get("name") else " (stack)"
        lines.append(f"- **{v['rule']}** ({v.get('severity', '?')}){where}: {v.get('message', '')}"
                     + (f" — {v['remediation']}" if v.get("remediation") else ""))
    if advisory:
        lines += ["", "<details><summary>Advisory</summary>", ""]
        lines += [f"- {v['rule']} ({v.get('severity', '?')})" + (f" `{v['name']}`" if v.get("name") else "")
                  + f": {v.get('message', '')}" for v in advisory]
        lines += ["", "</details>"]
    if suppressed:
        lines += ["", "<details><summary>Suppressed</summary>", ""]
        lines += [f"- {v['rule']}" + (f" `{v['name']}`" if v.get("name") else "")
                  + f": {v.get('reason') or 'no reason'}" for v in suppressed]
        lines += ["", "</details>"]
    return lines


def _section(review: StackReview, diagram: bool, max_diff: Optional[int]) -> str:
    diff = review.diff
    title = {"new": " (new stack)", "removed": " (stack removed)"}.get(review.status, "")
    lines = [f"### `{review.stack}`{title}", "",
             f"**{diff.count('add')}** to add (+), **{diff.count('update')}** to change (~), "
             f"**{diff.count('remove')}** to delete (-), **{diff.count('replace')}** to replace (±)", ""]
    body = render_markdown(diff, review.stack).split("\n", 1)[1].strip("\n")  # counts are in the line above
    if max_diff is not None and len(body) > max_diff:
        cut = body[:max_diff].rsplit("\n", 1)[0]
        body = cut + "\n\n*… diff cut to fit GitHub's comment limit; run `emlops diff` for all of it.*"
    if body.count("\n") + 1 > COLLAPSE_LINES:
        lines += ["<details><summary>Changes</summary>", "", body, "", "</details>"]
    elif body:
        lines.append(body)
    if review.cost_after is not None:
        lines += ["", f"**Cost a month** (low–high, on-demand): {_span(review.cost_before)} → "
                      f"{_span(review.cost_after)} ({_delta(review)})"]
    if review.check is not None:
        lines += [""] + verdict(review.check)
    if review.head is not None:
        if diagram:
            lines += ["", "<details><summary>Diagram</summary>", "", "```mermaid",
                      graph(review.head, "mermaid").rstrip("\n"), "```", "", "</details>"]
        else:
            lines += ["", f"*Diagram left out to fit GitHub's comment limit; run `emlops graph {review.stack}`.*"]
    return "\n".join(lines) + "\n"


def _unchanged_line(reviews: list[StackReview]) -> str:
    parts = []
    for r in reviews:
        note = ""
        if r.check is not None:
            mandatory = sum(1 for v in r.check["violations"]
                            if v.get("enforcement") == "mandatory" and not v.get("suppressed"))
            note = f" (❌ {mandatory} mandatory violation{'s' * (mandatory != 1)})" if mandatory else " (✅ policies)"
        parts.append(f"`{r.stack}`{note}")
    return "No changes: " + ", ".join(parts) + "\n"


def build_comment(base_dir: Path, head_dir: Path, limit: int = GITHUB_LIMIT,
                  prices: Optional[PriceBook] = None) -> str:
    """The PR comment comparing the plans in BASE_DIR with those in HEAD_DIR (see the module doc)."""
    reviews = review_stacks(Path(base_dir), Path(head_dir), prices)
    changed = [r for r in reviews if r.changed]
    unchanged = [r for r in reviews if not r.changed]
    header = [MARKER, "## emlops preview"]
    if not reviews:
        header += ["", "No plans found."]
    elif changed:
        priced = prices is not None
        header += ["", "| stack | + add | ~ change | - delete | ± replace | policies |" + " cost a month |" * priced,
                   "|---|---|---|---|---|---|" + "---|" * priced]
        for r in changed:
            header.append(f"| `{r.stack}` | {r.diff.count('add')} | {r.diff.count('update')} | "
                          f"{r.diff.count('remove')} | {r.diff.count('replace')} | {_policy_cell(r)} |"
                          + (f" {_cost_cell(r)} |" if priced else ""))
    if changed and prices is not None:
        source = ("TEST DATA, not AWS's prices" if prices.test_data else
                  f"the AWS Price List API's on-demand prices of {prices.generated_at}")
        header += ["", f"*Cost a month: what the plans run, low to high (`emlops cost`), priced from {source}; "
                       "what AWS bills by use only (storage, requests) is not included.*"]
    text_head = "\n".join(header) + "\n"
    tail = ("\n" + _unchanged_line(unchanged)) if unchanged else ""

    def assemble(diagrams: bool, max_diff: Optional[int]) -> str:
        return text_head + "".join("\n" + _section(r, diagrams, max_diff) for r in changed) + tail

    text = assemble(True, None)
    if len(text) > limit:
        text = assemble(False, None)
    if len(text) > limit and changed:
        budget = max(500, (limit - len(assemble(False, 0))) // len(changed) - 200)
        text = assemble(False, budget)
    if len(text) > limit:
        note = "\n\n*… comment cut to fit GitHub's limit.*\n"
        text = text[:limit - len(note) - 40].rsplit("\n", 1)[0]
        text += "\n```" * (text.count("```") % 2)
        text += "\n</details>" * (text.count("<details>") - text.count("</details>"))
        text += note
    return text


def _policy_cell(review: StackReview) -> str:
    if review.check is None:
        return "not checked"
    mandatory = sum(1 for v in review.check["violations"]
                    if v.get("enforcement") == "mandatory" and not v.get("suppressed"))
    return f"❌ {mandatory} mandatory" if mandatory else "✅"


def _span(cost: Optional[tuple[Fraction, Fraction]]) -> str:
    low, high = cost
    return usd(low) if low == high else f"{usd(low)}–{usd(high)}"


def _signed(value: Fraction) -> str:
    return ("+" if value >= 0 else "-") + usd(abs(value))


def _delta(review: StackReview) -> str:
    (low_before, high_before), (low_after, high_after) = review.cost_before, review.cost_after
    return f"{_signed(low_after - low_before)} low, {_signed(high_after - high_before)} high"


def _cost_cell(review: StackReview) -> str:
    return f"{_span(review.cost_after)} ({_delta(review)})"
