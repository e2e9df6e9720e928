"""The evidence report as markdown (for pull requests and wikis) and as one self-contained HTML page.

Both say the same things in the same order: what was judged and how, per framework the controls the rules
evidence and their result, the controls nothing here covers (listed, not hidden), each rule's verdict per
resource, and the suppressions with their written reasons. The HTML page needs nothing else: its style is
inline, every value is escaped, and it loads no script, font, image or style sheet.
"""

from __future__ import annotations

import html
import re

from emlops.guardrails.controls import controls_of
from emlops.review.evidence import (
    EVIDENCED_FAIL,
    EVIDENCED_PASS,
    FAIL,
    NOT_COVERED,
    NOTHING_TO_JUDGE,
    PASS,
    SUPPRESSED,
    EvidenceReport,
    FrameworkEvidence,
    RuleEvidence,
)

NOT_COVERED_NOTE = ("No rule of emlops evidences these controls: they need evidence from elsewhere (the "
                    "organisation's procedures, the account's configuration, AWS's own attestations or other "
                    "tools). This report says nothing about them.")


def _title(report: EvidenceReport) -> str:
    names = ", ".join(f.framework.title for f in report.frameworks)
    return f"Evidence report of stack {report.stack}: {names}"


def _intro(report: EvidenceReport) -> list[str]:
    verdict = (f"{report.open_mandatory} open mandatory finding(s)" if report.open_mandatory
               else "no open mandatory finding")
    return [
        f"The guardrails of emlops (the rules `emlops check` and the policy pack run) were evaluated on "
        f"{report.resources} resources of stack {report.stack}, from {report.source}: {len(report.rules)} rules "
        f"that evidence controls of the {'framework' if len(report.frameworks) == 1 else 'frameworks'} below; "
        f"{verdict}, {len(report.suppressed)} suppressed.",
        "A rule evidences a control for the resources it judges; it passes a resource when it finds nothing "
        "wrong with it. A control is \"fail\" when one of its rules has an open finding (advisory ones "
        "included), \"nothing to judge\" when its rules found no resource of theirs in this stack, and "
        "\"not covered\" when no rule here evidences it.",
        "The mapping of rules to controls is emlops's (emlops/guardrails/controls.py): it says what a passing "
        "rule is evidence of, for the resources of this plan, not that a control is met in full; an assessor "
        "decides whether the evidence suffices.",
    ]


def _summary(f: FrameworkEvidence) -> str:
    covered = len(f.controls) - len(f.of(NOT_COVERED))
    return (f"{len(f.controls)} controls in scope: {covered} evidenced by the rules here "
            f"({len(f.of(EVIDENCED_PASS))} pass, {len(f.of(EVIDENCED_FAIL))} fail, "
            f"{len(f.of(NOTHING_TO_JUDGE))} with nothing to judge in this stack); "
            f"{len(f.of(NOT_COVERED))} not covered by any rule here.")


def _counts(rule: RuleEvidence) -> str:
    if not rule.complete:
        return f"{rule.count(FAIL)} failed, {rule.count(SUPPRESSED)} suppressed (findings only)"
    return f"{rule.count(PASS)} passed, {rule.count(FAIL)} failed, {rule.count(SUPPRESSED)} suppressed"


def _evidences(report: EvidenceReport, rule: str) -> str:
    """The controls RULE evidences in the report's frameworks."""
    parts = [f"{f.framework.title}: {', '.join(controls_of(rule, f.framework.name))}" for f in report.frameworks
             if controls_of(rule, f.framework.name)]
    return "; ".join(parts)


def _resource(name, type_) -> str:
    return f"{name} ({type_})" if name else "(the whole stack)"


def _ordered(rule: RuleEvidence) -> list:
    """Failures first, then suppressions, then passes (each in plan order)."""
    return sorted(rule.verdicts, key=lambda v: (v.result == PASS, v.result == SUPPRESSED))


def anchor(rule: str) -> str:
    return "rule-" + re.sub(r"[^a-z0-9-]", "-", rule.lower())


