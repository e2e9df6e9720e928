"""The pure data tables behind the truthful mocks: AWS formats and naming limits, per resource type.

`ARN_FORMATS` holds each service's documented ARN format, `_EC2_ID_PREFIXES` the prefixes of EC2 ids,
`AUTONAME_OVERRIDES`, `MAX_NAME_LENGTH` and `LOWERCASE_NAMES` the rules Pulumi's auto-naming meets, and
`_BUCKET_CHILDREN` the S3 sub-resources identified by their bucket. They are plain data with no Pulumi
import, kept apart from `emlops.offline.mocks` (the mocks' behaviour) so that adding a resource type is a one-line,
reviewable change here; `emlops.offline.mocks` imports and re-exports every name.
"""

from __future__ import annotations

# EC2 physical ids: a prefix per resource type, then 17 hex digits.
_EC2_ID_PREFIXES = {
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg",
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce",
    "aws:ec2/flowLog:FlowLog": "fl",
}

# ARN formats by resource type, as each service documents them. `{name}` is the resource's
# physical name (after auto-naming); other fields come from the resource's state.
ARN_FORMATS: dict[str, str] = {
    "aws:kms/key:Key": "arn:{partition}:kms:{region}:{account}:key/{id}",
    "aws:kms/alias:Alias": "arn:{partition}:kms:{region}:{account}:{name}",
    "aws:s3/bucket:Bucket": "arn:{partition}:s3:::{bucket}",
    "aws:iam/role:Role": "arn:{partition}:iam::{account}:role{path}{name}",
    "aws:iam/policy:Policy": "arn:{partition}:iam::{account}:policy{path}{name}",
    # SageMaker lower-cases names in its ARNs.
    "aws:sagemaker/model:Model": "arn:{partition}:sagemaker:{region}:{account}:model/{name_lower}",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration":
        "arn:{partition}:sagemaker:{region}:{account}:endpoint-config/{name_lower}",
    "aws:sagemaker/endpoint:Endpoint": "arn:{partition}:sagemaker:{region}:{account}:endpoint/{name_lower}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}",
    "aws:ec2/securityGroup:SecurityGroup": "arn:{partition}:ec2:{region}:{account}:security-group/{id}",
    "aws:appautoscaling/target:Target":
        "arn:{partition}:application-autoscaling:{region}:{account}:scalable-target/{uuid_short}",
    "aws:appautoscaling/policy:Policy":
        "arn:{partition}:autoscaling:{region}:{account}:scalingPolicy:{uuid}:resource/{serviceNamespace}/"
        "{resourceId}:policyName/{name}",
    "aws:appautoscaling/scheduledAction:ScheduledAction":
        "arn:{partition}:autoscaling:{region}:{account}:scheduledAction:{uuid}:resource/{serviceNamespace}/"
        "{resourceId}:scheduledActionName/{name}",
    "aws:sagemaker/featureGroup:FeatureGroup":
        "arn:{partition}:sagemaker:{region}:{account}:feature-group/{featureGroupName_lower}",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup":
        "arn:{partition}:sagemaker:{region}:{account}:model-package-group/{modelPackageGroupName_lower}",
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer":
        "arn:{partition}:sagemaker:{region}:{account}:mlflow-tracking-server/{trackingServerName}",
    "aws:ecr/repository:Repository": "arn:{partition}:ecr:{region}:{account}:repository/{name}",
    "aws:eks/cluster:Cluster": "arn:{partition}:eks:{region}:{account}:cluster/{name}",
    "aws:eks/nodeGroup:NodeGroup":
        "arn:{partition}:eks:{region}:{account}:nodegroup/{clusterName}/{nodeGroupName}/{uuid}",
    "aws:eks/addon:Addon": "arn:{partition}:eks:{region}:{account}:addon/{clusterName}/{addonName}/{uuid}",
    "aws:eks/accessEntry:AccessEntry":
        "arn:{partition}:eks:{region}:{account}:access-entry/{clusterName}/role/{account}/{principal_name}/{uuid}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{name}",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        "arn:{partition}:iam::{account}:oidc-provider/{url_host_path}",
    "aws:glue/catalogDatabase:CatalogDatabase": "arn:{partition}:glue:{region}:{account}:database/{name}",
    "aws:ec2/launchTemplate:LaunchTemplate": "arn:{partition}:ec2:{region}:{account}:launch-template/{id}",
    "aws:sns/topic:Topic": "arn:{partition}:sns:{region}:{account}:{name}",
    "aws:sns/topicPolicy:TopicPolicy": "{arn}",  # the policy's `arn` is its topic's ARN (an input)
    "aws:sns/topicSubscription:TopicSubscription": "{topic}:{uuid}",  # <topic ARN>:<subscription id>
    "aws:cloudwatch/eventRule:EventRule": "arn:{partition}:events:{region}:{account}:rule/{name}",
    "aws:cloudwatch/eventTarget:EventTarget": "{arn}",  # the target's `arn` is the destination's ARN (an input)
    "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition":
        "arn:{partition}:sagemaker:{region}:{account}:data-quality-job-definition/{name_lower}",
    "aws:sagemaker/monitoringSchedule:MonitoringSchedule":
        "arn:{partition}:sagemaker:{region}:{account}:monitoring-schedule/{name_lower}",
    "aws:sagemaker/pipeline:Pipeline": "arn:{partition}:sagemaker:{region}:{account}:pipeline/{pipelineName_lower}",
    # Network (owner: components/network.py). EC2 ARNs name the resource by its id.
    "aws:ec2/vpc:Vpc": "arn:{partition}:ec2:{region}:{account}:vpc/{id}",
    "aws:ec2/subnet:Subnet": "arn:{partition}:ec2:{region}:{account}:subnet/{id}",
    "aws:ec2/routeTable:RouteTable": "arn:{partition}:ec2:{region}:{account}:route-table/{id}",
    "aws:ec2/internetGateway:InternetGateway": "arn:{partition}:ec2:{region}:{account}:internet-gateway/{id}",
    "aws:ec2/eip:Eip": "arn:{partition}:ec2:{region}:{account}:elastic-ip/{id}",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "arn:{partition}:ec2:{region}:{account}:security-group/{id}",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "arn:{partition}:ec2:{region}:{account}:vpc-endpoint/{id}",
    "aws:ec2/flowLog:FlowLog": "arn:{partition}:ec2:{region}:{account}:vpc-flow-log/{id}",
}

# Properties Pulumi auto-names other than `name`, with the limits AWS puts on them.
AUTONAME_OVERRIDES: dict[str, tuple[str, int, bool]] = {
    # type: (property, max length, lowercase only)
    "aws:s3/bucket:Bucket": ("bucket", 63, True),
    "aws:eks/nodeGroup:NodeGroup": ("nodeGroupName", 63, False),
    # pulumi-aws-native names it `<logical name>-<7 hex>`, within SageMaker's 63 characters
    "aws-native:sagemaker:ModelQualityJobDefinition": ("jobDefinitionName", 63, False),
}
MAX_NAME_LENGTH: dict[str, int] = {
    "aws:iam/role:Role": 64,
    "aws:iam/rolePolicy:RolePolicy": 128,
    "aws:iam/policy:Policy": 128,
    "aws:eks/cluster:Cluster": 100,
    "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer": 256,
}
LOWERCASE_NAMES = {"aws:ecr/repository:Repository", "aws:glue/catalogDatabase:CatalogDatabase"}

# S3 bucket sub-resources whose physical id is the bucket name.
_BUCKET_CHILDREN = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLogging:BucketLogging",
}
