"""`emlops prices refresh`: the price book from the AWS Price List Query API, through botocore's Stubber with
answers in the API's own shape (each PriceList item a JSON string of product, on-demand terms and price
dimensions); the filters each GetProducts call sends are asserted."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from emlops.cli import app
from emlops.review.prices import QUERIES, PriceBook, filters, refresh

runner = CliRunner()
PUBLISHED = {"AmazonSageMaker": ("20261101120000", "2026-11-01T12:00:00Z"),
             "AmazonEC2": ("20261120090000", "2026-11-20T09:00:00Z"), "AmazonVPC": ("20261002000000", "2026-10-02T00:00:00Z"),
             "AmazonEKS": ("20260915000000", "2026-09-15T00:00:00Z"), "awskms": ("20260801000000", "2026-08-01T00:00:00Z"),
             "AmazonCloudWatch": ("20261110000000", "2026-11-10T00:00:00Z")}


def product(service: str, sku: str, family: str, attributes: dict, dimensions: list[tuple[str, str, str]],
            on_demand: bool = True) -> str:
    """A PriceList item as GetProducts returns it: a JSON string."""
    version, published = PUBLISHED[service]
    term = {f"{sku}.JRTCKXETXF": {
        "offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "termAttributes": {},
        "priceDimensions": {f"{sku}.JRTCKXETXF.{i}": {
            "rateCode": f"{sku}.JRTCKXETXF.{i}", "description": f"{usd} per {unit}", "beginRange": begin,
            "endRange": "Inf", "unit": unit, "appliesTo": [], "pricePerUnit": {"USD": usd}}
            for i, (begin, usd, unit) in enumerate(dimensions)}}}
    return json.dumps({
        "product": {"productFamily": family, "sku": sku,
                    "attributes": {"servicecode": service, "regionCode": "eu-west-1", "location": "EU (Ireland)",
                                   **attributes}},
        "serviceCode": service, "terms": {"OnDemand": term} if on_demand else {"Reserved": term},
        "version": version, "publicationDate": published})


def ml(sku: str, component: str, usage: str, instance: str, usd: str) -> str:
    return product("AmazonSageMaker", sku, "ML Instance", {
        "usagetype": f"EUW1-{usage}:{instance}", "instanceName": instance, "component": component,
        "operation": "RunInstance"}, [("0", usd, "Hrs")])


# (query index, pages of products)
ANSWERS = [
    (0, [[ml("SKUHOST1", "Hosting", "Host", "ml.m5.xlarge", "0.2300000000"),
          ml("SKUPROC1", "Processing", "Processing", "ml.m5.xlarge", "0.2540000000"),
          ml("SKURES01", "Hosting", "Host", "ml.c5.xlarge", "0.1000000000").replace('"OnDemand"', '"Reserved"')],
         [ml("SKUTRAN1", "Training", "Train", "ml.m5.xlarge", "0.2580000000"),
          product("AmazonSageMaker", "SKUMLF01", "Machine Learning Service",
                  {"usagetype": "EUW1-MLflow-TrackingServer-Small", "operation": "RunTrackingServer"},
                  [("0", "0.6420000000", "Hrs")]),
          product("AmazonSageMaker", "SKUSRV01", "ML Serverless", {"usagetype": "EUW1-ServerlessInf:Mem-2GB",
                                                                   "instanceName": "ml.serverless"},
                  [("0", "0.0000400000", "Second")])]]),
    (1, [[product("AmazonEC2", "SKUEC201", "Compute Instance", {
        "usagetype": "EU-BoxUsage:m6i.large", "instanceType": "m6i.large", "operatingSystem": "Linux",
        "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}, [("0", "0.1070000000", "Hrs")])]]),
    (2, [[product("AmazonEC2", "SKUNAT01", "NAT Gateway", {"usagetype": "EU-NatGateway-Hours"},
                  [("0", "0.0480000000", "Hrs")]),
          product("AmazonEC2", "SKUNAT02", "NAT Gateway", {"usagetype": "EU-NatGateway-Bytes"},
                  [("0", "0.0480000000", "GB")])]]),
    (3, [[product("AmazonVPC", "SKUVPC01", "VpcEndpoint", {"usagetype": "EU-VpcEndpoint-Hours"},
                  [("0", "0.0110000000", "Hrs")]),
          product("AmazonVPC", "SKUVPC02", "VpcEndpoint", {"usagetype": "EU-VpcEndpoint-Bytes"},
                  [("0", "0.0100000000", "GB")]),
          product("AmazonVPC", "SKUVPC03", "VPC Public IPv4 Address", {"usagetype": "EU-PublicIPv4:InUseAddress"},
                  [("0", "0.0050000000", "Hrs")])]]),
    (4, [[product("AmazonEKS", "SKUEKS01", "Compute", {"usagetype": "EU-AmazonEKS-Hours:perCluster"},
                  [("0", "0.1000000000", "Hours")]),
          product("AmazonEKS", "SKUEKS02", "Compute", {"usagetype": "EU-AmazonEKS-Hours:extendedSupport"},
                  [("0", "0.6000000000", "Hours")])]]),
    (5, [[product("awskms", "SKUKMS01", "Encryption Key", {"usagetype": "eu-west-1-KMS-Keys"},
                  [("0", "1.0000000000", "Keys")]),
          product("awskms", "SKUKMS02", "API Request", {"usagetype": "eu-west-1-KMS-Requests"},
                  [("0", "0.0000030000", "Requests")])]]),
    (6, [[product("AmazonCloudWatch", "SKUCWA01", "Alarm", {"usagetype": "EU-CW:AlarmMonitorUsage"},
                  [("0", "0.0000000000", "Alarms"), ("10", "0.1000000000", "Alarms")])]]),
    (7, [[product("AmazonCloudWatch", "SKUCWD01", "Dashboard", {"usagetype": "EU-DashboardsUsageHour"},
                  [("0", "3.0000000000", "Dashboards")])]]),
]


@pytest.fixture
def pricing():
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    stubber = Stubber(client)
    for index, pages in ANSWERS:
        query = QUERIES[index]
        for number, page in enumerate(pages):
            expected = {"ServiceCode": query.service, "Filters": filters(query, "eu-west-1"),
                        "FormatVersion": "aws_v1", "MaxResults": 100}
            if number:
                expected["NextToken"] = f"page-{number}"
            answer = {"FormatVersion": "aws_v1", "PriceList": page}
            if number + 1 < len(pages):
                answer["NextToken"] = f"page-{number + 1}"
            stubber.add_response("get_products", answer, expected)
    with stubber:
        yield client
    stubber.assert_no_pending_responses()


def test_the_filters_each_query_sends():
    assert [(q.service, filters(q, "eu-west-1")) for q in QUERIES][:3] == [
        ("AmazonSageMaker", [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"}]),
        ("AmazonEC2", [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
                       {"Type": "TERM_MATCH", "Field": "operatingSystem", "Value": "Linux"},
                       {"Type": "TERM_MATCH", "Field": "tenancy", "Value": "Shared"},
                       {"Type": "TERM_MATCH", "Field": "preInstalledSw", "Value": "NA"},
                       {"Type": "TERM_MATCH", "Field": "capacitystatus", "Value": "Used"}]),
        ("AmazonEC2", [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"},
                       {"Type": "TERM_MATCH", "Field": "productFamily", "Value": "NAT Gateway"}]),
    ]


def test_refresh_reads_every_page_and_keeps_on_demand_prices_by_key(pricing):
    book = refresh(["eu-west-1"], client=pricing, now=datetime(2026, 12, 5, 20, 0, tzinfo=timezone.utc))
    assert (book["schema"], book["testData"], book["generatedAt"]) == ("emlops.prices/v1", False, "2026-12-05T20:00:00Z")
    region = book["regions"]["eu-west-1"]
    assert {key: entry["usd"] for key, entry in region["prices"].items()} == {
        "cloudwatch:alarm": "0.1000000000",  # the first non-zero tier: free tiers are not applied
        "cloudwatch:dashboard": "3.0000000000",
        "ec2:instance:m6i.large": "0.1070000000",
        "ec2:nat-gateway": "0.0480000000",
        "eks:cluster": "0.1000000000",
        "kms:key": "1.0000000000",
        "sagemaker:hosting:ml.m5.xlarge": "0.2300000000",
        "sagemaker:mlflow:Small": "0.6420000000",
        "sagemaker:processing:ml.m5.xlarge": "0.2540000000",
        "sagemaker:training:ml.m5.xlarge": "0.2580000000",
        "vpc:interface-endpoint": "0.0110000000",
        "vpc:public-ipv4": "0.0050000000",
    }
    assert region["prices"]["sagemaker:hosting:ml.m5.xlarge"] == {
        "usd": "0.2300000000", "unit": "Hrs", "description": "0.2300000000 per Hrs",
        "rateCode": "SKUHOST1.JRTCKXETXF.0", "service": "AmazonSageMaker", "sku": "SKUHOST1",
        "usageType": "EUW1-Host:ml.m5.xlarge"}
    assert region["offers"] == {service: {"publicationDate": published, "version": version}
                                for service, (version, published) in sorted(PUBLISHED.items())}


@pytest.mark.parametrize("regions", [["--region", "eu-west-1"], []])  # by default, the stack files' (all eu-west-1)
def test_the_cli_writes_a_book_emlops_cost_reads(pricing, tmp_path, monkeypatch, regions):
    real_client = boto3.client
    monkeypatch.setattr(boto3, "client", lambda service, *args, **kwargs: pricing if (service, kwargs) == (
        "pricing", {"region_name": "us-east-1"}) else real_client(service, *args, **kwargs))
    output = tmp_path / "prices" / "aws-price-book.json"
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    result = runner.invoke(app, ["prices", "refresh", *regions, "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"price book written to {output} (eu-west-1: 12 prices; built 20")
    book = PriceBook.load(output)
    assert book.test_data is False and book.offers()[0] == (
        "AmazonCloudWatch eu-west-1: 2026-11-10T00:00:00Z (version 20261110000000)")


def test_without_credentials_it_says_so_in_one_line(tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = runner.invoke(app, ["prices", "refresh", "--region", "eu-west-1", "--output", str(tmp_path / "b.json")])
    assert (result.exit_code, result.output) == (
        2, "emlops prices refresh: the AWS Price List API did not answer: Unable to locate credentials\n")
    assert not (tmp_path / "b.json").exists()


def test_no_price_is_written_in_the_projects_code():
    """Prices come from the Price List API (a price book) only: no amount of money in the code the package installs."""
    import re

    root = Path(__file__).resolve().parent.parent
    money = re.compile(r"(?i)(usd|price|\$)[^\n]{0,40}?\b[0-9]+\.[0-9]+")
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for folder in ("emlops", "components", "infra") for path in sorted((root / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if money.search(line) and '"""`$1,234.57`."""' not in line]  # usd()'s docstring shows its format
    assert found == []
    assert not (root / "prices").exists()  # the project ships no price book of its own: `emlops prices refresh`
