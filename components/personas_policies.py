"""Personas' permissions: the explicit action lists and the three inline-policy builders.

`components.personas` holds the component and the trust policy, `components.personas_args` its settings and
context; this module holds what each persona may do once it has assumed its role (`data-scientist`,
`ml-engineer`, `platform-admin`): the named action lists (no wildcards, each reviewed one by one) and the
functions that turn the settings and context into named lists of statements, so the permissions can be read
and reviewed on their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from emlops.components.aws_context import AwsContext
from emlops.components.iam import Statement, kms_usage_statement
from emlops.components.personas_args import PersonasContext, PersonasSettings


# Persona roles live under their own path: outside the platform's name prefix that admins manage,
# and easy to exclude from every persona's trust (no chaining from one persona into another).
PERSONA_PATH = "/personas/"
SAGEMAKER = "sagemaker.amazonaws.com"
# Deleting these loses data or history nothing can rebuild: no persona may, whatever else it is given.
STATEFUL_DELETIONS = ["kms:ScheduleKeyDeletion", "s3:DeleteBucket", "sagemaker:DeleteFeatureGroup",
                      "sagemaker:DeleteModelPackageGroup"]
KEEP_STATE = Statement(sid="KeepStatefulResources", effect="Deny", actions=STATEFUL_DELETIONS, resources=["*"])
ENDPOINT_CHANGES = ["sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpoint",
                    "sagemaker:UpdateEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"]


def _named(service: str, names: str) -> list[str]:  # explicit action lists, without repeating the service
    return [f"{service}:{name}" for name in names.split()]


# What an admin may change on a resource that carries the platform's tags; stateless deletions only.
ADMIN_TAGGED_ACTIONS = [
    *_named("cloudwatch", "DisableAlarmActions EnableAlarmActions SetAlarmState"),
    *_named("events", "DisableRule EnableRule"),
    *_named("sagemaker", "DeleteEndpoint DeleteEndpointConfig DeleteModel DeleteMonitoringSchedule "
            "StartMlflowTrackingServer StartMonitoringSchedule StopMlflowTrackingServer StopMonitoringSchedule "
            "StopPipelineExecution StopProcessingJob StopTrainingJob UpdateEndpoint "
            "UpdateEndpointWeightsAndCapacities UpdateFeatureGroup UpdateMlflowTrackingServer "
            "UpdateMonitoringSchedule"),
]
# Key administration without use. PutKeyPolicy and CreateGrant stay out: either could hand decrypt
# to a principal the admin controls; the key policy changes only through deploys.
KEY_ADMIN_ACTIONS = _named("kms", "CancelKeyDeletion DescribeKey EnableKey EnableKeyRotation GetKeyPolicy "
                           "GetKeyRotationStatus ListGrants ListResourceTags RevokeGrant RotateKeyOnDemand "
                           "TagResource UntagResource UpdateKeyDescription")
# Configuration and metadata only, named one by one: no s3:Get*/sagemaker:Get* (they read data).
READ_ONLY_ACTIONS = [
    *_named("application-autoscaling", "DescribeScalableTargets DescribeScalingActivities DescribeScalingPolicies "
            "DescribeScheduledActions"),
    *_named("cloudwatch", "DescribeAlarms GetMetricData GetMetricStatistics ListMetrics"),
    *_named("ec2", "DescribeNetworkInterfaces DescribeSecurityGroups DescribeSubnets DescribeVpcEndpoints "
            "DescribeVpcs"),
    *_named("ecr", "DescribeImages DescribeRepositories GetLifecyclePolicy GetRepositoryPolicy"),
    *_named("eks", "DescribeCluster DescribeNodegroup ListClusters ListNodegroups"),
    *_named("events", "DescribeRule ListRules ListTargetsByRule"),
    *_named("glue", "GetDatabase GetTable GetTables"),
    *_named("iam", "GetPolicy GetPolicyVersion GetRole GetRolePolicy ListAttachedRolePolicies ListRolePolicies "
            "ListRoles"),
    *_named("kms", "ListAliases ListKeys"),
    *_named("logs", "DescribeLogGroups DescribeLogStreams FilterLogEvents GetLogEvents"),
    *_named("s3", "GetBucketLogging GetBucketOwnershipControls GetBucketPolicy GetBucketPublicAccessBlock "
            "GetBucketTagging GetBucketVersioning GetEncryptionConfiguration GetLifecycleConfiguration "
            "ListAllMyBuckets"),
    *_named("sagemaker", "DescribeDataQualityJobDefinition DescribeEndpoint DescribeEndpointConfig "
            "DescribeFeatureGroup DescribeMlflowTrackingServer DescribeModel DescribeModelPackage "
            "DescribeModelPackageGroup DescribeMonitoringSchedule DescribePipeline DescribePipelineExecution "
            "DescribeProcessingJob DescribeTrainingJob ListEndpointConfigs ListEndpoints ListFeatureGroups "
            "ListMlflowTrackingServers ListModelPackageGroups ListModelPackages ListModels "
            "ListMonitoringExecutions ListMonitoringSchedules ListPipelineExecutions ListPipelines "
            "ListProcessingJobs ListTags ListTrainingJobs"),
    *_named("sns", "GetTopicAttributes ListSubscriptionsByTopic ListTopics"),
    *_named("tag", "GetResources"),
]
# IAM changes that grant permissions: only on roles that keep the permissions boundary.
ROLE_GRANT_ACTIONS = _named("iam", "CreateRole DeleteRolePolicy PutRolePermissionsBoundary PutRolePolicy")
ROLE_OTHER_ACTIONS = _named("iam", "DeleteRole TagRole UntagRole UpdateAssumeRolePolicy UpdateRole "
                            "UpdateRoleDescription")


def _bucket(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext,
            bucket_arn: pulumi.Input[str], prefix: str,
            write: bool) -> list[Statement]:
    """The statements of SecureBucket's grants, for a bucket known by its ARN."""
    listing = Statement(actions=["s3:ListBucket"], resources=[bucket_arn],
                        conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None)
    actions = ["s3:GetObject", "s3:GetObjectVersion"] + (["s3:AbortMultipartUpload", "s3:PutObject"] if write else [])
    return [listing, Statement(actions=actions, resources=[pulumi.Output.concat(bucket_arn, "/", prefix, "*")]),
            kms_usage_statement(context.data_key_arn, encrypt=write, decrypt=True,
                                via_service=aws_facts.service_endpoint("s3"))]


