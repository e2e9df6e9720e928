"""The replacement and statefulness rules `emlops diff` applies, per resource type.

`REPLACE_ON_CHANGE` lists, per type, the inputs AWS cannot update in place (changing one replaces the
resource), `replaces` applies it to one changed input path, and `STATEFUL_TYPES` names the types whose
deletion loses data. They are kept apart from `emlops.review.diff`, which computes and renders the diff, because
they are reference data that grows with every resource type the platform uses and is reviewed on its own;
`emlops.review.diff` re-exports every name here.
"""

from __future__ import annotations

import re


ALL = "*"  # every input but tags
TAGS = ("tags", "tagsAll")

# Inputs whose change replaces the resource (the AWS API has no update for them). ALL: every input but
# tags. A path matches itself and everything under it; indexes are ignored (`vpcConfig.subnetIds`).
# Types not listed: `name` replaces (the name is most AWS resources' identity).
REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    # SageMaker: models, endpoint configs and job definitions have no update API at all.
    "aws:sagemaker/model:Model": (ALL,),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (ALL,),
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition": (ALL,),
    "aws-native:sagemaker:ModelQualityJobDefinition": (ALL,),  # Cloud Control: every property is create-only
    "aws:sagemaker/endpoint:Endpoint": ("name",),  # a new endpointConfigName is a (blue/green) update
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule": ("name",),
    # UpdateFeatureGroup changes only the online store's TTL, throughput and added features.
    "aws:sagemaker/featureGroup:FeatureGroup": (
        "featureGroupName", "recordIdentifierFeatureName", "eventTimeFeatureName", "description", "roleArn",
        "featureDefinitions", "offlineStoreConfig", "onlineStoreConfig.enableOnlineStore",
        "onlineStoreConfig.securityConfig", "onlineStoreConfig.storageType"),
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": ("modelPackageGroupName", "modelPackageGroupDescription"),
    "aws:sagemaker/modelPackageGroupPolicy:ModelPackageGroupPolicy": ("modelPackageGroupName",),
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": ("trackingServerName", "roleArn", "mlflowVersion"),
    "aws:sagemaker/pipeline:Pipeline": ("pipelineName",),
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage", "multiRegion", "customKeyStoreId", "xksKeyId"),
    "aws:kms/alias:Alias": ("name", "namePrefix"),
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", "policyArn"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url",),
    "aws:eks/cluster:Cluster": (
        "name", "roleArn", "vpcConfig.subnetIds", "vpcConfig.securityGroupIds", "kubernetesNetworkConfig",
        "accessConfig.bootstrapClusterCreatorAdminPermissions", "outpostConfig"),
    "aws:eks/nodeGroup:NodeGroup": (
        "clusterName", "nodeGroupName", "nodeGroupNamePrefix", "nodeRoleArn", "subnetIds", "amiType",
        "capacityType", "diskSize", "instanceTypes", "remoteAccess"),
    "aws:eks/addon:Addon": ("addonName", "clusterName"),
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn", "type"),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": ("clusterName", "principalArn", "policyArn",
                                                                 "accessScope"),
    "aws:ecr/repository:Repository": ("name", "encryptionConfigurations"),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": ("repository",),
    "aws:ec2/securityGroup:SecurityGroup": ("name", "namePrefix", "description", "vpcId"),
    "aws:glue/catalogDatabase:CatalogDatabase": ("name", "catalogId"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix"),
    "aws:cloudwatch/eventRule:EventRule": ("name", "namePrefix", "eventBusName"),
    "aws:cloudwatch/eventTarget:EventTarget": ("rule", "targetId", "eventBusName"),
    "aws:sns/topic:Topic": ("name", "namePrefix", "fifoTopic"),
    "aws:sns/topicPolicy:TopicPolicy": ("arn",),
    "aws:sns/topicSubscription:TopicSubscription": ("topic", "protocol", "endpoint"),
    "aws:appautoscaling/target:Target": ("resourceId", "scalableDimension", "serviceNamespace"),
    "aws:appautoscaling/policy:Policy": ("name", "resourceId", "scalableDimension", "serviceNamespace"),
    "aws:appautoscaling/scheduledAction:ScheduledAction": ("name", "resourceId", "scalableDimension",
                                                           "serviceNamespace"),
    "pulumi:providers:aws": ("region",),  # resources of another region are other resources
    "kubernetes:scheduling.k8s.io/v1:PriorityClass": ("metadata.name", "value"),
    "kubernetes:apps/v1:DaemonSet": ("metadata.name", "metadata.namespace", "spec.selector"),
}
for _bucket_child in ("bucketPublicAccessBlock:BucketPublicAccessBlock",
                      "bucketOwnershipControls:BucketOwnershipControls",
                      "bucketVersioning:BucketVersioning", "bucketPolicy:BucketPolicy", "bucketLogging:BucketLogging",
                      "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                      "bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
    REPLACE_ON_CHANGE[f"aws:s3/{_bucket_child}"] = ("bucket", "expectedBucketOwner")
_DEFAULT_REPLACE = ("name",)
_KUBERNETES_REPLACE = ("metadata.name", "metadata.namespace")

# Types whose deletion loses data or state someone relies on (also tests/test_preview.py STATEFUL_TYPES).
STATEFUL_TYPES = frozenset({
    "aws:kms/key:Key", "aws:s3/bucket:Bucket", "aws:ecr/repository:Repository",
    "aws:sagemaker/featureGroup:FeatureGroup", "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer",
    "aws:sns/topic:Topic",  # its confirmed subscriptions
    "aws:eks/cluster:Cluster", "aws:cloudwatch/logGroup:LogGroup", "aws:glue/catalogDatabase:CatalogDatabase",
    "aws:dynamodb/table:Table", "aws:efs/fileSystem:FileSystem", "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster", "kubernetes:core/v1:Namespace", "kubernetes:core/v1:PersistentVolumeClaim",
})


def _strip_indexes(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path.split("#", 1)[0])


def replaces(type_: str, path: str) -> bool:
    """Whether a change of input PATH replaces a resource of TYPE (see REPLACE_ON_CHANGE)."""
    if path.startswith("("):  # protect, provider, retainOnDelete: Pulumi options, not inputs
        return False
    plain = _strip_indexes(path)
    if plain.split(".")[0] in TAGS:
        return False
    if type_.startswith("kubernetes:"):
        table = REPLACE_ON_CHANGE.get(type_, _KUBERNETES_REPLACE)
    else:
        table = REPLACE_ON_CHANGE.get(type_, _DEFAULT_REPLACE)
    return ALL in table or any(plain == p or plain.startswith(p + ".") for p in table)
