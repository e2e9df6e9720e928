"""The one schedule grammar (components/schedules.py) and every schedule setting that uses it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emlops.components.endpoint_args import OffHoursSettings
from emlops.components.monitoring_args import MonitoringSettings
from emlops.components.retraining_args import RetrainingSettings
from emlops.components.schedules import (Cron, Rate, check_autoscaling_cron, check_eventbridge_schedule, parse_cron,
                                         parse_rate)
from tests.conftest import edit_stack, preview_error

CRON = ("'cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)', e.g. 'cron(0 3 ? * MON *)'")


@pytest.mark.parametrize("expression", [
    "cron(0 3 ? * MON *)", "cron(0 19 ? * MON-FRI *)", "cron(0/15 * * * ? *)", "cron(*/5 8-17 ? * 2-6 *)",
    "cron(0 0 1 * ? *)", "cron(0 12 L * ? *)", "cron(0 12 LW * ? *)", "cron(0 12 15W * ? *)",
    "cron(0 12 ? * 6L *)", "cron(0 12 ? * FRIL *)", "cron(0 12 ? * L *)", "cron(0 12 ? * MON#1 2026)",
    "cron(0 12 ? * 3#5 *)", "cron(5,35 0,12 ? JAN,JUL SUN,WED 2026-2030)", "cron(0 0 31 DEC ? 2199)",
    "cron(59 23 ? * SAT 1970)", "cron(0 0/24 ? * * *)", "cron(0 0 1/31 * ? *)", "cron(0 0 ? jan mon *)",
])
def test_crons_aws_takes(expression):
    assert isinstance(parse_cron(expression), Cron)
    assert check_eventbridge_schedule(expression) == expression == check_autoscaling_cron(expression)


@pytest.mark.parametrize("expression, message", [
    ("cron(61 25 ? * FOO *)", "minutes '61' is outside 0-59"),
    ("cron(0 25 ? * MON *)", "hours '25' is outside 0-23"),
    ("cron(0 3 32 * ? *)", "day-of-month '32' is outside 1-31"),
    ("cron(0 3 0 * ? *)", "day-of-month '0' is outside 1-31"),
    ("cron(0 3 ? 13 MON *)", "month '13' is outside 1-12 or JAN-DEC"),
    ("cron(0 3 ? FOO MON *)", "month 'FOO' is outside 1-12 or JAN-DEC"),
    ("cron(0 3 ? * FOO *)", "day-of-week 'FOO' is outside 1-7 or SUN-SAT"),
    ("cron(0 3 ? * 0 *)", "day-of-week '0' is outside 1-7 or SUN-SAT"),
    ("cron(0 3 ? * 8 *)", "day-of-week '8' is outside 1-7 or SUN-SAT"),
    ("cron(0 3 ? * MON 1969)", "year '1969' is outside 1970-2199"),
    ("cron(0 3 ? * MON 2200)", "year '2200' is outside 1970-2199"),
    ("cron(0 3 ? * MON-FOO *)", "day-of-week 'MON-FOO' is outside 1-7 or SUN-SAT"),
    ("cron(0/0 3 ? * MON *)", "minutes '0/0' has increment '0'; increments are 1-60"),
    ("cron(0/61 3 ? * MON *)", "minutes '0/61' has increment '61'; increments are 1-60"),
    ("cron(0 3 ? * MON/x *)", "day-of-week 'MON/x' has increment 'x'; increments are 1-7"),
    ("cron(0 1-2-3 ? * MON *)", "hours '1-2-3' must be *, a value 0-23, a range a-b, an increment a/n, or a list "
                                "of those"),
    ("cron(0 3, ? * MON *)", "hours '3,' must be *, a value 0-23, a range a-b, an increment a/n, or a list of "
                             "those"),
    ("cron(? 3 ? * MON *)", "minutes '?' may not be '?' (only day-of-month or day-of-week)"),
    ("cron(0 3 L,1 * ? *)", "day-of-month 'L,1' combines L, W or # with a list; use them alone"),
    ("cron(0 3 32W * ? *)", "day-of-month '32W' must be L, LW or <day>W with a day 1-31"),
    ("cron(0 3 ? * 8L *)", "day-of-week '8L' must be L or <day>L with a day 1-7 or SUN-SAT"),
    ("cron(0 3 ? * MON#6 *)", "day-of-week 'MON#6' must be <day>#<n> with a day 1-7 or SUN-SAT and n 1-5 (the nth "
                              "such day of the month)"),
    ("cron(0 3 * * MON *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 3 ? * ? *)", "exactly one of day-of-month and day-of-week must be '?'"),
])
def test_crons_name_the_field_and_its_range(expression, message):
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    assert str(caught.value) == f"{expression!r}: {message}"


@pytest.mark.parametrize("expression", ["cron(0 3 ? * MON)", "cron(0 3 ? * MON * *)", "cron(0  3 ? * MON *)",
                                        "cron (0 3 ? * MON *)", "cron(0 3 ? * MON *"])
def test_crons_have_six_fields(expression):
    with pytest.raises(ValueError) as caught:
        parse_cron(expression)
    assert str(caught.value) == f"{expression!r} is not a cron expression of six fields, {CRON}"


@pytest.mark.parametrize("expression, rate", [
    ("rate(1 minute)", Rate(1, "minute")), ("rate(5 minutes)", Rate(5, "minute")), ("rate(1 hour)", Rate(1, "hour")),
    ("rate(12 hours)", Rate(12, "hour")), ("rate(1 day)", Rate(1, "day")), ("rate(7 days)", Rate(7, "day")),
])
def test_rates_aws_takes(expression, rate):
    assert parse_rate(expression) == rate
    assert check_eventbridge_schedule(expression) == expression
    assert rate.seconds == rate.value * {"minute": 60, "hour": 3600, "day": 86400}[rate.unit]


@pytest.mark.parametrize("expression, message", [
    ("rate(1 days)", "'rate(1 days)': a value of 1 takes the singular unit, 'rate(1 day)'"),
    ("rate(5 minute)", "'rate(5 minute)': a value above 1 takes the plural unit, 'rate(5 minutes)'"),
    ("rate(0 minutes)", "'rate(0 minutes)': the value must be a whole number from 1, without leading zeros"),
    ("rate(07 days)", "'rate(07 days)': the value must be a whole number from 1, without leading zeros"),
    ("rate(7 weeks)", "'rate(7 weeks)' is not a rate expression, 'rate(<n> <minutes|hours|days>)', e.g. "
                      "'rate(7 days)'"),
    ("rate(-1 days)", "'rate(-1 days)' is not a rate expression, 'rate(<n> <minutes|hours|days>)', e.g. "
                      "'rate(7 days)'"),
])
def test_rates_name_their_problem(expression, message):
    with pytest.raises(ValueError) as caught:
        parse_rate(expression)
    assert str(caught.value) == message


def test_application_auto_scaling_crons_are_crons():
    with pytest.raises(ValueError) as caught:
        check_autoscaling_cron("rate(1 day)")
    assert str(caught.value) == f"'rate(1 day)' must be a cron expression of six fields, {CRON}"


# -- every schedule setting uses the parser ----------------------------------------------------------------------

def _error(model, raw) -> tuple[tuple, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(raw)
    (error,) = caught.value.errors()
    return tuple(error["loc"]), error["msg"]


@pytest.mark.parametrize("model, raw, loc, message", [
    (RetrainingSettings, {"schedule": "cron(61 25 ? * FOO *)"}, ("schedule",),
     "Value error, 'cron(61 25 ? * FOO *)': minutes '61' is outside 0-59"),
    (RetrainingSettings, {"schedule": "rate(1 hours)"}, ("schedule",),
     "Value error, 'rate(1 hours)': a value of 1 takes the singular unit, 'rate(1 hour)'"),
    (OffHoursSettings, {"scale_down_cron": "cron(0 19 ? * MON-FRY *)"}, ("scale_down_cron",),
     "Value error, 'cron(0 19 ? * MON-FRY *)': day-of-week 'MON-FRY' is outside 1-7 or SUN-SAT"),
    (OffHoursSettings, {"scale_up_cron": "cron(0 7 * * MON-FRI *)"}, ("scale_up_cron",),
     "Value error, 'cron(0 7 * * MON-FRI *)': exactly one of day-of-month and day-of-week must be '?'"),
    (MonitoringSettings, {"schedule": "cron(0 24/2 ? * * *)"}, ("schedule",),
     "Value error, 'cron(0 24/2 ? * * *)': hours '24/2' is outside 0-23"),
])
def test_schedule_settings_use_the_parser(model, raw, loc, message):
    assert _error(model, raw) == (loc, message)


@pytest.mark.parametrize("stack, old, new, message", [
    ("prod", 'schedule: "cron(0 3 ? * SUN *)"', 'schedule: "cron(61 25 ? * FOO *)"',
     "emlops:platform.models[1].retraining.schedule: 'cron(61 25 ? * FOO *)': minutes '61' is outside 0-59"),
    ("prod", 'schedule: "cron(0 3 ? * SUN *)"', 'schedule: "rate(2 week)"',
     "emlops:platform.models[1].retraining.schedule: 'rate(2 week)' is not a rate expression, "
     "'rate(<n> <minutes|hours|days>)', e.g. 'rate(7 days)'"),
    ("staging", 'scale_down_cron: "cron(0 19 ? * MON-FRI *)"', 'scale_down_cron: "cron(0 19 ? 13 MON-FRI *)"',
     "emlops:platform.models[0].autoscaling.off_hours.scale_down_cron: 'cron(0 19 ? 13 MON-FRI *)': month '13' is "
     "outside 1-12 or JAN-DEC"),
    ("staging", 'scale_up_cron: "cron(0 7 ? * MON-FRI *)"', 'scale_up_cron: "cron(0 7 ? * MON-FRI 2200)"',
     "emlops:platform.models[0].autoscaling.off_hours.scale_up_cron: 'cron(0 7 ? * MON-FRI 2200)': year '2200' is "
     "outside 1970-2199"),
])
def test_stack_file_schedule_errors(project_copy, stack, old, new, message):
    edit_stack(project_copy, stack, old, new)
    assert preview_error(project_copy, stack) == f"stacks/Pulumi.{stack}.yaml: {message}"
