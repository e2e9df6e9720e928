"""Reaching an MLflow tracking server without hanging on one that is not there.

MLflow's own client waits 120 s a request and retries 7 times with backoff, so a dead server holds a command for
minutes. The commands that talk to a server the operator names (`emlops preview --mlflow-uri`, `emlops promote`)
first probe it (`unreachable`, a few seconds at most) and lower the client's waits while they use it
(`client_limits`). Local stores (`sqlite:///...`, a folder) are not servers: nothing to reach.
"""

from __future__ import annotations

import contextlib
import os
import socket
import urllib.error
import urllib.request
from typing import Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

PROBE_TIMEOUT = 5.0  # seconds the server has to answer the probe
CLIENT_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}


def unreachable(uri: str, timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """Why the MLflow server at an http(s) `uri` cannot be reached (`connection refused`, `no answer within 5 s`),
    or None when it answers within `timeout` seconds; any HTTP answer will do (its /health route, or an error
    page). Other URIs (a local `sqlite:///` store, a file store) are not servers: None."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return None
    health = urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(health, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # the server answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return f"no answer within {timeout:g} s"
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused"
        return " ".join(str(reason).split()) or type(reason).__name__


def without_credentials(uri: str) -> str:
    """`uri` as it may be shown: without a user or password in it."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))


@contextlib.contextmanager
def client_limits(uri: Optional[str]) -> Iterator[None]:
    """Shorter waits for MLflow's own client while a command uses the server at `uri` (unless the user set them):
    a server that stops answering midway fails in seconds, not minutes. Nothing changes without a `uri`."""
    added = [name for name in CLIENT_LIMITS if uri is not None and name not in os.environ]
    for name in added:
        os.environ[name] = CLIENT_LIMITS[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def global_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI (`MLFLOW_TRACKING_URI`) set to a SageMaker tracking server ARN `uri` for the
    block. The sagemaker-mlflow plugin, through which MLflow reaches such a server, signs each request for the
    global tracking URI rather than the client's: a client of an ARN fails inside the plugin (IndexError) unless
    the two are the same. Other URIs change nothing."""
    if not uri.startswith("arn:"):
        yield
        return
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
