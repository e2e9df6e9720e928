"""The malformed-stack corpus: stack files with one defect each, every one refused with one line.

Each case is a shipped stack file (`stacks/Pulumi.<stack>.yaml`) with exactly one defect, made by one text
replacement (or, where the defect is the whole file, the file's text). `emlops preview` of it must end in
exactly one stderr line, exit code 2, naming the stack file and the key, with nothing on stdout and no
plan written. The expected line is pinned in full: a message may only change by getting better, and the
corpus shows it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NamedTuple, Optional

import pytest
from typer.testing import CliRunner

from emlops.cli import app
from tests.conftest import ROOT


class Case(NamedTuple):
    id: str
    stack: str
    old: Optional[str]
    """Text of the shipped stack file that the defect replaces (exactly one occurrence); None: the whole file."""
    new: str
    error: str
    """The one line after `stacks/Pulumi.<stack>.yaml: `."""


CORPUS: list[Case] = [
    Case('tags-owner-missing', 'dev', '      owner: ml-platform@example.com\n',
         '',
         'emlops:platform.tags.owner: field required'),
    Case('top-level-key-misspelt', 'dev', '    region: eu-west-1\n',
         '    regoin: eu-west-1\n',
         "emlops:platform.regoin: unknown key; did you mean 'region'? allowed keys: environment, production, account_id, region, deploy_role_arn, tags, permission_boundary_arn, kms, storage, network, registry, feature_groups, training, models, personas, guardrails, alerts"),
    Case('account-id-unquoted', 'dev', 'account_id: "111111111111"',
         'account_id: 111111111111',
         "emlops:platform.account_id: must be a quoted string (YAML reads 111111111111 unquoted as a number; write '111111111111')"),
    Case('account-id-not-12-digits', 'dev', 'account_id: "111111111111"',
         'account_id: "11111111111x"',
         "emlops:platform.account_id: must be a 12-digit AWS account id, e.g. '123456789012', got '11111111111x'"),
    Case('environment-uppercase', 'dev', 'environment: dev',
         'environment: Dev',
         "emlops:platform.environment: must be 2-16 lowercase letters, digits or '-', starting with a letter, got 'Dev'"),
    Case('region-unknown', 'dev', '    region: eu-west-1\n',
         '    region: eu-west-9\n',
         "emlops:platform.region: 'eu-west-9' is not a region with SageMaker; did you mean 'eu-west-3'? allowed: af-south-1, ap-east-1, ap-east-2, ap-northeast-1, ap-northeast-2, ap-northeast-3, ap-south-1, ap-south-2, ap-southeast-1, ap-southeast-2, ap-southeast-3, ap-southeast-4, ap-southeast-5, ap-southeast-6, ap-southeast-7, ca-central-1, ca-west-1, cn-north-1, cn-northwest-1, eu-central-1, eu-central-2, eu-north-1, eu-south-1, eu-south-2, eu-west-1, eu-west-2, eu-west-3, il-central-1, me-central-1, me-south-1, mx-central-1, sa-east-1, us-east-1, us-east-2, us-gov-east-1, us-gov-west-1, us-west-1, us-west-2"),
    Case('deploy-role-other-account', 'dev', 'role_arn: arn:aws:iam::111111111111:role/emlops-deploy',
         'role_arn: arn:aws:iam::999999999999:role/emlops-deploy',
         "emlops:platform.deploy_role_arn: is in account '999999999999' but the stack deploys into '111111111111'; the provider assumes a role in the stack's own account"),
    Case('deploy-role-not-an-arn', 'dev', 'role_arn: arn:aws:iam::111111111111:role/emlops-deploy',
         'role_arn: emlops-deploy',
         "emlops:platform.deploy_role_arn: must be an IAM role ARN, e.g. 'arn:aws:iam::123456789012:role/emlops-deploy', got 'emlops-deploy'"),
    Case('data-classification-unknown', 'dev', 'data-classification: internal',
         'data-classification: secret',
         "emlops:platform.tags.data-classification: must be 'public', 'internal', 'confidential' or 'restricted', got 'secret'"),
    Case('tag-key-aws-prefix', 'dev', '      data-classification: internal\n',
         '      data-classification: internal\n      aws:team: ml\n',
         "emlops:platform.tags: tag key 'aws:team' is not allowed: 1-128 letters, digits, spaces or _.:/=+-@, not starting with 'aws:'"),
    Case('kms-window-too-short', 'dev', 'deletion_window_days: 7',
         'deletion_window_days: 5',
         'emlops:platform.kms.deletion_window_days: must be greater than or equal to 7, got 5'),
    Case('kms-window-not-a-number', 'dev', 'deletion_window_days: 7',
         'deletion_window_days: seven',
         "emlops:platform.kms.deletion_window_days: must be a whole number, got 'seven'"),
    Case('storage-retention-zero', 'dev', 'noncurrent_version_retention_days: 14',
         'noncurrent_version_retention_days: 0',
         'emlops:platform.storage.noncurrent_version_retention_days: must be greater than or equal to 1, got 0'),
    Case('storage-key-unknown', 'dev', '      access_log_retention_days: 90\n',
         '      access_log_retention_days: 90\n      versioning: false\n',
         'emlops:platform.storage.versioning: unknown key; allowed keys: noncurrent_version_retention_days, access_log_retention_days'),
    Case('network-cidr-invalid', 'dev', 'cidr_block: 10.10.0.0/16',
         'cidr_block: 10.10.0.0/33',
         "emlops:platform.network.managed.cidr_block: '10.10.0.0/33' must be an IPv4 CIDR block like '10.0.0.0/16'"),
    Case('network-az-count-too-high', 'dev', 'az_count: 2',
         'az_count: 7',
         'emlops:platform.network.managed.az_count: must be less than or equal to 6, got 7'),
    Case('network-flow-log-retention-not-cloudwatch', 'dev', 'flow_log_retention_days: 30',
         'flow_log_retention_days: 31',
         'emlops:platform.network.managed.flow_log_retention_days: 31 is not a CloudWatch Logs retention; allowed: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653'),
    Case('network-managed-and-own-vpc', 'dev', '      managed:\n',
         '      vpc_id: vpc-0123456789abcdef0\n      managed:\n',
         'emlops:platform.network.managed: give either managed (a VPC emlops builds) or vpc_id and private_subnet_ids (your own VPC), not both; drop vpc_id or managed'),
    Case('personas-session-too-long', 'dev', 'max_session_hours: 8',
         'max_session_hours: 13',
         'emlops:platform.personas.max_session_hours: must be less than or equal to 12, got 13'),
    Case('personas-session-fraction', 'dev', 'max_session_hours: 8',
         'max_session_hours: 1.5',
         'emlops:platform.personas.max_session_hours: must be a whole number, got 1.5'),
    Case('mlflow-kind-unknown', 'dev', '        kind: sagemaker\n        size: Small',
         '        kind: ec2\n        size: Small',
         "emlops:platform.registry.mlflow.kind: must be 'sagemaker', 'kubernetes' or 'none', got 'ec2'"),
    Case('mlflow-size-unknown', 'dev', 'size: Small',
         'size: XLarge',
         "emlops:platform.registry.mlflow.size: must be 'Small', 'Medium' or 'Large', got 'XLarge'"),
    Case('feature-type-unknown', 'dev', '{name: tenure_months, type: Integral}',
         '{name: tenure_months, type: Double}',
         "emlops:platform.feature_groups[0].features[2].type: must be 'Integral', 'Fractional' or 'String', got 'Double'"),
    Case('feature-record-identifier-not-a-feature', 'dev', 'record_identifier: customer_id',
         'record_identifier: customer',
         "emlops:platform.feature_groups[0]: feature group 'customers': record_identifier 'customer' is not one of its features; declare it in features"),
    Case('feature-event-time-integral', 'dev', 'event_time_feature: event_time',
         'event_time_feature: tenure_months',
         "emlops:platform.feature_groups[0]: feature group 'customers': event_time_feature 'tenure_months' is Integral; it must be Fractional (Unix seconds) or String (ISO-8601)"),
    Case('feature-repeated', 'dev', '          - {name: contract_type, type: String}\n',
         '          - {name: contract_type, type: String}\n          - {name: contract_type, type: String}\n',
         "emlops:platform.feature_groups[0]: feature group 'customers': feature names must be unique (ignoring case); repeated: contract_type"),
    Case('feature-group-name-invalid', 'dev', '      - name: customers\n',
         '      - name: customers_2026!\n',
         "emlops:platform.feature_groups[0].name: feature group name 'customers_2026!' must be 1-64 ASCII letters, digits, '-' or '_', starting and ending with a letter or digit"),
    Case('feature-group-without-features', 'dev', '        features:\n          - {name: customer_id, type: String}\n          - {name: event_time, type: Fractional}\n          - {name: tenure_months, type: Integral}\n          - {name: monthly_charges, type: Fractional}\n          - {name: contract_type, type: String}\n',
         '        features: []\n',
         "emlops:platform.feature_groups[0]: feature group 'customers' needs at least one feature"),
    Case('training-kind-unknown', 'dev', '      kind: sagemaker\n      sagemaker:',
         '      kind: gpu\n      sagemaker:',
         "emlops:platform.training.kind: must be 'sagemaker' or 'eks', got 'gpu'"),
    Case('training-keep-images-zero', 'dev', 'keep_images: 10',
         'keep_images: 0',
         'emlops:platform.training.sagemaker.keep_images: must be greater than or equal to 1, got 0'),
    Case('model-name-repeated', 'dev', '      - name: fraud\n',
         '      - name: churn\n',
         "emlops:platform.models[1].name: model name 'churn' is used twice; names must be unique"),
    Case('model-name-invalid', 'dev', '      - name: fraud\n',
         '      - name: Fraud_1\n',
         "emlops:platform.models[1].name: must be lowercase letters and digits, single '-' between, got 'Fraud_1'"),
    Case('model-two-sources', 'dev', '          mlflow: models:/churn@champion\n',
         '          mlflow: models:/churn@champion\n          s3_uri: s3://acme-ml-dev-models/churn/model.tar.gz\n',
         'emlops:platform.models[0].source: give exactly one of mlflow, model_package_group, model_package_arn, s3_uri (got mlflow, s3_uri)'),
    Case('model-mlflow-reference-without-alias', 'dev', 'mlflow: models:/churn@champion',
         'mlflow: models:/churn',
         "emlops:platform.models[0].source.mlflow: must be 'models:/<name>@<alias>' or 'models:/<name>/<version>', got 'models:/churn'"),
    Case('model-s3-uri-not-s3', 'dev', 's3_uri: s3://acme-ml-dev-models/fraud/2026-11-20/model.tar.gz',
         's3_uri: https://acme-ml-dev-models/fraud/model.tar.gz',
         "emlops:platform.models[1].source.s3_uri: must be s3://<bucket>/<key>.tar.gz or an S3 prefix ending in '/', got 'https://acme-ml-dev-models/fraud/model.tar.gz'"),
    Case('serverless-memory-not-a-multiple', 'dev', 'memory_mb: 2048',
         'memory_mb: 2000',
         'emlops:platform.models[0].serverless.memory_mb: must be 1024, 2048, 3072, 4096, 5120 or 6144, got 2000'),
    Case('serverless-concurrency-zero', 'dev', 'max_concurrency: 5',
         'max_concurrency: 0',
         'emlops:platform.models[0].serverless.max_concurrency: must be greater than or equal to 1, got 0'),
    Case('variant-instance-type-misspelt', 'dev', 'instance_type: ml.m5.large',
         'instance_type: ml.m5.larg',
         "emlops:platform.models[1].variants[0].instance_type: 'ml.m5.larg' is not a SageMaker hosting instance type; did you mean 'ml.m5.large'? see ProductionVariantInstanceType in the SageMaker API"),
    Case('variant-instance-count-zero', 'dev', 'initial_instance_count: 1',
         'initial_instance_count: 0',
         'emlops:platform.models[1].variants[0].initial_instance_count: must be greater than or equal to 1, got 0'),
    Case('image-framework-unknown', 'dev', 'framework: xgboost',
         'framework: xgbooost',
         "emlops:platform.models[1].image.framework: must be 'xgboost', 'sklearn', 'pytorch', 'tensorflow' or 'huggingface', got 'xgbooost'"),
    Case('image-framework-version-unknown', 'dev', 'framework_version: "1.7-1"',
         'framework_version: "0.1"',
         'emlops:platform.models[1].image: no SageMaker xgboost 0.1 inference image in eu-west-1: Unsupported xgboost version: 0.1. Supported xgboost version(s): 1, 0.90-1, 0.90-2, 1.0-1, 1.2-1, 1.2-2, 1.3-1, 1.5-1, 1.7-1, 3.0-5, 3.2-0, latest.'),
    Case('image-uri-not-ecr', 'dev', 'uri: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2',
         'uri: docker.io/mlflow/mlflow:latest',
         "emlops:platform.models[0].image.uri: must be an ECR image URI, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>, got 'docker.io/mlflow/mlflow:latest'"),
    Case('image-of-another-stacks-account', 'dev', 'uri: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2',
         'uri: 333333333333.dkr.ecr.eu-west-1.amazonaws.com/mlflow-pyfunc:3.17.2',
         "emlops:platform.models[0].image.uri: '333333333333' is the account of stack 'prod' (environment 'prod'); a stack references only its own account and shared-services accounts (environment 'shared')"),
    Case('mlflow-source-without-tracking-uri', 'dev', '      mlflow_tracking_uri: https://mlflow.dev.ml.example.com\n',
         '',
         'emlops:platform.models[0].source.mlflow: needs registry.mlflow_tracking_uri to resolve the reference'),
    Case('model-name-too-long-for-environment', 'dev', '      - name: fraud\n',
         '      - name: fraud-detection-for-card-payments-v2-eu\n',
         "emlops:platform.models[1].name: must have at most 32 characters, got 'fraud-detection-for-card-payments-v2-eu'"),
    Case('serverless-and-variants', 'dev', '        serverless:\n          memory_mb: 2048',
         '        variants: [{name: primary, instance_type: ml.m5.large}]\n        serverless:\n          memory_mb: 2048',
         'emlops:platform.models[0]: give either variants (provisioned instances) or serverless'),
    Case('yaml-syntax-error', 'dev', '    tags:\n',
         '    tags: [\n',
         "not valid YAML: line 12: expected ',' or ']', but got ':'"),
    Case('platform-key-missing', 'dev', '  emlops:platform:\n',
         '  emlops:platforms:\n',
         "emlops:platforms: unknown key; did you mean 'emlops:platform'? allowed keys: emlops:platform, emlops:mlflowBackendStoreUri"),
    Case('platform-not-a-mapping', 'dev', None,
         'config:\n  emlops:platform: [dev]\n',
         "emlops:platform: must be a mapping of settings, got ['dev']"),
    Case('prod-zones-too-few', 'prod', 'az_count: 3',
         'az_count: 2',
         'emlops:platform.network.managed.az_count: production networks span at least 3 availability zones, got 2'),
    Case('prod-single-instance', 'prod', '            instance_type: ml.m5.xlarge\n            initial_instance_count: 2',
         '            instance_type: ml.m5.xlarge\n            initial_instance_count: 1',
         'emlops:platform.models[0].variants[0].initial_instance_count: production endpoints need at least 2 instances per variant, got 1'),
    Case('prod-autoscaling-min-one', 'prod', '          min_instances: 2\n          max_instances: 8',
         '          min_instances: 1\n          max_instances: 8',
         'emlops:platform.models[0].autoscaling.min_instances: production endpoints keep at least 2 instances, got 1'),
    Case('prod-off-hours', 'prod', '          target_invocations_per_instance: 200\n',
         '          target_invocations_per_instance: 200\n          off_hours: {}\n',
         'emlops:platform.models[0].autoscaling.off_hours: production endpoints are not scaled down off hours'),
    Case('prod-capture-off', 'prod', '          sampling_percentage: 20\n',
         '          sampling_percentage: 20\n          enabled: false\n',
         'emlops:platform.models[0].data_capture.enabled: production endpoints capture data for monitoring'),
    Case('prod-baseline-uri-is-a-prefix', 'prod', 'statistics_s3_uri: s3://acme-ml-prod-monitoring/baselines/churn/statistics.json',
         'statistics_s3_uri: s3://acme-ml-prod-monitoring/baselines/churn/',
         "emlops:platform.models[0].monitoring.baseline.statistics_s3_uri: must be an S3 object URI, s3://<bucket>/<key>, got 's3://acme-ml-prod-monitoring/baselines/churn/'"),
    Case('prod-training-image-without-tag', 'prod', 'training_image: 444444444444.dkr.ecr.eu-west-1.amazonaws.com/churn-training:1.4.0',
         'training_image: 444444444444.dkr.ecr.eu-west-1.amazonaws.com/churn-training',
         "emlops:platform.models[0].retraining.training_image: must be an ECR image URI with a tag, <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>, got '444444444444.dkr.ecr.eu-west-1.amazonaws.com/churn-training'"),
    Case('prod-metric-threshold-above-one', 'prod', 'metric_threshold: 0.85',
         'metric_threshold: 1.5',
         'emlops:platform.models[0].retraining.metric_threshold: metric_threshold (1.5) for auc must be between 0 and 1'),
    Case('prod-schedule-without-question-mark', 'prod', 'schedule: "cron(0 3 ? * SUN *)"',
         'schedule: "cron(0 3 * * SUN *)"',
         "emlops:platform.models[1].retraining.schedule: 'cron(0 3 * * SUN *)': exactly one of day-of-month and day-of-week must be '?'"),
    Case('prod-canary-zero', 'prod', 'canary_percent: 10',
         'canary_percent: 0',
         'emlops:platform.models[0].deployment.canary_percent: must be greater than or equal to 1, got 0'),
    Case('prod-strategy-unknown', 'prod', 'strategy: canary',
         'strategy: bluegreen',
         "emlops:platform.models[0].deployment.strategy: must be 'all_at_once', 'canary' or 'linear', got 'bluegreen'"),
    Case('prod-problem-type-unknown', 'prod', 'problem_type: BinaryClassification',
         'problem_type: Clustering',
         "emlops:platform.models[0].monitoring.model_quality.problem_type: 'Clustering' is not one of BinaryClassification, MulticlassClassification, Regression"),
    Case('prod-drift-features-not-a-list', 'prod', 'drift_features: [tenure_months, monthly_charges]',
         'drift_features: tenure_months',
         "emlops:platform.models[0].monitoring.drift_features: must be a list, got 'tenure_months'"),
    Case('prod-latency-alarm-negative', 'prod', 'model_latency_ms: 300',
         'model_latency_ms: -1',
         'emlops:platform.models[0].alarms.model_latency_ms: must be greater than or equal to 1, got -1'),
    Case('prod-boundary-other-partition', 'prod', 'permission_boundary_arn: arn:aws:iam::333333333333:policy/ml-workload-boundary',
         'permission_boundary_arn: arn:aws-cn:iam::333333333333:policy/ml-workload-boundary',
         "emlops:platform: permission_boundary_arn is in partition 'aws-cn' but region 'eu-west-1' is in 'aws'"),
    Case('prod-shared-stack-is-itself', 'prod', 'shared_stack: shared',
         'shared_stack: prod',
         "emlops:platform.registry.shared_stack: names this stack itself; name the shared-services stack, e.g. 'shared'"),
    Case('prod-shared-stack-missing', 'prod', 'shared_stack: shared',
         'shared_stack: qa',
         'emlops:platform.registry.shared_stack: no stack file stacks/Pulumi.qa.yaml; stacks in this project: dev, prod, shared, staging'),
    Case('prod-package-group-not-shared', 'prod', '          model_package_group: churn\n',
         '          model_package_group: churn-v2\n',
         "emlops:platform.models[0].source.model_package_group: 'churn-v2' is not a package group of stack 'shared' (its groups: churn, fraud); add it to its registry.package_groups"),
    Case('prod-training-image-repository-not-shared', 'prod', 'churn-training:1.4.0',
         'churn-trainer:1.4.0',
         "emlops:platform.models[0].retraining.training_image: 'churn-trainer' is not an image repository of stack 'shared' (its repositories: churn-training, fraud-training); add it to its registry.image_repositories"),
    Case('prod-alert-email-invalid', 'prod', 'email: [ml-oncall@example.com]',
         'email: [ml-oncall]',
         "emlops:platform.alerts.email: 'ml-oncall' is not an e-mail address"),
    Case('prod-trusted-principal-not-an-arn', 'prod', 'data-scientist: ["arn:aws:iam::333333333333:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*"]',
         'data-scientist: ["DataScientists"]',
         "emlops:platform.personas.trusted_principal_arns: trusted principal 'DataScientists' of data-scientist must be an IAM role or user ARN ('*' allowed in the name), e.g. 'arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DataScientist_*'"),
    Case('prod-persona-unknown', 'prod', '        ml-engineer:',
         '        ml-engineers:',
         "emlops:platform.personas.trusted_principal_arns: unknown persona 'ml-engineers'; personas: data-scientist, ml-engineer, platform-admin"),
    Case('prod-retraining-without-image', 'prod', '          training_image: 444444444444.dkr.ecr.eu-west-1.amazonaws.com/fraud-training:2.1.0\n',
         '',
         'emlops:platform.models[1].retraining.training_image: field required when retraining is enabled (an image of the training repository with an immutable tag)'),
    Case('prod-ground-truth-not-s3', 'prod', 'ground_truth_s3_uri: s3://acme-ml-prod-ground-truth/churn/',
         'ground_truth_s3_uri: /data/ground-truth/',
         "emlops:platform.models[0].monitoring.model_quality.ground_truth_s3_uri: must be an S3 URI, s3://<bucket>/[<prefix>], got '/data/ground-truth/'"),
    Case('prod-probability-threshold-above-one', 'prod', 'probability_threshold: 0.5',
         'probability_threshold: 2',
         'emlops:platform.models[0].monitoring.model_quality.probability_threshold: must be less than 1, got 2'),
    Case('prod-feature-ttl-zero', 'prod', 'ttl_days: 90',
         'ttl_days: 0',
         'emlops:platform.feature_groups[0].online.ttl_days: must be greater than or equal to 1, got 0'),
    Case('shared-consumer-is-itself', 'shared', 'consumer_account_ids: ["222222222222", "333333333333"]',
         'consumer_account_ids: ["222222222222", "444444444444"]',
         "emlops:platform.registry.consumer_account_ids: '444444444444' is this stack's own account; list only the accounts that consume it"),
    Case('shared-package-group-repeated', 'shared', 'package_groups: [churn, fraud]',
         'package_groups: [churn, fraud, churn]',
         'emlops:platform.registry.package_groups: group names must be unique; repeated: churn'),
    Case('shared-repository-name-invalid', 'shared', 'image_repositories: [churn-training, fraud-training]',
         'image_repositories: [Churn-Training, fraud-training]',
         "emlops:platform.registry.image_repositories: 'Churn-Training' is not an ECR repository name (2-256 lowercase letters, digits and '.', '_', '-', '/' between them)"),
    Case('shared-consumer-not-an-account', 'shared', 'consumer_account_ids: ["222222222222", "333333333333"]',
         'consumer_account_ids: ["222222222222", "prod"]',
         "emlops:platform.registry.consumer_account_ids: 'prod' is not a 12-digit AWS account id (quote it: '123456789012')"),
    Case('config-key-outside-the-platform', 'dev', 'config:\n',
         'config:\n  aws:region: eu-west-1\n',
         'aws:region: unknown key; allowed keys: emlops:platform, emlops:mlflowBackendStoreUri'),
    Case('variant-name-invalid', 'dev', '          - name: primary\n',
         '          - name: primary variant\n',
         "emlops:platform.models[1].variants[0].name: must match pattern '^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$', got 'primary variant'"),
    Case('staging-kubernetes-version-unknown', 'staging', 'kubernetes_version: "1.33"',
         'kubernetes_version: "1.13"',
         "emlops:platform.training.eks.kubernetes_version: EKS version '1.13' is not supported; supported: 1.31, 1.32, 1.33, 1.34"),
    Case('staging-gpu-type-not-gpu', 'staging', 'gpu_instance_types: [g5.2xlarge, g5.12xlarge]',
         'gpu_instance_types: [m5.2xlarge]',
         "emlops:platform.training.eks.gpu_instance_types: 'm5.2xlarge' is not an NVIDIA GPU instance type; families: g4dn, g5, g6, g6e, p4d, p4de, p5, p5e, p5en, p6-b200"),
    Case('staging-team-memory-invalid', 'staging', 'memory: 256Gi}',
         'memory: 256GB}',
         "emlops:platform.training.eks.teams[0].memory: '256GB' is not a positive Kubernetes quantity like '64', '500m' or '256Gi'"),
    Case('staging-team-repeated', 'staging', '          - {name: nlp, gpus: 4, cpu: "32", memory: 128Gi}\n',
         '          - {name: vision, gpus: 4, cpu: "32", memory: 128Gi}\n',
         'emlops:platform.training.eks.teams: team names must be unique; repeated: vision'),
    Case('staging-admin-role-not-an-arn', 'staging', 'admin_role_arns: ["arn:aws:iam::222222222222:role/platform-admin"]',
         'admin_role_arns: ["platform-admin"]',
         "emlops:platform.training.eks.admin_role_arns: 'platform-admin' must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


def break_stack(project: Path, case: Case) -> None:
    path = project / "stacks" / f"Pulumi.{case.stack}.yaml"
    if case.old is None:
        path.write_text(case.new, encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    assert text.count(case.old) == 1, f"{case.id}: the shipped stack file changed; update the case"
    path.write_text(text.replace(case.old, case.new), encoding="utf-8")


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_a_malformed_stack_is_one_line_exit_2_and_no_plan(project, monkeypatch, case):
    break_stack(project, case)
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["preview", case.stack, "--json", "plan.json"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"stacks/Pulumi.{case.stack}.yaml: {case.error}\n"
    assert not (project / "plan.json").exists()


def test_the_corpus_has_a_case_per_defect():
    assert len(CORPUS) >= 80
    assert len({case.id for case in CORPUS}) == len(CORPUS)
    assert len({(case.stack, case.old, case.new) for case in CORPUS}) == len(CORPUS)
