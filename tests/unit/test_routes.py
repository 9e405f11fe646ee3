from __future__ import annotations

import pytest
from batchrecs.errors import ConfigError, UnknownRouteError
from batchrecs.routes.config import JobKind, load_routes, parse_routes
from batchrecs.sinks.ses.settings import SesDestination

from tests.conftest import ROOT, ROUTES_ENV, SOLUTION_ARNS

ARN = SOLUTION_ARNS["USER_PERSONALIZATION_SOLUTION_VERSION_ARN"]


def _route(body: str) -> str:
    return f"routes:\n  home:\n{body}"


def test_shipped_routes_file_is_valid_and_has_the_documented_routes() -> None:
    # Given the routes file the project ships, with the ARNs its placeholders name
    # When it is loaded
    config = load_routes(ROOT / "config" / "routes.yaml", ROUTES_ENV)
    # Then the three documented routes exist with their kinds, all to DynamoDB
    assert {name: route.kind for name, route in config.routes.items()} == {
        "home": JobKind.USER_PERSONALIZATION,
        "related": JobKind.RELATED_ITEMS,
        "themes": JobKind.RELATED_ITEMS,
        "ranking": JobKind.PERSONALIZED_RANKING,
        "segments": JobKind.ITEM_AFFINITY,
        "segment-attributes": JobKind.ITEM_ATTRIBUTE_AFFINITY,
        "weekly-email": JobKind.USER_PERSONALIZATION,
    }
    assert {name for name, route in config.routes.items() if route.destination.type == "ses"} == {
        "weekly-email"
    }
    weekly = config.get("weekly-email").destination
    assert isinstance(weekly, SesDestination)
    assert (weekly.contactList, weekly.topic, weekly.address.type) == (
        "batchrecs",
        "weekly-picks",
        "directory",
    )
    assert config.get("home").solutionVersionArn == ARN
    themes = config.get("themes").themes
    assert themes is not None and (themes.itemNameField, themes.minThemeScore) == ("TITLE", 0.1)


def test_missing_placeholder_variable_names_route_field_and_variable() -> None:
    # Given the shipped file but no value for one placeholder
    env = {k: v for k, v in ROUTES_ENV.items() if k != "RELATED_ITEMS_SOLUTION_VERSION_ARN"}
    # When it is loaded, Then the error names the route, the field and the variable
    with pytest.raises(
        ConfigError, match="route 'related' field 'solutionVersionArn'.*RELATED_ITEMS_SOLUTION"
    ):
        load_routes(ROOT / "config" / "routes.yaml", env)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            f"    kind: user-personalisation\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb}}\n",
            "route 'home' field 'kind'",
        ),
        (
            "    kind: popularity\n    solutionVersionArn: not-an-arn\n    destination: {type: dynamodb}\n",
            "route 'home' field 'solutionVersionArn'",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n    numResults: 0\n    destination: {{type: dynamodb}}\n",
            "route 'home' field 'numResults'",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n    onInvalidLines: ignore\n"
            "    destination: {type: dynamodb}\n",
            "route 'home' field 'onInvalidLines'",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb, ttlDays: 0}}\n",
            "route 'home' field 'destination.ttlDays'",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: dynamodb, maxWritesPerSecond: 0}\n",
            "route 'home' field 'destination.maxWritesPerSecond'",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb}}\n    colour: red\n",
            "route 'home' field 'colour'",
        ),
        (
            f"    kind: related-items\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb}}\n"
            "    itemExplorationConfig: {explorationWeight: 0.3}\n",
            "itemExplorationConfig applies only",
        ),
        (f"    kind: popularity\n    solutionVersionArn: {ARN}\n", "route 'home' field 'destination'"),
        (
            f"    kind: user-personalization\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: ses, contactList: l, address: {type: userId}}\n",
            "route 'home' field '\\(route\\)': .*names one topic",
        ),
        (
            f"    kind: item-affinity\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: ses, contactList: l, topic: t, address: {type: userId}}\n",
            "maps segments to topics",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: ses, contactList: l, topic: t, address: {type: directory, table: x}}\n",
            "route 'home' field 'destination.address.table'",
        ),
        (
            f"    kind: item-affinity\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: ses, contactList: l, address: {type: userId}, segmentTopics: {"
            + ", ".join(f"s{i}: t{i}" for i in range(21))
            + "}}\n",
            "at most 20 topics",
        ),
        (
            f"    kind: popularity\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: ses, contactList: l, topic: t, address: {type: userId}, maxContactsPerImport: 0}\n",
            "route 'home' field 'destination.maxContactsPerImport'",
        ),
        (
            f"    kind: item-affinity\n    solutionVersionArn: {ARN}\n"
            "    destination: {type: dynamodb, replacePrevious: true}\n",
            "replacePrevious needs records keyed by the input's ids",
        ),
    ],
)
def test_invalid_route_is_a_startup_error_naming_route_and_field(body: str, message: str) -> None:
    # Given a route with one bad field, When parsed, Then the ConfigError names it
    with pytest.raises(ConfigError, match=message):
        parse_routes(_route(body), {})


