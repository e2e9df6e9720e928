"""`emlops cost`: the capacity model of the shipped stacks, its pricing from the test price book (totals checked by
hand), the PR comment's cost column and monthly delta, and the command's one-line errors."""

from __future__ import annotations

import json
from fractions import Fraction as F

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from emlops.offline.preview import preview_stack
from emlops.review.capacity import capacity_of
from emlops.review.comment import build_comment
from emlops.review.cost import cost_of, render
from emlops.review.prices import PriceBook
from emlops.review.schedule_hours import ScheduledCapacity, runs_per_month, scaled_instance_hours
from tests.conftest import ROOT, edit_stack
from tests.test_prices import pricing  # noqa: F401  (the stubbed Price List API, a fixture)

runner = CliRunner()
TEST_BOOK = ROOT / "tests" / "data" / "price-book.test.json"
HOURS = F(730)  # AWS's month: quantities and amounts are exact fractions


def line(capacity, resource: str, what_starts: str = ""):
    [found] = [l for l in capacity.lines if l.resource == resource and l.what.startswith(what_starts)]
    return found


def test_the_test_price_book_is_marked_as_test_data():
    book = PriceBook.load(TEST_BOOK)
    assert book.test_data is True and book.data["source"].startswith("TEST DATA")
    assert book.price("eu-west-1", "sagemaker:hosting:ml.c5.xlarge") == F("0.20")
    assert book.price("us-east-1", "sagemaker:hosting:ml.c5.xlarge") is None


def test_prod_capacity_endpoints_jobs_network_and_what_is_billed_by_use(shipped_plan):
    capacity = capacity_of(shipped_plan("prod"))
    churn = line(capacity, "prod-churn-config")
    assert (churn.what, churn.price_keys, churn.low, churn.high) == (
        "ml.m5.xlarge variant 'primary', 2-8 instances", ("sagemaker:hosting:ml.m5.xlarge",), 2 * HOURS, 8 * HOURS)
    scoring = line(capacity, "prod-doc-scoring-config")  # asynchronous, scales in to zero
    assert (scoring.low, scoring.high, scoring.assumption) == (
        0, 6 * HOURS, "scales in to zero without a backlog: the low end runs no instance")
    monitor = line(capacity, "prod-churn-monitor-schedule")  # hourly, one ml.m5.xlarge for at most an hour
    assert (monitor.price_keys, monitor.low, monitor.assumption) == (
        ("sagemaker:processing:ml.m5.xlarge",), HOURS, "each run takes its configured maximum runtime, 1 h")
    training = line(capacity, "prod-fraud-retraining-pipeline", "ml.m5.xlarge training")  # weekly, 24 h at most
    assert (training.low, training.component) == (HOURS / 168 * 24, "prod-fraud-retraining")
    endpoint = line(capacity, "prod-network-endpoint-kms")
    assert (endpoint.what, endpoint.unit, endpoint.low) == ("interface endpoint kms in 3 AZs", "endpoint-hours",
                                                            3 * HOURS)
    counts = {key: sum(1 for l in capacity.lines if l.price_keys == (key,)) for key in
              ("kms:key", "cloudwatch:alarm", "cloudwatch:dashboard", "vpc:interface-endpoint")}
    assert counts == {"kms:key": 5, "cloudwatch:alarm": 16, "cloudwatch:dashboard": 4, "vpc:interface-endpoint": 10}
    usage = {u.resource: u.billed_by for u in capacity.usage_only}
    assert usage["prod-datasets-bucket"] == "GB stored and requests"
    nightly = line(capacity, "prod-churn-nightly-pipeline")  # 2 instances, nightly, 45 minutes (an assumption)
    assert (nightly.price_keys, nightly.low, nightly.assumption) == (
        ("sagemaker:transform:ml.m5.xlarge",), HOURS / 24 * 2 * F(45, 60),
        "each run takes its expected_run_minutes, 0.75 h")
    assert "prod-churn-nightly-pipeline" not in usage
    assert usage["prod-churn-retraining-pipeline"].startswith("runs that events start: ")
    # the customers data pipeline's validation and transformation sit in its condition's branch (a batch landed):
    # each daily run may find nothing, so only the high end counts them
    validation, transformation = [l for l in capacity.lines if l.resource == "prod-customers-data-pipeline"]
    assert [(l.what, l.low, l.high) for l in (validation, transformation)] == [
        ("ml.m5.xlarge processing x1, 30.42 runs (cron(0 4 * * ? *))", 0, HOURS / 24)] * 2
    assert validation.assumption == ("each run takes its configured maximum runtime, 1 h; it runs only when a "
                                     "condition of its pipeline holds, so the low end counts none")


