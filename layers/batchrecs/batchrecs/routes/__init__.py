"""Route configuration: which Personalize job a dropped file becomes and where its records go."""

from batchrecs.routes.config import (
    DynamoDBDestination,
    ItemExplorationConfig,
    JobKind,
    Route,
    RoutesConfig,
    load_routes,
    parse_routes,
)

__all__ = [
    "DynamoDBDestination",
    "ItemExplorationConfig",
    "JobKind",
    "Route",
    "RoutesConfig",
    "load_routes",
    "parse_routes",
]