# ------------------------------------------------------------------------------------------------
# Markdown


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def markdown(report: EvidenceReport) -> str:
    lines = [f"# {_title(report)}", "", *(p + "\n" for p in _intro(report))]
    for f in report.frameworks:
        lines += [f"## {f.framework.title}", "", f"Scope: {f.framework.scope}.", "", _summary(f), "",
                  "### Controls the rules evidence", ""]
        evidenced = [c for c in f.controls if c.result != NOT_COVERED]
        lines += [_row("control", "title", "result", "rules (resources passed, failed, suppressed)"),
                  "|---|---|---|---|"]
        for c in evidenced:
            rules = "; ".join(f"`{r}` ({_counts(report.rules[r])})" for r in c.rules)
            lines.append(_row(c.control, c.title, c.result.upper() if c.result == FAIL else c.result, rules))
        uncovered = f.of(NOT_COVERED)
        lines += ["", f"### Controls nothing here covers ({len(uncovered)})", "", NOT_COVERED_NOTE, ""]
        if uncovered:
            lines += [_row("control", "title"), "|---|---|", *(_row(c.control, c.title) for c in uncovered)]
        else:
            lines.append("None: every control in scope is evidenced by at least one rule.")
        lines.append("")
    lines += ["## Suppressions", ""]
    if report.suppressed:
        lines += [_row("rule", "resource", "finding", "written reason"), "|---|---|---|---|"]
        lines += [_row(f"`{v.rule}`", _resource(v.name, v.type), v.message, v.reason or "")
                  for v in report.suppressed]
    else:
        lines.append("None: the stack file suppresses no finding of these rules.")
    lines += [*(f"\n> warning: {w}" for w in report.warnings), "", "## Results per rule and resource", ""]
    for rule in report.rules.values():
        lines += [f"### `{rule.name}`", "",
                  f"{rule.description} ({rule.severity}, {rule.enforcement}; {_counts(rule)}.) "
                  f"Evidences {_evidences(report, rule.name)}.", ""]
        if rule.verdicts:
            lines += [_row("resource", "result", "finding / reason"), "|---|---|---|"]
            for v in _ordered(rule):
                note = "; ".join(v.findings) + (f" — suppressed: {v.reason}" if v.reason else "")
                lines.append(_row(_resource(v.name, v.type), v.result.upper() if v.result == FAIL else v.result,
                                  note))
        else:
            lines.append("No resource of this stack is of the kind this rule judges.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------
# HTML

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; margin-top: 2.5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } code { font-size: .9em; } .scope { color: #57606a; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 700; }
.suppressed { color: #9a6700; font-weight: 600; } .nothing { color: #57606a; }
.not-covered { color: #8250df; font-weight: 600; } .warning { background: #fff8c5; padding: .5rem; }
details { margin: .3rem 0 1rem; } summary { cursor: pointer; }
""".strip()

_CLASS = {PASS: "pass", FAIL: "fail", SUPPRESSED: "suppressed", NOTHING_TO_JUDGE: "nothing",
          NOT_COVERED: "not-covered"}


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _result(result: str) -> str:
    return f'<span class="{_CLASS[result]}">{_e(result)}</span>'


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A table of already-escaped cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _framework_html(report: EvidenceReport, f: FrameworkEvidence) -> list[str]:
    out = [f"<h2>{_e(f.framework.title)}</h2>", f'<p class="scope">Scope: {_e(f.framework.scope)}.</p>',
           f"<p>{_e(_summary(f))}</p>", "<h3>Controls the rules evidence</h3>"]
    rows = []
    for c in (c for c in f.controls if c.result != NOT_COVERED):
        rules = "<br>".join(f'<a href="#{anchor(r)}"><code>{_e(r)}</code></a> ({_e(_counts(report.rules[r]))})'
                            for r in c.rules)
        rows.append((f"<code>{_e(c.control)}</code>", _e(c.title), _result(c.result), rules))
    out.append(_table(("control", "title", "result", "rules (resources passed, failed, suppressed)"), rows))
    uncovered = f.of(NOT_COVERED)
    out += [f"<h3>Controls nothing here covers ({len(uncovered)})</h3>", f"<p>{_e(NOT_COVERED_NOTE)}</p>"]
    if uncovered:
        out.append(_table(("control", "title", "result"),
                          [(f"<code>{_e(c.control)}</code>", _e(c.title), _result(NOT_COVERED)) for c in uncovered]))
    else:
        out.append("<p>None: every control in scope is evidenced by at least one rule.</p>")
    return out


def _rule_html(report: EvidenceReport, rule: RuleEvidence) -> list[str]:
    out = [f'<h3 id="{anchor(rule.name)}"><code>{_e(rule.name)}</code> {_result(rule.result)}</h3>',
           f"<p>{_e(rule.description)} ({_e(rule.severity)}, {_e(rule.enforcement)}; {_e(_counts(rule))}.) "
           f"Evidences {_e(_evidences(report, rule.name))}.</p>"]
    if not rule.verdicts:
        return [*out, "<p>No resource of this stack is of the kind this rule judges.</p>"]
    rows = []
    for v in _ordered(rule):
        note = _e("; ".join(v.findings)) + (f"<br><em>suppressed:</em> {_e(v.reason)}" if v.reason else "")
        rows.append((_e(_resource(v.name, v.type)), _result(v.result), note))
    opened = " open" if rule.count(FAIL) or rule.count(SUPPRESSED) else ""
    return [*out, f"<details{opened}><summary>{len(rows)} resource(s)</summary>",
            _table(("resource", "result", "finding / reason"), rows), "</details>"]


def html_page(report: EvidenceReport) -> str:
    title = _title(report)
    # the intro's `code` spans, as code (escaping leaves backticks alone)
    body = [f"<h1>{_e(title)}</h1>",
            *("<p>" + re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(p)) + "</p>" for p in _intro(report))]
    for f in report.frameworks:
        body += _framework_html(report, f)
    body.append("<h2>Suppressions</h2>")
    if report.suppressed:
        body.append(_table(("rule", "resource", "finding", "written reason"),
                           [(f'<a href="#{anchor(v.rule)}"><code>{_e(v.rule)}</code></a>',
                             _e(_resource(v.name, v.type)), _e(v.message), _e(v.reason or ""))
                            for v in report.suppressed]))
    else:
        body.append("<p>None: the stack file suppresses no finding of these rules.</p>")
    body += [f'<p class="warning">warning: {_e(w)}</p>' for w in report.warnings]
    body.append("<h2>Results per rule and resource</h2>")
    for rule in report.rules.values():
        body += _rule_html(report, rule)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>\n{_STYLE}\n</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


RENDERERS = {"markdown": markdown, "html": html_page}

__all__ = ["RENDERERS", "anchor", "html_page", "markdown"]
