"""The emlops Pulumi program: read the stack's validated config, build its platform, export outputs.

The platform is built in the program's async entry point (`pulumi.run`), stage by stage, so that what is built
registers while the rest is built (infra/stepwise.py). Resources of your own that use the platform go in `main`,
after it is built."""

import pulumi

from emlops.program.platform import load_platform_config
from emlops.program.program import build_platform

config = load_platform_config()


async def main() -> None:
    platform = await build_platform(config)

    pulumi.export("dataKeyArn", platform.data_key.arn)
    pulumi.export("accessLogsBucket", platform.access_logs.bucket_name)
    pulumi.export("artifactsBucket", platform.artifacts.bucket_name)
    if platform.datasets is not None:  # a registry-only (shared-services) stack holds no datasets
        pulumi.export("datasetsBucket", platform.datasets.bucket_name)
        pulumi.export("modelBuilderRoleArn", platform.model_builder_role.arn)
    pulumi.export("endpoints", {
        name: {
            "name": endpoint.endpoint_name,
            "arn": endpoint.endpoint_arn,
            "modelArtifactUri": endpoint.model_artifact_uri,
            "dataCaptureUri": endpoint.data_capture_uri,
        }
        for name, endpoint in platform.endpoints.items()
    })
    if platform.batch_transforms:
        pulumi.export("inferenceBucket", platform.inference.bucket_name)
        pulumi.export("batchTransforms", {
            name: {"pipelineName": transform.pipeline_name, "pipelineArn": transform.pipeline_arn,
                   "modelName": transform.model_name, "outputS3Uri": transform.output_s3_uri}
            for name, transform in platform.batch_transforms.items()
        })
    if platform.feature_store is not None:
        pulumi.export("featureGroups", platform.feature_store.feature_group_names)
    if platform.training is not None:
        training = platform.training
        outputs = {"roleArn": training.role_arn, "repositoryUrl": training.repository_url,
                   "clusterName": training.cluster_name, "clusterEndpoint": training.cluster_endpoint}
        pulumi.export("training", {key: value for key, value in outputs.items() if value is not None})
    if platform.registry is not None:
        pulumi.export("registry", {
            "packageGroups": platform.registry.package_group_names,
            "packageGroupArns": platform.registry.package_group_arns,
            "repositoryUrls": platform.registry.repository_urls,
            "trackingUri": platform.registry.tracking_uri,
        })
    if platform.network is not None:
        pulumi.export("network", {"vpcId": platform.network.vpc_id,
                                  "privateSubnetIds": platform.network.private_subnet_ids})
    if platform.personas is not None:
        pulumi.export("personaRoleArns", platform.personas.role_arns)
    if platform.audit_trail_arn is not None:  # the stack's own trail, or the organisation's it checked
        pulumi.export("auditTrailArn", platform.audit_trail_arn)


pulumi.run(main)
