"""S3 locations the components are given (model artifacts, baselines, ground truth, captured data, prefixes).

Every S3 URI or key prefix a setting or context holds is checked here, once, by S3's and IAM's rules: the
components turn these values into IAM resource ARNs (`arn:aws:s3:::<bucket>/<key>*`), so a `*`, `?` or `${`
in a key would be a wildcard or a policy variable in a grant, and a `..` segment names another prefix than
the one it seems to. Settings use the `S3ObjectUri` and `S3PrefixUri` types; contexts call `parse_s3`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# The shapes editors check (the JSON Schema's patterns); `check_s3_uri` applies S3's and IAM's full rules.
S3_OBJECT = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S*[^/\s]$"
S3_PREFIX = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S*$"
_S3_URI = re.compile(r"^s3://(?P<bucket>[^/]*)(/(?P<key>.*))?$", re.DOTALL)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# S3's general purpose bucket naming rules: prefixes and suffixes reserved for other bucket kinds
# (access point aliases, Object Lambda, Multi-Region Access Points, directory and table buckets).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_RULE = ("S3 bucket names are 3-63 lowercase letters, digits, '.' and '-', starting and ending with a "
               "letter or digit")
# IAM reads these in a resource ARN: wildcards, and the start of a policy variable.
_IAM_SPECIAL = ("*", "?", "${")
MAX_KEY_BYTES = 1024


def bucket_name_problem(bucket: str) -> str | None:
    """Why S3 refuses `bucket` as a general purpose bucket name, or None."""
    if not _BUCKET.match(bucket):
        return BUCKET_RULE
    if ".." in bucket:
        return "S3 bucket names have no two adjacent periods"
    try:
        ipaddress.IPv4Address(bucket)
        return "S3 bucket names are not IP addresses"
    except ValueError:
        pass
    for prefix in _RESERVED_PREFIXES:
        if bucket.startswith(prefix):
            return f"S3 reserves bucket names starting with {prefix!r}"
    for suffix in _RESERVED_SUFFIXES:
        if bucket.endswith(suffix):
            return f"S3 reserves bucket names ending with {suffix!r}"
    return None


def key_problem(key: str) -> str | None:
    """Why `key` (an object key or a key prefix) cannot be used in the platform's grants, or None."""
    for special in _IAM_SPECIAL:
        if special in key:
            return (f"has {special!r} in its key: IAM reads '*' and '?' as wildcards and '${{' as a policy "
                    "variable in the grants made from it")
    if any(ord(c) < 32 or ord(c) == 127 or c.isspace() for c in key):
        return "has whitespace or a control character in its key"
    segments = key.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "has a '.' or '..' segment in its key; give the plain path"
    if key.startswith("/") or "//" in key:
        return "has an empty segment ('//' or a leading '/') in its key"
    if len(key.encode()) > MAX_KEY_BYTES:
        return f"has a key of {len(key.encode())} bytes; S3 allows {MAX_KEY_BYTES}"
    return None


def check_s3_uri(uri: str, *, prefix: bool = False) -> tuple[str, str]:
    """(bucket, key) of `uri`, an object (`s3://<bucket>/<key>`) or, with `prefix`, a prefix
    (`s3://<bucket>/[<prefix>]`); ValueError in one line saying which rule it breaks."""
    match = _S3_URI.match(uri) if isinstance(uri, str) else None
    kind = "s3://<bucket>[/<prefix>] URI" if prefix else "s3://<bucket>/<key> object URI"
    if not match or match["key"] is None:
        raise ValueError(f"{uri!r} is not an {kind}")
    bucket, key = match["bucket"], match["key"]
    problem = bucket_name_problem(bucket)
    if problem:
        raise ValueError(f"{uri!r} names bucket {bucket!r}: {problem}")
    problem = key_problem(key)
    if problem:
        raise ValueError(f"{uri!r} {problem}")
    if not prefix and (not key or key.endswith("/")):
        raise ValueError(f"{uri!r} is not an {kind}")
    return bucket, key


def check_key_prefix(value: str) -> str:
    """A key prefix inside a bucket the platform owns (`models/`, `datasets/churn/`): a plain path ending in '/'."""
    problem = key_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    if not value.endswith("/"):
        raise ValueError(f"{value!r} must end with '/' (a prefix, e.g. 'datasets/')")
    return value


def parse_s3(uri: str, label: str, *, prefix: bool = False) -> tuple[str, str]:
    """(bucket, key) of an s3:// URI a context holds; objects need a key, prefixes may be a whole bucket."""
    try:
        return check_s3_uri(uri, prefix=prefix)
    except ValueError as error:
        raise ValueError(f"{label} {error}") from None


def _object(value: str) -> str:
    check_s3_uri(value)
    return value


def _prefix(value: str) -> str:
    check_s3_uri(value, prefix=True)
    return value


S3ObjectUri = Annotated[str, StringConstraints(pattern=S3_OBJECT), AfterValidator(_object)]
"""A setting naming one S3 object, `s3://<bucket>/<key>`, by S3's and IAM's rules."""
S3PrefixUri = Annotated[str, StringConstraints(pattern=S3_PREFIX), AfterValidator(_prefix)]
"""A setting naming an S3 prefix (or a whole bucket), `s3://<bucket>/[<prefix>]`, by S3's and IAM's rules."""
