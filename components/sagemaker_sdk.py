"""The SageMaker SDK v3 as the pipeline definitions use it: offline, without credentials, one session per region.

The SDK is built for notebooks with credentials; four of its habits are switched off here so a definition is
built with no network call and no credentials:
- importing `sagemaker.mlops` creates a boto3 client at import time, which needs a region
  (`AWS_DEFAULT_REGION` is set to the stack's region while importing and building);
- botocore looks for credentials in the EC2 instance metadata service (`AWS_EC2_METADATA_DISABLED`);
- `ModelTrainer` checks the role with IAM's policy simulator (`SAGEMAKER_VALIDATE_ROLE=false`);
- the session's default bucket is one the SDK creates if it is missing (the session here answers with the
  bucket the build names and never calls S3), and every call sends telemetry unless `TelemetryOptOut` is set
  in the SDK config.
A preview makes one `PipelineSession` per region (`pipeline_session`) for every definition it builds
(retraining_definition.py, batch_transform_definition.py): making a session reads the SDK config and the
service models, which a second pipeline need not pay for again.
In the `emlops` command's own preview process, the builds run in one background process
(`components/build_worker.py`), whose initializer is `import_sdk`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}
SDK_PACKAGES = ("sagemaker-core", "sagemaker-mlops", "sagemaker-train", "sagemaker-serve", "boto3", "botocore")
"""The distributions that build a definition: a new version of any of them is a new build."""
SOURCE = Path(__file__)
"""This module: how emlops drives the SDK is part of every definition's cache key (built_cache.py)."""


@contextlib.contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Environment and logging the SDK needs to build a definition without credentials or network."""
    # The import-time client would look for credentials in the EC2 instance metadata service (IMDS).
    wanted = {"AWS_DEFAULT_REGION": region, "SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    # The SDK's loggers set their own levels; its notices ("Running within a PipelineSession", "Popping
    # out 'ProcessingJobName'", "Applied value from config key") would be printed into every preview.
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), _schema_checked_once(), _one_botocore_loader():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's own modules moving within it
            yield
    finally:
        logging.disable(disabled)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def import_sdk(region: str) -> None:
    """Import what the definitions' builds use (the build worker's initializer: its first build then pays
    only for itself), inside `offline_sdk(region)`, as a first build in `region` would import it (the SDK
    reads the region and makes a boto3 client at import time)."""
    import importlib

    with offline_sdk(region):
        for module in ("sagemaker.core.workflow.pipeline_context", "sagemaker.core.processing",
                       "sagemaker.core.transformer", "sagemaker.mlops.workflow", "sagemaker.train.model_trainer",
                       "sagemaker.serve.model_builder", "sagemaker.core.lambda_helper"):
            importlib.import_module(module)


_SESSIONS: dict[str, Any] = {}


def pipeline_session(region: str, default_bucket: str) -> Any:
    """The process's `PipelineSession` for `region` (inside `offline_sdk`), answering `default_bucket` when the
    SDK asks for its default bucket. Builds run one at a time (Pulumi's applies run on one thread)."""
    if region not in _SESSIONS:
        import boto3
        from sagemaker.core.workflow.pipeline_context import PipelineSession

        class OfflineSession(PipelineSession):
            bucket = ""

            def default_bucket(self) -> str:  # the SDK would create `sagemaker-<region>-<account>` if missing
                return self.bucket

        # Static dummy keys: botocore signs nothing here, and no client makes a call.
        boto = boto3.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")
        _SESSIONS[region] = OfflineSession(boto_session=boto, default_bucket=default_bucket,
                                           sagemaker_config=SDK_CONFIG)
    session = _SESSIONS[region]
    session.bucket = default_bucket
    return session


_LOADERS: dict[Optional[str], object] = {}


@contextlib.contextmanager
def _one_botocore_loader() -> Iterator[None]:
    """Every botocore session the SDK makes shares one data loader, so each service model is decoded once.

    A build makes a PipelineSession and, for each processing step, a local-mode session of its own (the SDK
    instantiates `LocalSagemakerClient` only to read a method's name): every new botocore session would
    decode the same service-model JSON files again (~1.4 s per definition). The loader only reads files
    that ship with botocore, and caches what it decodes, so sharing it changes nothing but the time.
    """
    import botocore.session
    from botocore.loaders import create_loader

    def shared_loader(search_paths: Optional[str] = None):
        if search_paths not in _LOADERS:
            _LOADERS[search_paths] = create_loader(search_paths)
        return _LOADERS[search_paths]

    botocore.session.create_loader = shared_loader
    try:
        yield
    finally:
        botocore.session.create_loader = create_loader


@contextlib.contextmanager
def _schema_checked_once() -> Iterator[None]:
    """Validate the SDK config against its schema without re-checking the schema itself each time.

    The SDK calls `jsonschema.validate(config, schema)` on every config look-up (~90 per build) and when it
    makes a session, and each call first checks the 2020-12 schema itself (~0.45 s): 40 s per definition.
    One validator built once still validates every look-up.
    """
    import jsonschema
    from sagemaker.core.config.config_manager import SageMakerConfig
    from sagemaker.core.config.config_schema import SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA

    import sagemaker.core.config.config as config_module
    import sagemaker.core.helper.session_helper as session_module
    import sagemaker.core.local.local_session as local_module

    validator_class = jsonschema.validators.validator_for(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)
    validator = validator_class(SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)

    def validate(config=None) -> None:
        validator.validate(config)

    # the method, and the function as the session modules imported it (by name)
    patched = [(SageMakerConfig, "validate_sagemaker_config", staticmethod(validate))]
    patched += [(module, "validate_sagemaker_config", validate)
                for module in (config_module, session_module, local_module)]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in patched]
    for owner, name, value in patched:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)