def test_route_names_must_be_safe_for_prefixes_and_job_names() -> None:
    text = f"routes:\n  Home Page:\n    kind: popularity\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb}}\n"
    with pytest.raises(ConfigError, match="route 'Home Page' field 'name'"):
        parse_routes(text, {})


def test_empty_or_non_mapping_file_is_rejected() -> None:
    with pytest.raises(ConfigError, match="non-empty 'routes'"):
        parse_routes("routes: {}\n", {})
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_routes("routes: [\n", {})


def test_exploration_config_is_sent_as_strings() -> None:
    text = _route(
        f"    kind: user-personalization\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb}}\n"
        "    itemExplorationConfig: {explorationWeight: 0.3, explorationItemAgeCutOff: 30}\n"
    )
    route = parse_routes(text, {}).get("home")
    assert route.itemExplorationConfig is not None
    assert route.itemExplorationConfig.to_api() == {
        "explorationWeight": "0.3",
        "explorationItemAgeCutOff": "30",
    }


def test_unknown_route_lookup_lists_configured_routes() -> None:
    config = load_routes(ROOT / "config" / "routes.yaml", ROUTES_ENV)
    with pytest.raises(
        UnknownRouteError,
        match=r"no route named 'nope' \(configured: home, ranking, related, segment-attributes, segments, themes, weekly-email\)",
    ):
        config.get("nope")


def test_the_readme_routes_section_shows_every_route_option() -> None:
    # Given the README's Routes section (up to its Input files part)
    from batchrecs.routes.config import Route, RoutesConfig
    from batchrecs.sinks.dynamodb.settings import DynamoDBDestination
    from batchrecs.sinks.ses.settings import SesDestination

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Routes") : readme.index("\n### Input files")]
    # Then every option of a route, of the routes file and of each destination is written there as it is
    # written in the routes file ("name:" in an example), so a new option cannot go undocumented
    options = {*Route.model_fields, *RoutesConfig.model_fields}
    options |= {*DynamoDBDestination.model_fields, *SesDestination.model_fields}
    options -= {"name", "routes"}  # a route's name is its key; routes is the file itself
    missing = sorted(option for option in options if f"{option}:" not in section)
    assert missing == []


def test_a_route_whose_model_variable_is_empty_is_turned_off_and_says_why() -> None:
    # Given the template deployed with RelatedItemsSolutionVersionArn left empty (issue #17, part 3)
    env = {**ROUTES_ENV, "RELATED_ITEMS_SOLUTION_VERSION_ARN": "", "RELATED_ITEMS_SOLUTION_ARN": ""}
    config = load_routes(ROOT / "config" / "routes.yaml", env)
    # Then the routes of that model (related, themes) are off and the others load as they are
    assert set(config.disabled) == {"related", "themes"}
    assert "home" in config.routes and "related" not in config.routes
    with pytest.raises(UnknownRouteError, match=r"route 'related' is turned off: its solutionVersionArn "):
        config.get("related")
    # while a variable not set at all is still a mistake, named
    unset = {k: v for k, v in ROUTES_ENV.items() if k != "RELATED_ITEMS_SOLUTION_VERSION_ARN"}
    with pytest.raises(ConfigError, match="RELATED_ITEMS_SOLUTION_VERSION_ARN is not set"):
        load_routes(ROOT / "config" / "routes.yaml", unset)