def test_staging_off_hours_eks_and_shadow(shipped_plan):
    capacity = capacity_of(shipped_plan("staging"))
    churn = line(capacity, "staging-churn-config", "ml.m5.large")
    # 2 instances at most Mon-Fri 07:00-19:00 (60 h a week), 1 otherwise; a month is 730/168 weeks
    assert (churn.low, churn.high) == (HOURS, HOURS + 60 * HOURS / 168)
    assert churn.assumption == "off-hours schedule applied week by week"
    shadow = line(capacity, "staging-fraud-config", "ml.c5.large shadow")
    assert (shadow.low, shadow.high) == (HOURS, HOURS)
    gpu = line(capacity, "staging-training-gpu")
    assert (gpu.price_keys, gpu.low, gpu.high) == (("ec2:instance:g5.2xlarge", "ec2:instance:g5.12xlarge"), 0,
                                                   4 * HOURS)
    assert line(capacity, "staging-training-cluster").price_keys == ("eks:cluster",)


def test_dev_mlflow_and_serverless(shipped_plan):
    capacity = capacity_of(shipped_plan("dev"))
    server = line(capacity, "dev-registry-tracking-server")
    assert (server.price_keys, server.low) == (("sagemaker:mlflow:Small",), HOURS)
    usage = {u.resource: u.billed_by for u in capacity.usage_only}
    assert usage["dev-churn-config"] == ("serverless variant 'serverless': GB-seconds of compute at 2048 MB "
                                         "(up to 5 concurrent requests) and data processed")


@pytest.mark.parametrize(("expression", "runs"), [
    ("cron(0 * ? * * *)", HOURS), ("cron(0 3 ? * SUN *)", HOURS / 168), ("cron(0 2 * * ? *)", HOURS / 24),
    ("cron(0 6 1 * ? *)", F(1)), ("cron(0/15 8-17 ? * MON-FRI *)", 4 * 10 * 5 * HOURS / 168),
    ("rate(12 hours)", HOURS / 12), ("cron(0 0 ? JAN,JUL MON *)", HOURS / 168 * 2 / 12),
])
def test_runs_a_month(expression, runs):
    assert runs_per_month(expression) == runs


def test_scheduled_actions_that_do_not_repeat_weekly_bound_the_month():
    low, high, weekly = scaled_instance_hours(1, 2, [ScheduledCapacity("cron(0 8 1 * ? *)", 0, 5)])
    assert (low, high, weekly) == (0, 5 * HOURS, False)


