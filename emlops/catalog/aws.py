"""AWS facts: botocore's offline data (partitions, regions, API enums) and SageMaker's instance storage.

botocore ships AWS's own endpoint and service-model definitions, so the config schema, the
components and the offline mocks can reject a bad region or enum value without a network call.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional


# Instance families with local NVMe storage: their volumes are encrypted by the instance hardware and
# SageMaker rejects a KmsKeyId for them (CreateEndpointConfig, KmsKeyId).
_LOCAL_STORAGE = re.compile(r"^ml\.([a-z]+[0-9]+[a-z]*d[a-z]*|g4dn|g5|g6|g6e|p3dn|p4d|p4de|p5|p5e|p5en|trn1|trn1n|inf2)\.")

# What CloudWatch Logs accepts for retention_in_days (botocore models it as a plain integer).
LOG_RETENTION_DAYS: tuple[int, ...] = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                                       2192, 2557, 2922, 3288, 3653)


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
    import botocore.loaders
    import botocore.regions

    # A throw-away loader: botocore's endpoint data is ~7 MB as Python objects, and only this
    # tuple of names is needed afterwards (previews of large stacks count every megabyte).
    resolver = botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))
    prefix = _service_facts(service).endpoint_prefix  # endpoints are keyed by it (sagemaker: api.sagemaker)
    regions: list[str] = []
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        regions.extend(resolver.get_available_endpoints(prefix, partition))
    return tuple(sorted(regions))


@dataclass(frozen=True)
class ShapeLimits:
    """What an API's string, list, map or integer shape allows: length (items, for a list; entries, for a map;
    the value, for an integer), pattern, list member shape, map key and value shapes."""

    min: Optional[int] = None
    max: Optional[int] = None
    pattern: Optional[str] = None
    member: Optional[str] = None
    key: Optional[str] = None
    value: Optional[str] = None


@dataclass(frozen=True)
class _ServiceFacts:
    endpoint_prefix: str
    enums: dict[str, tuple[str, ...]]  # enum shape name -> allowed values
    limits: dict[str, ShapeLimits]  # string, list, map and integer shape name -> what it allows


@functools.lru_cache(maxsize=None)
def _service_facts(service: str) -> _ServiceFacts:
    """What emlops needs of an AWS API's model. The model itself (SageMaker's is ~16 MB as Python
    objects) is read by a throw-away loader and not kept."""
    import botocore.loaders

    model = botocore.loaders.create_loader().load_service_model(service, "service-2")
    return _ServiceFacts(
        endpoint_prefix=model["metadata"].get("endpointPrefix", service),
        enums={name: tuple(shape["enum"]) for name, shape in model["shapes"].items() if "enum" in shape},
        limits={name: ShapeLimits(shape.get("min"), shape.get("max"), shape.get("pattern"),
                                  shape["member"]["shape"] if shape["type"] == "list" else None,
                                  *((shape["key"]["shape"], shape["value"]["shape"]) if shape["type"] == "map" else ()))
                for name, shape in model["shapes"].items()
                if shape["type"] in ("string", "list", "map", "integer") and "enum" not in shape},
    )


def api_enum(service: str, shape: str) -> tuple[str, ...]:
    """The allowed values of an enum shape in an AWS API, from botocore's service model."""
    enums = _service_facts(service).enums
    if shape not in enums:
        raise KeyError(f"botocore's {service} model has no enum shape {shape!r}")
    return enums[shape]


def api_limits(service: str, shape: str) -> ShapeLimits:
    """What a string, list, map or integer shape of an AWS API allows (lengths, bounds, pattern, member, key and
    value shapes), from botocore's model."""
    limits = _service_facts(service).limits
    if shape not in limits:
        raise KeyError(f"botocore's {service} model has no string, list, map or integer shape {shape!r}")
    return limits[shape]


# SageMaker instance families with NVIDIA GPUs: g4dn, g5, g6, g6e, g7, g7e, p3, p4d, p5, p6-b200, ...
_GPU = re.compile(r"^ml\.(g[0-9]+[a-z]*|p[0-9]+[a-z]*(-[a-z0-9]+)?)\.")


def has_gpu(instance_type: str) -> bool:
    """The SageMaker instance type (`ml.g5.xlarge`, `ml.p4d.24xlarge`) has NVIDIA GPUs."""
    return bool(_GPU.match(instance_type))


def has_local_storage(instance_type: str) -> bool:
    """The SageMaker instance type (`ml.g5.xlarge`) has local NVMe storage, so it takes no volume KMS key."""
    return bool(_LOCAL_STORAGE.match(instance_type))


def zone_id_prefix(region: str) -> str:
    """AWS's short form of a region used in AZ ids: `eu-west-1` -> `euw1`, `ap-southeast-2` -> `apse2`."""
    parts = region.split("-")
    directions = {"north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
                  "northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}
    middle = "".join(directions.get(p, p[:1]) for p in parts[1:-1])
    return f"{parts[0]}{middle}{parts[-1]}"
