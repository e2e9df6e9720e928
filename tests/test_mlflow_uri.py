"""The MLflow tracking server a stack resolves `models:/` sources against: `registry.mlflow_tracking_uri` is one
SageMaker and self-hosted MLflow servers have, and `emlops preview --mlflow-uri` gives up on a server that does not
answer within seconds (tested against local sockets only: one that refuses, one that accepts and never answers)."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time

import pytest
from typer.testing import CliRunner

from emlops.offline.preview import PreviewError, check_mlflow_server
from emlops.program.mlflow_server import client_limits
from tests.conftest import edit_stack
from tests.test_stackfile_hardening import AT, preview_fails

runner = CliRunner()
URI_LINE = "mlflow_tracking_uri: https://mlflow.dev.ml.example.com"
ALLOWED = ("must be a SageMaker MLflow tracking server ARN (arn:aws:sagemaker:<region>:<account>:"
           "mlflow-tracking-server/<name>) or an https:// URL of an MLflow server")
HTTP = ("must be https:// (plain http:// lets anyone on the network path choose the model the deploy serves and read "
        "its MLflow credentials; http:// is allowed only to localhost, 127.0.0.1 or [::1])")

TRACKING_URIS = {
    "plain http to another host": ("http://mlflow.dev.ml.example.com", HTTP),
    "plain http to a private address": ("http://10.1.2.3:5000", HTTP),
    "a local database": ("sqlite:///mlflow.db", ALLOWED),
    "a database without a password": ("postgresql://db.internal/mlflow", ALLOWED),
    "a user in the URL": ("https://ml-bot@mlflow.example.com",
                          "must not hold credentials; the deploy gives them to MLflow as MLFLOW_TRACKING_TOKEN or "
                          "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD"),
    "a query": ("https://mlflow.example.com/?token=x", ALLOWED + " (no query, fragment or empty port)"),
    "a host that is no DNS name": ("https://mlflow_server", ALLOWED + " (host 'mlflow_server' is not a DNS name)"),
    "a port out of range": ("https://mlflow.example.com:70000", ALLOWED),
    "a tab inside": ("https://mlflow.exa\tmple.com", ALLOWED + " (no spaces or control characters)"),
    "another SageMaker ARN": ("arn:aws:sagemaker:eu-west-1:111111111111:model/churn", ALLOWED),
    "a tracking server ARN with a bad name": (
        "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/dev_server", ALLOWED),
}


@pytest.mark.parametrize("uri, problem", TRACKING_URIS.values(), ids=TRACKING_URIS.keys())
def test_a_tracking_uri_no_mlflow_server_has_is_refused(project_copy, monkeypatch, uri, problem):
    edit_stack(project_copy, "dev", URI_LINE, f"mlflow_tracking_uri: {uri!r}".replace("'", '"').replace("\t", "\\t"))
    monkeypatch.chdir(project_copy)
    assert preview_fails(project_copy) == f"{AT}.registry.mlflow_tracking_uri: {problem}, got {uri!r}"


@pytest.mark.parametrize("uri", [
    "https://mlflow.example.com:8443/mlflow",
    "http://localhost:5000",
    "http://127.0.0.1:5000",
    "http://[::1]:5000/",
    "arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/dev-tracking",
    "arn:aws-cn:sagemaker:cn-north-1:111111111111:mlflow-app/app-0123abcd",
])
def test_sagemaker_and_self_hosted_tracking_servers_are_accepted(uri):
    from emlops.program.config_models import RegistryConfig

    assert RegistryConfig(mlflow_tracking_uri=uri).mlflow_tracking_uri == uri


def test_the_arn_patterns_are_botocores():
    import botocore.session

    from emlops.program.config_models import SAGEMAKER_ARN_PREFIX, TRACKING_SERVER_NAME

    shapes = botocore.session.get_session().get_service_model("sagemaker")
    pattern = {name: shapes.shape_for(name).metadata["pattern"]
               for name in ("TrackingServerArn", "TrackingServerName", "MlflowAppArn")}
    assert pattern == {"TrackingServerArn": SAGEMAKER_ARN_PREFIX + "mlflow-tracking-server/.*",
                       "TrackingServerName": TRACKING_SERVER_NAME,
                       "MlflowAppArn": SAGEMAKER_ARN_PREFIX + "mlflow-app/.*"}


# -- --mlflow-uri: fail fast on a server that is not there

@pytest.fixture
def refusing_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port():
    """A local port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_refused_mlflow_uri_fails_at_once(project_copy, monkeypatch, refusing_port):
    monkeypatch.chdir(project_copy)
    started = time.monotonic()
    assert preview_fails(project_copy, "dev", "--mlflow-uri", f"http://127.0.0.1:{refusing_port}") == (
        f"--mlflow-uri http://127.0.0.1:{refusing_port}: cannot reach the MLflow server (connection refused); start "
        "it, or preview without --mlflow-uri (models:/ sources then show as unknown)")
    assert time.monotonic() - started < 10


def test_a_silent_mlflow_uri_fails_after_its_timeout(project_copy, monkeypatch, silent_port):
    """The issue's dead URI took 249 s (MLflow's 120 s timeout, retried); the preview waits 5 s (here 1 s, so
    that the test does not sleep)."""
    import emlops.offline.preview

    assert emlops.offline.preview.MLFLOW_TIMEOUT == 5.0
    monkeypatch.setattr(emlops.offline.preview, "MLFLOW_TIMEOUT", 1.0)
    monkeypatch.chdir(project_copy)
    started = time.monotonic()
    assert preview_fails(project_copy, "dev", "--mlflow-uri", f"http://ci:pw@127.0.0.1:{silent_port}/") == (
        f"--mlflow-uri http://127.0.0.1:{silent_port}/: cannot reach the MLflow server (no answer within 1 s); start "
        "it, or preview without --mlflow-uri (models:/ sources then show as unknown)")
    assert 0.9 < time.monotonic() - started < 10


@pytest.fixture
def answering_server():
    """A local HTTP server that answers every request (404 but for /health)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/mlflow/health" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_server_that_answers_passes_the_check(answering_server):
    check_mlflow_server(f"http://127.0.0.1:{answering_server}/mlflow")
    check_mlflow_server(f"http://127.0.0.1:{answering_server}/")  # an error page is an answer too


def test_a_local_store_is_not_a_server_to_reach(tmp_path):
    check_mlflow_server(f"sqlite:///{tmp_path}/mlflow.db")


def test_the_probe_uses_the_timeout_it_is_given(silent_port):
    started = time.monotonic()
    with pytest.raises(PreviewError, match=r"no answer within 0\.5 s"):
        check_mlflow_server(f"http://127.0.0.1:{silent_port}", timeout=0.5)
    assert time.monotonic() - started < 3


def test_mlflows_own_client_waits_less_during_a_preview(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")  # the user's own choice stays
    with client_limits("http://127.0.0.1:5000"):
        assert (os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"], os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]) == ("30", "3")
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
    with client_limits(None):
        assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
