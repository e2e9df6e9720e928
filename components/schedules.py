"""The schedule expressions AWS takes, parsed once for every schedule setting.

EventBridge rules (retraining), Application Auto Scaling scheduled actions (an endpoint's off hours) and
SageMaker monitoring schedules share one cron grammar, six fields separated by spaces::

    cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)

minutes 0-59, hours 0-23, day-of-month 1-31 (also `L`, `LW` and `<day>W`), month 1-12 or JAN-DEC, day-of-week
1-7 or SUN-SAT (also `L`, `<day>L` and `<day>#<1-5>`), year 1970-2199; each field `*`, a value, a range
`a-b`, an increment `a/n` or `*/n`, or a list of those with `,`; exactly one of day-of-month and day-of-week
is `?`. EventBridge and Application Auto Scaling also take `rate(<n> <unit>)`: minute(s), hour(s) or
day(s), singular for 1 and plural otherwise. SageMaker monitoring takes a subset of the crons
(monitoring_args.py). A problem is reported as one line naming the field and what it allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

CRON_HELP = "'cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)', e.g. 'cron(0 3 ? * MON *)'"
RATE_HELP = "'rate(<n> <minutes|hours|days>)', e.g. 'rate(7 days)'"
EXPECTED_RUN_TAG = "expected-run-minutes"
"""Tag of a scheduled pipeline: how long one run takes (batch_transforms[].expected_run_minutes), read by
`emlops cost` (emlops/review/capacity.py) from the plan; here so that reading it imports no component."""
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_RATE_UNITS = ("minute", "hour", "day")


@dataclass(frozen=True)
class CronField:
    """One field of a cron: its name, range, value names (JAN-DEC, SUN-SAT) and what else it allows."""

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    @property
    def allowed(self) -> str:
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{names}"

    def number(self, token: str) -> Optional[int]:
        """The value `token` stands for (a number or a name), or None."""
        if token.upper() in self.names:
            return self.names.index(token.upper()) + self.low
        return int(token) if re.fullmatch(r"[0-9]{1,4}", token) else None


MINUTES = CronField("minutes", 0, 59)
HOURS = CronField("hours", 0, 23)
DAY_OF_MONTH = CronField("day-of-month", 1, 31)
MONTH = CronField("month", 1, 12, _MONTHS)
DAY_OF_WEEK = CronField("day-of-week", 1, 7, _DAYS)
YEAR = CronField("year", 1970, 2199)
FIELDS = (MINUTES, HOURS, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR)


@dataclass(frozen=True)
class Cron:
    """A cron expression's six fields, as written."""

    minutes: str
    hours: str
    day_of_month: str
    month: str
    day_of_week: str
    year: str


@dataclass(frozen=True)
class Rate:
    """A rate expression: every `value` `unit`s (unit singular: minute, hour or day)."""

    value: int
    unit: str

    @property
    def seconds(self) -> int:
        return self.value * {"minute": 60, "hour": 3600, "day": 86400}[self.unit]


