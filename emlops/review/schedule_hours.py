"""How often a schedule fires in a month, and how many instance-hours a scaled variant runs in a week.

AWS bills by the hour and quotes a month as 730 hours; a month here is that long (730 / 24 days, 730 / 168 weeks),
and quantities are exact fractions, so that totals are the sums a reader checks by hand.
EventBridge and SageMaker schedules are `cron(...)` or `rate(...)` expressions (components/schedules.py parses
them); Application Auto Scaling's scheduled actions change a variant's minimum and maximum at the times their cron
names, and the capacity between two actions is what the earlier one set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from emlops.components.schedules import (DAY_OF_MONTH, DAY_OF_WEEK, HOURS, MINUTES, MONTH, CronField, parse_cron,
                                          parse_rate)

HOURS_PER_MONTH = Fraction(730)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
WEEKS_PER_MONTH = HOURS_PER_MONTH / 168
MINUTES_PER_WEEK = 7 * 24 * 60


def _values(field: CronField, text: str) -> Optional[set[int]]:
    """The values a cron field matches; None for `L`, `W` or `#` (a day a month, not a set of days)."""
    if field in (DAY_OF_MONTH, DAY_OF_WEEK) and re.search(r"#|^L|[0-9]L$|W$", text.upper()):
        return None
    out: set[int] = set()
    for item in text.split(","):
        step = 1
        if "/" in item:
            item, step_text = item.split("/")
            step = int(step_text)
        if item in ("*", "?"):
            low, high = field.low, field.high
        elif "-" in item:
            first, last = item.split("-")
            low, high = field.number(first), field.number(last)
        else:
            low = field.number(item)
            high = field.high if step > 1 else low
        out.update(range(low, high + 1, step))
    return out


def runs_per_month(expression: str) -> Fraction:
    """Times a `cron(...)` or `rate(...)` schedule fires in a 730-hour month (ValueError if it is neither)."""
    if expression.startswith("rate("):
        rate = parse_rate(expression)
        return HOURS_PER_MONTH * 3600 / rate.seconds
    cron = parse_cron(expression)
    per_day = len(_values(MINUTES, cron.minutes)) * len(_values(HOURS, cron.hours))
    months = _values(MONTH, cron.month)
    share_of_year = Fraction(12 if months is None else len(months)) / 12
    if cron.day_of_week == "?":
        days = _values(DAY_OF_MONTH, cron.day_of_month)
        per_month = DAYS_PER_MONTH if cron.day_of_month in ("*", "?") else Fraction(1 if days is None else len(days))
    else:
        days = _values(DAY_OF_WEEK, cron.day_of_week)
        per_month = Fraction(1) if days is None else WEEKS_PER_MONTH * len(days)
    return per_day * per_month * share_of_year


def weekly_minutes(expression: str) -> Optional[list[int]]:
    """The minutes of a week (0 = Sunday 00:00) a cron fires at; None when it does not repeat weekly."""
    try:
        cron = parse_cron(expression)
    except ValueError:
        return None
    if cron.month not in ("*", "?") or (cron.day_of_week == "?" and cron.day_of_month not in ("*", "?")):
        return None
    days = set(range(1, 8)) if cron.day_of_week in ("*", "?") else _values(DAY_OF_WEEK, cron.day_of_week)
    if days is None:
        return None
    return sorted((day - 1) * 1440 + hour * 60 + minute for day in days for hour in _values(HOURS, cron.hours)
                  for minute in _values(MINUTES, cron.minutes))


@dataclass(frozen=True)
class ScheduledCapacity:
    """A scheduled action's cron and the minimum and maximum it sets (None: left as it was)."""

    schedule: str
    min_capacity: Optional[int]
    max_capacity: Optional[int]


def scaled_instance_hours(min_capacity: int, max_capacity: int,
                          actions: list[ScheduledCapacity]) -> tuple[Fraction, Fraction, bool]:
    """Instance-hours a month at the minimum and at the maximum a variant may run, following its scheduled
    actions week after week; the third value says whether every action repeats weekly (else the bounds are the
    lowest minimum and highest maximum any action sets, all month long)."""
    if not actions:
        return HOURS_PER_MONTH * min_capacity, HOURS_PER_MONTH * max_capacity, True
    events = []
    for action in actions:
        minutes = weekly_minutes(action.schedule)
        if minutes is None:
            lows = [min_capacity] + [a.min_capacity for a in actions if a.min_capacity is not None]
            highs = [max_capacity] + [a.max_capacity for a in actions if a.max_capacity is not None]
            return HOURS_PER_MONTH * min(lows), HOURS_PER_MONTH * max(highs), False
        events += [(minute, action) for minute in minutes]
    events.sort(key=lambda event: event[0])
    state = [min_capacity, max_capacity]
    for _, action in events:  # the week before: where the week starts is where the last action left it
        state = [action.min_capacity if action.min_capacity is not None else state[0],
                 action.max_capacity if action.max_capacity is not None else state[1]]
    low = high = 0
    previous = 0
    for minute, action in events + [(MINUTES_PER_WEEK, None)]:
        low += (minute - previous) * state[0]
        high += (minute - previous) * state[1]
        previous = minute
        if action is not None:
            state = [action.min_capacity if action.min_capacity is not None else state[0],
                     action.max_capacity if action.max_capacity is not None else state[1]]
    to_month = WEEKS_PER_MONTH / 60
    return Fraction(low) * to_month, Fraction(high) * to_month, True