def test_prod_totals_checked_by_hand(shipped_plan):
    report = cost_of(shipped_plan("prod"), PriceBook.load(TEST_BOOK))
    usd = lambda text: F(text)
    # hourly x6 (data quality of three models, churn's model quality and bias, fraud's explainability), the nightly
    # batch's daily
    monitors = 6 * 730 * usd("0.24") + F(730, 24) * usd("0.24")
    retraining = F(730, 7) * (2 * usd("0.24") + usd("0.28"))  # weekly (730/168 runs), 24 h each step
    # 5 keys: the platform's data and flow-log keys, the alerts topic's, the audit trail's, the data pipeline's logs
    fixed = 5 * 1 + 10 * 2190 * usd("0.01") + 16 * usd("0.10") + 4 * 3 + monitors + retraining
    batch = F(730, 24) * 2 * F(45, 60) * usd("0.24")  # nightly, 2 instances for the expected 45 minutes
    fixed += batch
    # the customers data pipeline's validation and transformation run daily when a batch landed (high end only)
    landed = 2 * F(730, 24) * usd("0.24")
    low = fixed + 1460 * usd("0.25") + 1460 * usd("0.20") + 0 * usd("0.50")
    high = fixed + landed + 5840 * usd("0.25") + 2920 * usd("0.20") + 4380 * usd("0.50")
    assert report.total() == (low, high)
    assert (round(float(low), 2), round(float(high), 2)) == (2043.31, 5634.91)
    assert report.total("prod-churn") == (usd("365.2"), usd("1460.2"))  # 1460-5840 h x $0.25 + 2 alarms
    assert report.missing == []


