"""The CreateBatchInferenceJob / CreateBatchSegmentJob parameters for a route."""

from __future__ import annotations

from typing import Any

from batchrecs.routes.config import Route


def build_request(
    route: Route,
    job_name: str,
    input_uri: str,
    output_uri: str,
    role_arn: str,
    kms_key_arn: str | None = None,
) -> dict[str, Any]:
    """The job's parameters. ``kms_key_arn`` (the stack's DataKmsKeyArn): Personalize decrypts the input
    and encrypts the output with it (S3DataConfig.kmsKeyArn)."""
    # a solutionArn route's request names the solution; ``start_job`` puts its newest ACTIVE version in
    model = (
        {"solutionArn": route.solutionArn}
        if route.solutionArn
        else {"solutionVersionArn": route.solutionVersionArn}
    )
    key = {"kmsKeyArn": kms_key_arn} if kms_key_arn else {}
    request: dict[str, Any] = {
        "jobName": job_name,
        **model,
        "jobInput": {"s3DataSource": {"path": input_uri, **key}},
        "jobOutput": {"s3DataDestination": {"path": output_uri, **key}},
        "roleArn": role_arn,
    }
    if route.tags:
        request["tags"] = [{"tagKey": key, "tagValue": value} for key, value in sorted(route.tags.items())]
    if route.numResults is not None:
        request["numResults"] = route.numResults
    if route.filterArn is not None:
        request["filterArn"] = route.filterArn
    if route.themes is not None:  # Content Generator: a theme for each line's items
        request["batchInferenceJobMode"] = "THEME_GENERATION"
        request["themeGenerationConfig"] = {
            "fieldsForThemeGeneration": {"itemName": route.themes.itemNameField}
        }
    config: dict[str, Any] = {}
    if route.itemExplorationConfig is not None and route.itemExplorationConfig.to_api():
        config["itemExplorationConfig"] = route.itemExplorationConfig.to_api()
    if route.rankingInfluence is not None and route.rankingInfluence.to_api():
        config["rankingInfluence"] = route.rankingInfluence.to_api()
    if config and not route.kind.is_segment:  # CreateBatchSegmentJob has no batchInferenceJobConfig
        request["batchInferenceJobConfig"] = config
    return request
