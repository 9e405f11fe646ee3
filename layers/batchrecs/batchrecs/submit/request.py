"""The CreateBatchInferenceJob / CreateBatchSegmentJob parameters for a route."""

from __future__ import annotations

from typing import Any

from batchrecs.routes.config import Route


def build_request(
    route: Route, job_name: str, input_uri: str, output_uri: str, role_arn: str
) -> dict[str, Any]:
    # a solutionArn route's request names the solution; ``start_job`` puts its newest ACTIVE version in
    model = (
        {"solutionArn": route.solutionArn}
        if route.solutionArn
        else {"solutionVersionArn": route.solutionVersionArn}
    )
    request: dict[str, Any] = {
        "jobName": job_name,
        **model,
        "jobInput": {"s3DataSource": {"path": input_uri}},
        "jobOutput": {"s3DataDestination": {"path": output_uri}},
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
    if route.itemExplorationConfig is not None and not route.kind.is_segment:
        exploration = route.itemExplorationConfig.to_api()
        if exploration:
            request["batchInferenceJobConfig"] = {"itemExplorationConfig": exploration}
    return request
