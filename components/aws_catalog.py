"""AWS facts read from botocore's offline data (partitions, regions, API enums).

botocore ships AWS's own endpoint and service-model definitions, so the config schema, the
components and the offline mocks can reject a bad region or enum value without a network call.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Partition:
    """An AWS partition: its id (`aws`, `aws-cn`, ...) and DNS suffix."""

    name: str
    dns_suffix: str


@functools.lru_cache(maxsize=1)
def _partitions() -> list[dict]:
    import botocore.loaders

    return botocore.loaders.create_loader().load_data("partitions")["partitions"]


def partition_of(region: str) -> Partition:
    """The partition a region belongs to, by AWS's own region patterns."""
    for entry in _partitions():
        if region in entry.get("regions", {}) or re.match(entry["regionRegex"], region):
            return Partition(entry["id"], entry["outputs"]["dnsSuffix"])
    raise ValueError(f"{region!r} is not in any AWS partition")


@functools.lru_cache(maxsize=8)
def regions_with(service: str) -> tuple[str, ...]:
    """Regions where `service` has an endpoint, across the commercial, China and GovCloud partitions."""
    regions: list[str] = []
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        regions.extend(_session().get_available_regions(service, partition_name=partition))
    return tuple(sorted(regions))


@functools.lru_cache(maxsize=1)
def _session():
    import botocore.session

    return botocore.session.get_session()


@functools.lru_cache(maxsize=None)
def api_enum(service: str, shape: str) -> tuple[str, ...]:
    """The allowed values of an enum shape in an AWS API, from botocore's service model (loaded once)."""
    return tuple(_session().get_service_model(service).shape_for(shape).enum)


def zone_id_prefix(region: str) -> str:
    """AWS's short form of a region used in AZ ids: `eu-west-1` -> `euw1`, `ap-southeast-2` -> `apse2`."""
    parts = region.split("-")
    directions = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
                  "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}
    middle = "".join(directions.get(p, p[:1]) for p in parts[1:-1])
    return f"{parts[0]}{middle}{parts[-1]}"
