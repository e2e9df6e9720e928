"""The price book: on-demand prices from the AWS Price List Query API, in a file the repository can commit.

`refresh(regions, client)` asks `pricing:GetProducts` (the API's endpoint is in us-east-1) for the products the
capacity model prices, one query per service with `TERM_MATCH` filters and every page of its answer, and keeps
each product's on-demand USD price under a key the capacity model names (`sagemaker:hosting:ml.m5.xlarge`,
`kms:key`, ...). The book records when it was built and, per service and region, the offer it was read from (the
products' `publicationDate` and `version`). No price is written anywhere else: without a book, `emlops cost`
shows capacity only. Free tiers are not applied (the first non-zero price of a product's on-demand terms is kept).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Optional

SCHEMA = "emlops.prices/v1"
DEFAULT_PATH = Path("prices") / "aws-price-book.json"  # under the project's root
PRICING_API_REGION = "us-east-1"  # where the Price List Query API answers; it prices every region
SOURCE = "AWS Price List Query API (pricing:GetProducts), on-demand terms, USD"
PAGE_SIZE = 100

_ML_COMPONENTS = {"hosting": "hosting", "training": "training", "processing": "processing",
                  "batch transform": "transform", "batchtransform": "transform", "transform": "transform"}
_ML_USAGE = {"Host": "hosting", "Train": "training", "Processing": "processing", "Tsform": "transform"}


class PriceBookError(Exception):
    """A price book that cannot be read or built (one line for the user)."""


def _usage(attributes: dict[str, str]) -> str:
    """The usage type without its region prefix (`EUW1-Host:ml.m5.xlarge` -> `Host:ml.m5.xlarge`)."""
    usage = attributes.get("usagetype", "")
    return usage.split("-", 1)[1] if re.match(r"^[A-Z]{2,4}[0-9]?-", usage) else usage


def _sagemaker(attributes: dict[str, str]) -> Optional[str]:
    usage = _usage(attributes)
    size = re.search(r"MLflow.*?(Small|Medium|Large)", usage, re.IGNORECASE)
    if size:
        return f"sagemaker:mlflow:{size[1].capitalize()}"
    instance = attributes.get("instanceName") or (usage.split(":", 1)[1] if ":" in usage else "")
    if not instance.startswith("ml.") or "ServerlessInf" in usage:
        return None
    kind = _ML_COMPONENTS.get(attributes.get("component", "").lower()) or _ML_USAGE.get(usage.split(":", 1)[0])
    return f"sagemaker:{kind}:{instance}" if kind else None


def _ec2_instance(attributes: dict[str, str]) -> Optional[str]:
    if "BoxUsage" in _usage(attributes) and attributes.get("instanceType"):
        return f"ec2:instance:{attributes['instanceType']}"
    return None


def _vpc(attributes: dict[str, str]) -> Optional[str]:
    usage = _usage(attributes)
    if re.search(r"^VpcEndpoint-Hours$", usage):
        return "vpc:interface-endpoint"
    return "vpc:public-ipv4" if re.search(r"PublicIPv4:InUseAddress$", usage) else None


def _suffix(key: str, pattern: str) -> Callable[[dict[str, str]], Optional[str]]:
    return lambda attributes: key if re.search(pattern, _usage(attributes)) else None


@dataclass(frozen=True)
class Query:
    """One GetProducts query: the service, its filters besides the region, and how a product maps to a key."""

    service: str
    filters: tuple[tuple[str, str], ...]
    key: Callable[[dict[str, str]], Optional[str]]


QUERIES = (
    Query("AmazonSageMaker", (), _sagemaker),
    Query("AmazonEC2", (("operatingSystem", "Linux"), ("tenancy", "Shared"), ("preInstalledSw", "NA"),
                        ("capacitystatus", "Used")), _ec2_instance),
    Query("AmazonEC2", (("productFamily", "NAT Gateway"),), _suffix("ec2:nat-gateway", r"^NatGateway-Hours$")),
    Query("AmazonVPC", (), _vpc),
    Query("AmazonEKS", (), _suffix("eks:cluster", r"AmazonEKS-Hours:perCluster$")),
    Query("awskms", (), _suffix("kms:key", r"KMS-Keys$")),
    Query("AmazonCloudWatch", (("productFamily", "Alarm"),), _suffix("cloudwatch:alarm", r"CW:AlarmMonitorUsage$")),
    Query("AmazonCloudWatch", (("productFamily", "Dashboard"),),
          _suffix("cloudwatch:dashboard", r"DashboardsUsageHour(-Basic)?$")),
)


def filters(query: Query, region: str) -> list[dict[str, str]]:
    """The GetProducts filters of QUERY in REGION."""
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value}
            for field, value in (("regionCode", region), *query.filters)]


def on_demand_price(product: dict[str, Any]) -> Optional[dict[str, str]]:
    """The first non-zero USD price of a product's on-demand terms (lowest range first), or None."""
    dimensions = [d for term in (product.get("terms", {}).get("OnDemand") or {}).values()
                  for d in (term.get("priceDimensions") or {}).values()]
    dimensions.sort(key=lambda d: (float(d.get("beginRange", "0") or 0), d.get("rateCode", "")))
    for dimension in dimensions:
        usd = dimension.get("pricePerUnit", {}).get("USD")
        try:
            if usd is not None and Decimal(usd) > 0:
                return {"usd": usd, "unit": dimension.get("unit", ""), "description": dimension.get("description", ""),
                        "rateCode": dimension.get("rateCode", "")}
        except InvalidOperation:
            continue
    return None