def _packages(group_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The versions of a model package group: `...:model-package/<group>/*`."""
    return pulumi.Output.from_input(group_arn).apply(
        lambda arn: arn.replace(":model-package-group/", ":model-package/", 1) + "/*")


def _jobs(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext,
          roles: Sequence[pulumi.Input[str]]) -> list[Statement]:
    """Training and processing jobs: in a VPC, volumes and outputs under the data key, one of `roles`."""
    jobs = [aws_facts.arn("sagemaker", "processing-job/*"), aws_facts.arn("sagemaker", "training-job/*")]
    key = context.data_key_arn
    guard: dict = {"Null": {"sagemaker:VpcSubnets": "false"},
                   "ArnEquals": {"sagemaker:VolumeKmsKey": key, "sagemaker:OutputKmsKey": key}}
    if context.job_subnet_ids:
        guard["ForAllValues:StringEquals"] = {"sagemaker:VpcSubnets": list(context.job_subnet_ids)}
    logs = [aws_facts.arn("logs", f"log-group:/aws/sagemaker/{kind}:*") for kind in ("ProcessingJobs", "TrainingJobs")]
    return [
        Statement(sid="StartJobsInVpcWithDataKey", actions=["sagemaker:CreateProcessingJob",
                  "sagemaker:CreateTrainingJob"], resources=jobs, conditions=guard),
        Statement(actions=["sagemaker:AddTags", "sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob",
                           "sagemaker:StopProcessingJob", "sagemaker:StopTrainingJob"], resources=jobs),
        # List actions have no resource to scope to; AWS requires "*".
        Statement(actions=["sagemaker:ListProcessingJobs", "sagemaker:ListTrainingJobs"], resources=["*"]),
        Statement(actions=["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"], resources=logs),
        Statement(sid="PassJobRolesToSageMaker", actions=["iam:PassRole"], resources=list(roles),
                  conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}}),
    ]


Policies = list[tuple[str, list[Statement]]]


def data_scientist_policies(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext) -> Policies:
    policies: Policies = []
    if context.datasets_bucket_arn is not None:  # a registry-only stack holds no datasets
        policies.append(("read-datasets", _bucket(settings, context, aws_facts, context.datasets_bucket_arn,
                                                  settings.datasets_prefix, write=False)))
    policies.append(("experiments", _bucket(settings, context, aws_facts, context.artifacts_bucket_arn,
                                            settings.experiments_prefix, write=True)))
    if context.feature_group_arns:
        policies.append(("read-features", [
            Statement(actions=["sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord"],
                      resources=list(context.feature_group_arns)),
            Statement(actions=["sagemaker:ListFeatureGroups"], resources=["*"]),
            # readers of an online store need the key itself; AWS documents no kms:ViaService for it
            kms_usage_statement(context.data_key_arn, encrypt=False, decrypt=True),
        ]))
    registers = [*context.package_group_arns, *(context.shared_group_arns if context.shared_group_publisher else [])]
    if registers:
        groups, packages = list(registers), [_packages(g) for g in registers]
        policies.append(("register-models", [
            Statement(actions=["sagemaker:DescribeModelPackageGroup"], resources=groups),
            Statement(actions=["sagemaker:DescribeModelPackage"], resources=packages),
            # new versions wait for an ML engineer's approval; the request must say so explicitly
            Statement(sid="RegisterForApprovalOnly", actions=["sagemaker:CreateModelPackage"],
                      resources=groups + packages,
                      conditions={"StringEquals": {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}}),
            Statement(actions=["sagemaker:ListModelPackageGroups", "sagemaker:ListModelPackages"], resources=["*"]),
        ]))
    if context.shared_group_arns and not context.shared_group_publisher:
        policies.append(("read-shared-models", _read_groups(context.shared_group_arns)))
    if context.training_role_arn is not None:
        policies.append(("run-jobs", _jobs(settings, context, aws_facts, [context.training_role_arn])))
    policies.append(("guardrails", [
        KEEP_STATE,
        Statement(sid="NoApprovalNoEndpointChanges", effect="Deny", resources=["*"],
                  actions=ENDPOINT_CHANGES + ["sagemaker:UpdateModelPackage"]),
    ]))
    return policies


def _read_groups(group_arns: Sequence[pulumi.Input[str]]) -> list[Statement]:
    return [
        Statement(actions=["sagemaker:DescribeModelPackageGroup"], resources=list(group_arns)),
        Statement(actions=["sagemaker:DescribeModelPackage"], resources=[_packages(g) for g in group_arns]),
        Statement(actions=["sagemaker:ListModelPackageGroups", "sagemaker:ListModelPackages"], resources=["*"]),
    ]


def ml_engineer_policies(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext) -> Policies:
    policies: Policies = [("read-artifacts", _bucket(settings, context, aws_facts, context.artifacts_bucket_arn, "", write=False))]
    if context.package_group_arns:
        policies.append(("approve-models", [
            Statement(actions=["sagemaker:DescribeModelPackageGroup"], resources=list(context.package_group_arns)),
            Statement(actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                      resources=[_packages(g) for g in context.package_group_arns]),
            Statement(actions=["sagemaker:ListModelPackageGroups", "sagemaker:ListModelPackages"], resources=["*"]),
        ]))
    if context.shared_group_arns:
        # versions of the shared registry are approved in its own account, not from here
        policies.append(("read-shared-models", _read_groups(context.shared_group_arns)))
    if context.pipeline_arns:
        policies.append(("run-pipelines", [
            Statement(actions=["sagemaker:DescribePipeline", "sagemaker:ListPipelineExecutions",
                               "sagemaker:StartPipelineExecution"], resources=list(context.pipeline_arns)),
            Statement(actions=["sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps",
                               "sagemaker:StopPipelineExecution"],
                      resources=[pulumi.Output.concat(p, "/execution/*") for p in context.pipeline_arns]),
            Statement(actions=["sagemaker:ListPipelines"], resources=["*"]),
        ]))
    if context.endpoint_arns or context.monitoring_schedule_arns:
        statements = []
        if context.endpoint_arns:
            statements += [
                Statement(actions=["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
                          resources=list(context.endpoint_arns)),
                Statement(actions=["sagemaker:DescribeEndpointConfig"],
                          resources=[aws_facts.arn("sagemaker", f"endpoint-config/{context.managed_prefix}*")]),
            ]
        if context.monitoring_schedule_arns:
            statements.append(Statement(
                actions=["sagemaker:DescribeMonitoringSchedule", "sagemaker:StartMonitoringSchedule",
                         "sagemaker:StopMonitoringSchedule"], resources=list(context.monitoring_schedule_arns)))
        statements.append(Statement(actions=["sagemaker:ListEndpoints", "sagemaker:ListMonitoringExecutions",
                                             "sagemaker:ListMonitoringSchedules"], resources=["*"]))
        policies.append(("operate-endpoints", statements))
    roles = [context.training_role_arn] if context.training_role_arn is not None else []
    roles += [r for r in context.execution_role_arns if not (isinstance(r, str) and r in roles)]
    if roles:
        policies.append(("run-jobs", _jobs(settings, context, aws_facts, roles)))
    policies.append(("guardrails", [KEEP_STATE]))
    return policies


def platform_admin_policies(settings: PersonasSettings, context: PersonasContext, aws_facts: AwsContext) -> Policies:
    tagged = {f"aws:ResourceTag/{key}": value for key, value in context.platform_tags.items()}
    managed_roles = aws_facts.arn("iam", f"role/{context.managed_prefix}*", regional=False)
    persona_roles = aws_facts.arn("iam", f"role{PERSONA_PATH}*", regional=False)
    boundary = context.permissions_boundary_arn
    bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary}} if boundary is not None else {}
    own_policies = {"ArnLike": {"iam:PolicyARN": aws_facts.arn("iam", "policy/*", regional=False)}}
    roles = [
        Statement(sid="GrantOnlyWithinBoundary" if bounded else "GrantToManagedRoles", actions=ROLE_GRANT_ACTIONS,
                  resources=[managed_roles], conditions=bounded or None),
        # customer-managed policies only: never AdministratorAccess or a *FullAccess policy
        Statement(sid="AttachOwnPoliciesOnly", actions=["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                  resources=[managed_roles], conditions={**bounded, **own_policies}),
        Statement(actions=ROLE_OTHER_ACTIONS, resources=[managed_roles]),
    ]
    if boundary is not None:
        roles.append(Statement(sid="KeepBoundaries", effect="Deny", actions=["iam:DeleteRolePermissionsBoundary"],
                               resources=["*"]))
    return [
        ("administer-tagged", [
            Statement(sid="AdministerPlatformResources", actions=ADMIN_TAGGED_ACTIONS, resources=["*"],
                      conditions={"StringEquals": tagged}),
            # retagging may not move a resource into or out of the platform
            Statement(sid="TagPlatformResources", actions=["sagemaker:AddTags", "sagemaker:DeleteTags"],
                      resources=["*"], conditions={"StringEquals": tagged, "ForAllValues:StringNotEquals": {
                          "aws:TagKeys": list(context.platform_tags)}}),
        ]),
        ("administer-roles", roles),
        ("administer-data-key", [Statement(actions=KEY_ADMIN_ACTIONS, resources=[context.data_key_arn])]),
        ("read-only", [Statement(sid="ReadConfiguration", actions=READ_ONLY_ACTIONS, resources=["*"])]),
        ("guardrails", [
            KEEP_STATE,
            # admins run the platform but do not read its data, nor let another principal read it for them
            Statement(sid="NoDataKeyUse", effect="Deny", resources=[context.data_key_arn],
                      actions=["kms:CreateGrant", "kms:Decrypt", "kms:PutKeyPolicy", "kms:ReEncryptFrom"]),
            *([Statement(sid="NoDatasetReads", effect="Deny", actions=["s3:GetObject", "s3:GetObjectVersion"],
                         resources=[pulumi.Output.concat(context.datasets_bucket_arn, "/*")])]
              if context.datasets_bucket_arn is not None else []),
            Statement(sid="NoFeatureReads", effect="Deny", actions=["sagemaker:BatchGetRecord", "sagemaker:GetRecord"],
                      resources=["*"]),
            # the roles admins manage are never theirs to use, and the persona roles never theirs to change
            Statement(sid="NoAssumingManagedRoles", effect="Deny", actions=["sts:AssumeRole"],
                      resources=[managed_roles]),
            Statement(sid="NoChangesToPersonas", effect="Deny", resources=[persona_roles],
                      actions=sorted(ROLE_GRANT_ACTIONS + ROLE_OTHER_ACTIONS + [
                          "iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary", "iam:DetachRolePolicy"])),
        ]),
    ]
