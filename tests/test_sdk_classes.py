"""The provider SDK class of a resource type token (emlops/catalog/sdk.py)."""

from __future__ import annotations

import pulumi_aws as aws
import pulumi_aws_native as aws_native
import pulumi_kubernetes as k8s
import pytest

from emlops.catalog.sdk import sdk_class


@pytest.mark.parametrize(("token", "expected"), [
    ("aws:s3/bucket:Bucket", aws.s3.Bucket),
    ("aws:lambda/function:Function", aws.lambda_.Function),  # a module named like a Python keyword
    ("aws-native:sagemaker:ModelCard", aws_native.sagemaker.ModelCard),
    ("kubernetes:core/v1:Namespace", k8s.core.v1.Namespace),
    ("aws:s3/bucket:NoSuchClass", None),
    ("aws:nosuchmodule/thing:Thing", None),
    ("pulumi:providers:aws", None),
    ("emlops:index:MlPlatform", None),
])
def test_a_token_names_its_sdk_class(token, expected):
    assert sdk_class(token) is expected


def test_the_arguments_class_of_a_token():
    assert sdk_class("aws:s3/bucket:Bucket", "Args") is aws.s3.BucketArgs
    assert sdk_class("aws-native:sagemaker:ModelCard", "Args") is aws_native.sagemaker.ModelCardArgs