def _products(client, service: str, query_filters: list[dict[str, str]]):
    token = None
    while True:
        request = {"ServiceCode": service, "Filters": query_filters, "FormatVersion": "aws_v1",
                   "MaxResults": PAGE_SIZE}
        if token:
            request["NextToken"] = token
        response = client.get_products(**request)
        for item in response.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item
        token = response.get("NextToken")
        if not token:
            return


def refresh_region(client, region: str) -> dict[str, Any]:
    """The prices and offers of REGION (see the module doc)."""
    prices: dict[str, dict[str, str]] = {}
    offers: dict[str, dict[str, str]] = {}
    for query in QUERIES:
        for product in _products(client, query.service, filters(query, region)):
            attributes = product.get("product", {}).get("attributes", {})
            key = query.key(attributes)
            price = on_demand_price(product) if key else None
            if price is None:
                continue
            entry = {**price, "service": query.service, "sku": product.get("product", {}).get("sku", ""),
                     "usageType": attributes.get("usagetype", "")}
            if key not in prices or Decimal(entry["usd"]) > Decimal(prices[key]["usd"]):
                prices[key] = entry  # two products for one key: keep the dearer, never understate
            offer = {"publicationDate": product.get("publicationDate", ""), "version": product.get("version", "")}
            if offer["publicationDate"] >= offers.get(query.service, {}).get("publicationDate", ""):
                offers[query.service] = offer
    return {"offers": dict(sorted(offers.items())), "prices": dict(sorted(prices.items()))}


def refresh(regions: list[str], client=None, now: Optional[datetime] = None) -> dict[str, Any]:
    """A price book of REGIONS from the Price List API (CLIENT: a boto3 `pricing` client in us-east-1)."""
    if client is None:
        import boto3

        client = boto3.client("pricing", region_name=PRICING_API_REGION)
    generated = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"schema": SCHEMA, "testData": False, "source": SOURCE, "generatedAt": generated,
            "regions": {region: refresh_region(client, region) for region in sorted(set(regions))}}


@dataclass(frozen=True)
class PriceBook:
    """A loaded price book: USD per unit by region and key."""

    path: Path
    data: dict[str, Any]

    @property
    def test_data(self) -> bool:
        return bool(self.data.get("testData"))

    @property
    def generated_at(self) -> str:
        return str(self.data.get("generatedAt", "?"))

    def price(self, region: str, key: str) -> Optional[Decimal]:
        entry = self.data["regions"].get(region, {}).get("prices", {}).get(key)
        return Decimal(entry["usd"]) if entry else None

    def offers(self) -> list[str]:
        """`<service> <region>: <publicationDate> (version <v>)` of every offer the book was read from."""
        return [f"{service} {region}: {offer.get('publicationDate', '?')} (version {offer.get('version', '?')})"
                for region, content in sorted(self.data["regions"].items())
                for service, offer in sorted(content.get("offers", {}).items())]

    @classmethod
    def load(cls, path: Path) -> "PriceBook":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PriceBookError(f"{path}: no such price book") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise PriceBookError(f"{path}: not a readable price book ({exc.__class__.__name__})") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("regions"), dict):
            raise PriceBookError(f"{path}: not an {SCHEMA} price book (write one with `emlops prices refresh`)")
        for region, content in data["regions"].items():
            for key, entry in (content or {}).get("prices", {}).items():
                try:
                    Decimal(entry["usd"])
                except (KeyError, TypeError, InvalidOperation):
                    raise PriceBookError(f"{path}: regions.{region}.prices.{key}: not a price in USD") from None
        return cls(Path(path), data)


def write(book: dict[str, Any], path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(book, indent=2, sort_keys=False) + "\n", encoding="utf-8")