def parse_cron(expression: str) -> Cron:
    """The fields of `cron(...)`; ValueError naming the first field AWS would refuse and its range."""
    match = re.fullmatch(r"cron\((?P<body>[^()]*)\)", expression)
    fields = match["body"].split() if match else []
    if len(fields) != len(FIELDS) or match["body"] != " ".join(fields):
        raise ValueError(f"{expression!r} is not a cron expression of six fields, {CRON_HELP}")
    for field, text in zip(FIELDS, fields):
        problem = _field_problem(field, text)
        if problem:
            raise ValueError(f"{expression!r}: {field.name} {text!r} {problem}")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ValueError(f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    return Cron(*fields)


def parse_rate(expression: str) -> Rate:
    """The value and unit of `rate(...)`; ValueError saying what EventBridge takes."""
    match = re.fullmatch(r"rate\((?P<value>[0-9]+) (?P<unit>[a-z]+)\)", expression)
    if not match or match["unit"].removesuffix("s") not in _RATE_UNITS:
        raise ValueError(f"{expression!r} is not a rate expression, {RATE_HELP}")
    value, unit = match["value"], match["unit"]
    if value.startswith("0"):
        raise ValueError(f"{expression!r}: the value must be a whole number from 1, without leading zeros")
    singular = unit.removesuffix("s")
    if int(value) == 1 and unit != singular:
        raise ValueError(f"{expression!r}: a value of 1 takes the singular unit, 'rate(1 {singular})'")
    if int(value) > 1 and unit == singular:
        raise ValueError(f"{expression!r}: a value above 1 takes the plural unit, 'rate({value} {singular}s)'")
    return Rate(int(value), singular)


def check_eventbridge_schedule(expression: str) -> str:
    """`expression` if EventBridge takes it as a rule's schedule (cron or rate); else ValueError."""
    if expression.startswith("rate("):
        parse_rate(expression)
    elif expression.startswith("cron("):
        parse_cron(expression)
    else:
        raise ValueError(f"{expression!r} must be an EventBridge schedule, {CRON_HELP} or {RATE_HELP}")
    return expression


def check_autoscaling_cron(expression: str) -> str:
    """`expression` if Application Auto Scaling takes it as a scheduled action's cron; else ValueError."""
    if not expression.startswith("cron("):
        raise ValueError(f"{expression!r} must be a cron expression of six fields, {CRON_HELP}")
    parse_cron(expression)
    return expression


def _field_problem(field: CronField, text: str) -> Optional[str]:
    """What is wrong with one field's text, or None."""
    if text == "?":
        return None if field in (DAY_OF_MONTH, DAY_OF_WEEK) else "may not be '?' (only day-of-month or day-of-week)"
    items = text.split(",")
    if len(items) > 1 and any(_special(field, item) for item in items):
        return "combines L, W or # with a list; use them alone"
    for item in items:
        problem = _special_problem(field, item) if _special(field, item) else _item_problem(field, item)
        if problem:
            return problem
    return None


def _special(field: CronField, item: str) -> bool:
    return field in (DAY_OF_MONTH, DAY_OF_WEEK) and bool(re.search(r"[LW#]", item.upper().replace("WED", "")))


def _special_problem(field: CronField, item: str) -> Optional[str]:
    """Day-of-month `L`, `LW`, `<day>W`; day-of-week `L`, `<day>L`, `<day>#<n>`."""
    upper = item.upper()
    if field is DAY_OF_MONTH:
        if upper in ("L", "LW"):
            return None
        day = field.number(upper[:-1]) if upper.endswith("W") else None
        return None if day is not None and 1 <= day <= 31 else "must be L, LW or <day>W with a day 1-31"
    if upper == "L":
        return None
    if upper.endswith("L"):
        day = field.number(upper[:-1])
        return None if day is not None and 1 <= day <= 7 else "must be L or <day>L with a day 1-7 or SUN-SAT"
    day_text, _, nth = upper.partition("#")
    day = field.number(day_text)
    if day is None or not 1 <= day <= 7 or nth not in ("1", "2", "3", "4", "5"):
        return "must be <day>#<n> with a day 1-7 or SUN-SAT and n 1-5 (the nth such day of the month)"
    return None


def _item_problem(field: CronField, item: str) -> Optional[str]:
    """`*`, `*/n`, `a`, `a-b`, `a/n` or `a-b/n`."""
    base, slash, step = item.partition("/")
    if slash:
        span = field.high - field.low + 1
        if not re.fullmatch(r"[0-9]{1,4}", step) or not 1 <= int(step) <= span:
            return f"has increment {step!r}; increments are 1-{span}"
    if base == "*":
        return None
    bounds = base.split("-")
    if len(bounds) > 2 or not all(bounds):
        return f"must be *, a value {field.allowed}, a range a-b, an increment a/n, or a list of those"
    for bound in bounds:
        value = field.number(bound)
        if value is None or not field.low <= value <= field.high:
            return f"is outside {field.allowed}"
    return None