def test_emlops_cost_without_a_price_book_prints_capacity(tmp_path, shipped_plan, monkeypatch):
    shipped_plan("prod").write(tmp_path / "prod.json")
    monkeypatch.chdir(ROOT)  # the project ships no price book
    assert not (ROOT / "prices" / "aws-price-book.json").exists()
    result = runner.invoke(app, ["cost", "prod", "--plan", str(tmp_path / "prod.json")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Capacity of prod (prices missing)"
    assert "prod-churn                prod-churn-config" in result.output
    assert "1,460-5,840 instance-hours" in result.output and "$" not in result.output
    assert lines[-1] == ("Prices missing: no price book, so only capacity is shown. Build one with emlops prices "
                         "refresh --region REGION (AWS credentials that may call pricing:GetProducts) or pass "
                         "--prices FILE.")


def test_emlops_cost_prod_with_the_test_book_prints_the_totals(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["cost", "prod", "--prices", str(TEST_BOOK)])
    assert result.exit_code == 0, result.output
    assert "prod (stack, a month)                 $2,043.31  $5,634.91" in result.output.splitlines()
    assert "prod-churn (component)                $365.20    $1,460.20" in result.output.splitlines()
    assert f"WARNING: the price book {TEST_BOOK} is test data, not AWS's prices." in result.output


def test_json_and_markdown(shipped_plan):
    report = cost_of(shipped_plan("dev"), PriceBook.load(TEST_BOOK))
    data = json.loads(render(report, "json"))
    # 4 keys (data, flow logs, alerts topic, the data pipeline's logs), 10 endpoints in 2 AZs at $0.01, MLflow Small $0.60, ml.m5.large $0.125, ml.g5.2xlarge $1.50, 6 alarms,
    # 4 dashboards; the serverless endpoint is billed by use
    total = 4 + 10 * 1460 * F("0.01") + 730 * (F("0.60") + F("0.125") + F("1.50")) + 6 * F("0.10") + 4 * 3
    assert total == F("1786.85")
    assert data["total"] == {"low": "1786.85", "high": "1786.85", "complete": True}
    assert data["priceBook"]["testData"] is True
    markdown = render(report, "markdown")
    assert "| dev (stack, a month) | $1,786.85 | $1,786.85 |" in markdown.splitlines()


def test_a_price_the_book_lacks_is_named_and_left_out_of_the_totals(tmp_path, shipped_plan):
    data = json.loads(TEST_BOOK.read_text())
    del data["regions"]["eu-west-1"]["prices"]["sagemaker:mlflow:Small"]
    (tmp_path / "book.json").write_text(json.dumps(data))
    report = cost_of(shipped_plan("dev"), PriceBook.load(tmp_path / "book.json"))
    assert report.missing == ["eu-west-1 sagemaker:mlflow:Small"]
    assert report.total()[0] == F("1786.85") - 730 * F("0.60")
    assert "The totals leave out lines the price book has no price for: eu-west-1 sagemaker:mlflow:Small" in \
        render(report, "table")


def test_pr_comment_shows_the_monthly_delta_of_a_change_of_frauds_instance_type(tmp_path, project_copy,
                                                                                 shipped_plan):
    base, head = tmp_path / "base", tmp_path / "head"
    base.mkdir(), head.mkdir()
    shipped_plan("prod").write(base / "prod.json")
    edit_stack(project_copy, "prod", "            instance_type: ml.c5.xlarge\n",
               "            instance_type: ml.m5.xlarge\n")
    preview_stack("prod", start=project_copy).plan.write(head / "prod.json")
    result = runner.invoke(app, ["pr-comment", "--base", str(base), "--head", str(head), "--prices", str(TEST_BOOK)])
    assert result.exit_code == 0, result.output
    # fraud runs 2-4 instances: 1,460-2,920 h a month at $0.25 instead of $0.20 -> +$73.00 low, +$146.00 high
    assert "| stack | + add | ~ change | - delete | ± replace | policies | cost a month |" in result.output
    assert ("| `prod` | 0 | 1 | 0 | 1 | not checked | $2,116.31–$5,780.91 (+$73.00 low, +$146.00 high) |"
            in result.output.splitlines())
    assert ("**Cost a month** (low–high, on-demand): $2,043.31–$5,634.91 → $2,116.31–$5,780.91 "
            "(+$73.00 low, +$146.00 high)") in result.output.splitlines()
    assert ("*Cost a month: what the plans run, low to high (`emlops cost`), priced from TEST DATA, not AWS's prices; "
            "what AWS bills by use only (storage, requests) is not included.*") in result.output.splitlines()
    assert "cost a month" not in build_comment(base, head)  # no book, no cost column


@pytest.mark.parametrize(("args", "message"), [
    (["cost", "prod", "--format", "csv"], "emlops cost: --format: 'csv' is not supported; allowed: table, json, "
                                          "markdown"),
    (["cost", "prod", "--prices", "missing.json"], "emlops cost: missing.json: no such price book"),
    (["cost", "dev", "--plan", "PLAN", "--prices", str(TEST_BOOK)], "emlops cost: --plan PLAN: is the plan of stack "
                                                                   "'prod', not 'dev'"),
])
def test_bad_input_is_one_line(tmp_path, shipped_plan, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    shipped_plan("prod").write(tmp_path / "PLAN")
    (tmp_path / "not-a-book.json").write_text("{}")
    result = runner.invoke(app, args)
    assert (result.exit_code, result.output) == (2, message + "\n")


def test_a_file_that_is_not_a_price_book(tmp_path):
    (tmp_path / "book.json").write_text('{"schema": "emlops.plan/v1"}')
    result = runner.invoke(app, ["cost", "prod", "--prices", str(tmp_path / "book.json")])
    assert (result.exit_code, result.output) == (2, f"emlops cost: {tmp_path / 'book.json'}: not an emlops.prices/v1 "
                                                    "price book (write one with `emlops prices refresh`)\n")


def test_readme_cost_commands_run_as_shown(project_copy, monkeypatch, pricing):
    """Every line of the README's 'Cost' block, in order, in a project copy; the price book comes from the Price
    List API through botocore's Stubber (tests/test_prices.py)."""
    import re
    import shlex

    import boto3

    readme = (ROOT / "README.md").read_text()
    [block] = [b for b in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) if "emlops prices refresh" in b]
    monkeypatch.chdir(project_copy)
    real_client = boto3.client
    monkeypatch.setattr(boto3, "client", lambda service, *args, **kwargs: pricing if service == "pricing" else
                        real_client(service, *args, **kwargs))
    outputs = []
    for line in block.strip().splitlines():
        command = shlex.split(line.split("#")[0])
        assert command[0] == "emlops", line
        result = runner.invoke(app, command[1:])
        assert result.exit_code == 0, (line, result.output)
        outputs.append(result.output)
    assert outputs[0].startswith("Capacity of prod (prices missing)\n")
    assert (project_copy / "prices" / "aws-price-book.json").is_file()
    assert outputs[2].startswith("### Cost of `prod`\n")
    assert "| prod-churn | prod-churn-config | ml.m5.xlarge variant 'primary', 2-8 instances | 1,460-5,840 " \
           "instance-hours | $335.80 | $1,343.20 |" in outputs[2].splitlines()  # the stubbed $0.23 an hour
    assert json.loads(outputs[4])["priced"] is True
    # the stubbed book prices only part of prod: the budget is compared with what it prices, and says so
    assert "warning: the estimate leaves out what the price book has no price for: eu-west-1 " in outputs[5]
    assert "passed: " in outputs[5]


def test_public_subnets_nat_gateways_and_their_addresses_by_the_hour():
    from tests.conftest import run_platform

    plan = run_platform({"network": {"managed": {"az_count": 2, "public_subnets": True}}})
    lines = [(l.resource, l.price_keys, l.unit, l.low) for l in capacity_of(plan).lines
             if l.type in ("aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip")]
    assert lines == [("dev-network-nat-1-eip", ("vpc:public-ipv4",), "hours", HOURS),
                     ("dev-network-nat-1", ("ec2:nat-gateway",), "hours", HOURS),
                     ("dev-network-nat-2-eip", ("vpc:public-ipv4",), "hours", HOURS),
                     ("dev-network-nat-2", ("ec2:nat-gateway",), "hours", HOURS)]


def test_a_batch_transform_without_an_expected_duration_is_billed_by_use(shipped_plan):
    import copy

    plan = copy.deepcopy(shipped_plan("prod"))
    pipeline = plan.get("prod-churn-nightly-pipeline")
    assert pipeline.inputs["tags"]["expected-run-minutes"] == "45"  # batch_transforms[0].expected_run_minutes
    del pipeline.inputs["tags"]["expected-run-minutes"]
    capacity = capacity_of(plan)
    assert [l for l in capacity.lines if l.resource == "prod-churn-nightly-pipeline"] == []
    assert {u.resource: u.billed_by for u in capacity.usage_only}["prod-churn-nightly-pipeline"] == (
        "instance-hours of steps without a maximum runtime: 2 x ml.m5.xlarge transform per run")


def test_expected_run_minutes_tags_the_pipeline_and_prices_each_scheduled_run():
    from tests.conftest import run_platform
    from tests.test_batch_transform_platform import ENTRY, platform

    plan = run_platform(platform({**ENTRY, "schedule": "rate(12 hours)", "instance_count": 3,
                                  "expected_run_minutes": 20}))
    pipeline = plan.get("dev-churn-scoring-pipeline")
    assert pipeline.inputs["tags"]["expected-run-minutes"] == "20"
    [scoring] = [l for l in capacity_of(plan).lines if l.resource == "dev-churn-scoring-pipeline"]
    # twice a day, 3 instances, 20 minutes each run
    assert (scoring.what, scoring.low, scoring.high) == (
        "ml.m5.xlarge transform x3, 60.83 runs (rate(12 hours))", HOURS / 12 * 3 * F(20, 60), HOURS / 12 * 3 * F(1, 3))
    assert "expected-run-minutes" not in run_platform(platform()).get("dev-churn-scoring-pipeline").inputs["tags"]


@pytest.mark.parametrize(("minutes", "message"), [
    (0, "batch_transforms[0].expected_run_minutes: must be greater than or equal to 1, got 0"),
    (10081, "batch_transforms[0].expected_run_minutes: must be less than or equal to 10080, got 10081"),
])
def test_a_bad_expected_run_is_one_line(minutes, message):
    from tests.test_batch_transform_platform import ENTRY, error

    assert error({**ENTRY, "expected_run_minutes": minutes}) == message
