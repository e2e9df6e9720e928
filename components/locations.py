"""S3 locations the components are given (model artifacts, baselines, ground truth, captured data)."""

from __future__ import annotations

import re

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>\S*)$")


def parse_s3(uri: str, label: str, *, prefix: bool = False) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI; objects need a key, prefixes may be a whole bucket."""
    match = _S3_URI.match(uri)
    if not match or (not prefix and (not match["key"] or match["key"].endswith("/"))):
        kind = "s3://<bucket>[/<prefix>] URI" if prefix else "s3://<bucket>/<key> object URI"
        raise ValueError(f"{label} {uri!r} is not an {kind}")
    return match["bucket"], match["key"]

