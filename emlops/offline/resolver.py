"""How the offline preview resolves model sources: no AWS, maybe a local MLflow registry.

MLflow references resolve against `--mlflow-uri` when given (the same code path `pulumi up` uses);
everything that needs AWS, or an absent tracking server, is unknown, and the preview shows it as
`[unknown: <what it depends on>]` — the offline engine's spelling of a value only a deploy knows; a
pinned package ARN keeps its ARN; S3 resolves as itself. Nothing is invented: a preview that shows a
guessed artifact would review a deploy that won't happen.
"""

from __future__ import annotations

from typing import Optional

from emlops.program.sources import (MlflowRegistry, ModelSource, ResolvedModel, check_package_arn, parse_mlflow,
                                    resolve_s3)


def unknown(what: str) -> str:
    """How the offline preview shows a value only a deploy knows."""
    return f"[unknown: {what}]"


def unknown_model(source: ModelSource, package: bool = False) -> ResolvedModel:
    ref = source.reference
    arn = source.model_package_arn or (unknown(ref) if package else None)
    baselines = (unknown(f"{ref} drift-check statistics"), unknown(f"{ref} drift-check constraints"))
    return ResolvedModel(ref, unknown(ref), compressed=False, model_package_arn=arn, known=False,
                         drift_baselines=baselines if package else None,
                         image_uri=unknown(f"{ref} image") if package else None)


class OfflineResolver:
    """What `emlops preview` uses (no AWS, maybe a local MLflow): MLflow refs resolve against
    `mlflow_uri` when given (same code path as LiveResolver); everything that needs AWS or an absent
    tracking server becomes an explicit unknown; a pinned ARN keeps its ARN; S3 resolves as itself.
    Never invent a value: a preview that shows a guessed artifact would review a deploy that won't happen."""

    def __init__(self, mlflow_uri: Optional[str] = None) -> None:
        self._mlflow = MlflowRegistry(mlflow_uri) if mlflow_uri else None

    def resolve(self, model: str, source: ModelSource) -> ResolvedModel:
        if source.s3_uri is not None:
            return resolve_s3(model, source)
        if source.mlflow is not None:
            if self._mlflow is not None:
                return self._mlflow.resolve(model, source)
            parse_mlflow(model, source.mlflow)  # a malformed reference is wrong offline too
            return unknown_model(source)
        if source.model_package_arn is not None:
            check_package_arn(model, source.model_package_arn)
        return unknown_model(source, package=True)
