"""The routes file (``config/routes.yaml``) as validated models.

A file dropped under ``input/<route>/`` belongs to ``<route>``. Values that differ per deployment
(solution version and filter ARNs) are written as ``${NAME}`` placeholders and filled from the
environment when the file is loaded; the SAM template maps its parameters onto those variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from batchrecs.errors import ConfigError, UnknownRouteError
from batchrecs.sinks.dynamodb.settings import DynamoDBDestination
from batchrecs.sinks.ses.settings import SesDestination

DEFAULT_MAX_JOB_HOURS = 24  # a job running longer than this since its upload is reported
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the routes 5-10x faster

ROUTE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
SOLUTION_VERSION_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:personalize:[a-z0-9-]+:\d{12}:solution/[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9]+$"
)
SOLUTION_ARN_PATTERN = r"^arn:aws[a-z-]*:personalize:[a-z0-9-]+:\d{12}:solution/[A-Za-z0-9][A-Za-z0-9_-]*$"
FILTER_ARN_PATTERN = r"^arn:aws[a-z-]*:personalize:[a-z0-9-]+:\d{12}:filter/[A-Za-z0-9][A-Za-z0-9_-]*$"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class JobKind(StrEnum):
    """The recipe family of a route's solution version; decides the input shape and the job type."""

    USER_PERSONALIZATION = "user-personalization"
    POPULARITY = "popularity"
    RELATED_ITEMS = "related-items"
    PERSONALIZED_RANKING = "personalized-ranking"
    ITEM_AFFINITY = "item-affinity"
    ITEM_ATTRIBUTE_AFFINITY = "item-attribute-affinity"

    @property
    def is_segment(self) -> bool:
        """Batch segment jobs (USER_SEGMENTATION recipes) rather than batch inference jobs."""
        return self in (JobKind.ITEM_AFFINITY, JobKind.ITEM_ATTRIBUTE_AFFINITY)

    @property
    def key_field(self) -> str:
        """The input field that identifies a line: its record key and its duplicate key."""
        return _KEY_FIELD[self]

    @property
    def input_fields(self) -> tuple[str, ...]:
        """The fields each input line of the kind has (seed 002's input examples)."""
        return _INPUT_FIELDS[self]

    @property
    def max_lines(self) -> int | None:
        """Personalize's limit on input lines for segment recipes; None when only size limits apply."""
        return _MAX_LINES.get(self)


_KEY_FIELD = {
    JobKind.USER_PERSONALIZATION: "userId",
    JobKind.POPULARITY: "userId",
    JobKind.PERSONALIZED_RANKING: "userId",
    JobKind.RELATED_ITEMS: "itemId",
    JobKind.ITEM_AFFINITY: "itemId",
    JobKind.ITEM_ATTRIBUTE_AFFINITY: "itemAttributes",
}
_INPUT_FIELDS = {
    JobKind.USER_PERSONALIZATION: ("userId",),
    JobKind.POPULARITY: ("userId",),
    JobKind.RELATED_ITEMS: ("itemId",),
    JobKind.PERSONALIZED_RANKING: ("userId", "itemList"),
    JobKind.ITEM_AFFINITY: ("itemId",),
    JobKind.ITEM_ATTRIBUTE_AFFINITY: ("itemAttributes",),
}
_MAX_LINES = {JobKind.ITEM_AFFINITY: 500, JobKind.ITEM_ATTRIBUTE_AFFINITY: 10}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# EventBridge Scheduler's recurring expressions ("Schedule types on EventBridge Scheduler")
SCHEDULE_PATTERN = r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+ \S+ \S+ \S+ \S+ \S+\))$"
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
DATASET_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:personalize:[a-z0-9-]+:\d{12}:dataset/[A-Za-z0-9][A-Za-z0-9_-]*/[A-Z_]+$"
)


class DatasetImport(_Strict):
    """A dataset import job before the batch job: ``dataKey`` (a file, or a folder ending in /) under
    ``datasets/`` in the stack's bucket, read by Personalize with the stack's service role."""

    datasetArn: Annotated[str, Field(pattern=DATASET_ARN_PATTERN)]
    dataKey: Annotated[str, Field(pattern=r"^datasets/\S*$", max_length=1000)]
    importMode: Literal["INCREMENTAL", "FULL"] = "INCREMENTAL"


class Train(_Strict):
    """A new solution version of the route's solution before the batch job (CreateSolutionVersion)."""

    trainingMode: Literal["FULL", "UPDATE"] = "FULL"


class Refresh(_Strict):
    """What runs before each of the route's batch jobs: import fresh data, then train, or either."""

    datasetImport: DatasetImport | None = None
    train: Train | None = None

    @model_validator(mode="after")
    def _something(self) -> Refresh:
        if self.datasetImport is None and self.train is None:
            raise ValueError("a refresh names datasetImport, train, or both")
        return self


MAX_TAGS = 50  # "Tagging Amazon Personalize resources": at most 50 tags per resource


# the API model's tagKey / tagValue shapes; "aws:" keys are reserved for AWS
def _not_aws(key: str) -> str:
    if key.lower().startswith("aws:"):
        raise ValueError(f"tag key {key!r}: keys starting with aws: are reserved for AWS")
    return key


TagKey = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[\w\s.:/=+\-@]*$"), AfterValidator(_not_aws)
]
TagValue = Annotated[str, Field(max_length=256, pattern=r"^[\w\s.:/=+\-@]*$")]
JOB_INPUT_BYTES = 1 << 30  # Personalize reads at most 1 GB of input per batch job (seed 001, limits)
JOB_INPUT_RECORDS = 50_000_000  # ... and at most 50M records per input file
MAX_RECOMMENDATIONS = 500  # a batch inference job's numResults
MAX_SEGMENT_USERS = 5_000_000  # a batch segment job's numResults (CreateBatchSegmentJob API)
THEME_INPUT_LINES = 100  # "Batch recommendations with themes from Content Generator": at most 100 items


class Themes(_Strict):
    """Content Generator themes for a related-items route (seed 003): each line's recommended items get a
    generated theme, named from the Items dataset's ``itemNameField`` (a textual field, e.g. TITLE)."""

    itemNameField: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    # items whose relevance to the theme is below this are left out of the record (counted)
    minThemeScore: Annotated[float, Field(ge=-1, le=1)] | None = None


class ItemExplorationConfig(_Strict):
    """User-Personalization exploration hyperparameters (sent to Personalize as strings)."""

    explorationWeight: Annotated[float, Field(ge=0, le=1)] | None = None
    explorationItemAgeCutOff: Annotated[float, Field(gt=0)] | None = None

    def to_api(self) -> dict[str, str]:
        values = {
            "explorationWeight": self.explorationWeight,
            "explorationItemAgeCutOff": self.explorationItemAgeCutOff,
        }
        return {name: f"{value:g}" for name, value in values.items() if value is not None}


class RankingInfluence(_Strict):
    """How much item popularity and freshness weigh in a user-personalization route's ranking, each 0-1
    (API reference, BatchInferenceJobConfig.rankingInfluence: keys POPULARITY | FRESHNESS, default 0)."""

    POPULARITY: Annotated[float, Field(ge=0, le=1)] | None = None
    FRESHNESS: Annotated[float, Field(ge=0, le=1)] | None = None

    def to_api(self) -> dict[str, float]:
        return {name: value for name, value in self.model_dump().items() if value is not None}


class Route(_Strict):
    name: Annotated[str, Field(pattern=ROUTE_NAME_PATTERN)]
    kind: JobKind
    # the model: one version, pinned; or a solution, whose newest ACTIVE version each job uses
    solutionVersionArn: Annotated[str, Field(pattern=SOLUTION_VERSION_ARN_PATTERN)] | None = None
    solutionArn: Annotated[str, Field(pattern=SOLUTION_ARN_PATTERN)] | None = None
    # items per line (inference, at most 500) or users per segment (segment jobs, at most 5,000,000)
    numResults: Annotated[int, Field(ge=1, le=MAX_SEGMENT_USERS)] | None = None
    filterArn: Annotated[str, Field(pattern=FILTER_ARN_PATTERN)] | None = None
    itemExplorationConfig: ItemExplorationConfig | None = None
    rankingInfluence: RankingInfluence | None = None  # user-personalization only
    # CSV uploads: the header that holds an input field, e.g. {userId: customer_ref} (case-insensitive)
    columns: dict[str, Annotated[str, Field(min_length=1, max_length=128)]] | None = None
    onInvalidLines: Literal["reject", "skip"] = "reject"
    # a job running longer than this since its upload counts in the JobsOverTimeLimit metric (an alarm)
    maxJobHours: Annotated[int, Field(ge=1, le=720)] = DEFAULT_MAX_JOB_HOURS
    # the most lines of an upload one batch job reads: a larger upload runs as several jobs (its parts)
    maxLinesPerJob: Annotated[int, Field(ge=1, le=JOB_INPUT_RECORDS)] = JOB_INPUT_RECORDS
    # most export chunks of the route (all its jobs) in flight at once: its groups on the FIFO chunks queue
    maxExportWorkers: Annotated[int, Field(ge=1, le=1000)] | None = None
    refresh: Refresh | None = None  # import fresh data and/or retrain before each batch job
    themes: Themes | None = None  # related-items only: a generated theme per line (Content Generator)
    # tags on every job of the route (the routes file's ``tags`` merged in), at most 50
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] | None = None
    # a job on a schedule (EventBridge Scheduler: cron(...), rate(...)), of the standing input key
    schedule: Annotated[str, Field(pattern=SCHEDULE_PATTERN)] | None = None
    # an IANA name, e.g. Europe/Paris (default UTC); the Scheduler checks the name itself
    scheduleTimezone: Annotated[str, Field(pattern=TIMEZONE_PATTERN)] | None = None
    standingInput: Annotated[str, Field(pattern=r"^input/[^/]+/\S*[^/]$", max_length=1024)] | None = None
    # each destination's settings live in its sinks/<type>/settings.py
    destination: Annotated[DynamoDBDestination | SesDestination, Field(discriminator="type")]

    @property
    def replaces_previous(self) -> bool:
        """Each export removes what its route's previous export reached and it does not: records
        (DynamoDB, by the planner's removal chunks) or topic subscriptions (SES, in its import)."""
        return self.destination.replacePrevious

    @model_validator(mode="after")
    def _one_model(self) -> Route:
        if (self.solutionVersionArn is None) == (self.solutionArn is None):
            raise ValueError(
                "name the model with solutionVersionArn (one version, pinned) or solutionArn (its newest "
                "ACTIVE version at each job), not both and not neither"
            )
        return self

    @model_validator(mode="after")
    def _results_within_the_kinds_bound(self) -> Route:
        if self.numResults is not None and not self.kind.is_segment and self.numResults > MAX_RECOMMENDATIONS:
            raise ValueError(
                f"numResults is at most {MAX_RECOMMENDATIONS} for {self.kind.value} "
                f"(segment jobs take up to {MAX_SEGMENT_USERS:,} users per segment)"
            )
        return self

    @model_validator(mode="after")
    def _themes_only_for_related_items(self) -> Route:
        if self.themes is not None and self.kind is not JobKind.RELATED_ITEMS:
            raise ValueError("themes are generated for related-items routes (a Similar-Items solution) only")
        return self

    @model_validator(mode="after")
    def _schedule_with_its_input(self) -> Route:
        if (self.schedule is None) != (self.standingInput is None):
            raise ValueError("a schedule runs the route's standingInput: give both, or neither")
        if self.standingInput is not None and not self.standingInput.startswith(f"input/{self.name}/"):
            raise ValueError(f"standingInput must be a key under input/{self.name}/ (the route's prefix)")
        if self.scheduleTimezone is not None and self.schedule is None:
            raise ValueError("scheduleTimezone needs a schedule")
        return self

    @model_validator(mode="after")
    def _training_needs_a_solution(self) -> Route:
        if self.refresh is not None and self.refresh.train is not None and self.solutionArn is None:
            raise ValueError(
                "refresh.train makes a new version of the route's solution: name it with solutionArn"
            )
        return self

    @model_validator(mode="after")
    def _exploration_only_for_user_personalization(self) -> Route:
        if self.itemExplorationConfig is not None and self.kind is not JobKind.USER_PERSONALIZATION:
            raise ValueError("itemExplorationConfig applies only to kind user-personalization")
        return self

    @model_validator(mode="after")
    def _columns_name_the_kinds_fields(self) -> Route:
        for field, header in (self.columns or {}).items():
            if field not in self.kind.input_fields:
                fields = ", ".join(self.kind.input_fields)
                raise ValueError(f"columns: {field!r} is not an input field of {self.kind.value} ({fields})")
            if header != header.strip() or "," in header or '"' in header:
                raise ValueError(f"columns: {header!r} is not a CSV header (no commas, quotes, edge spaces)")
        headers = [header.lower() for header in (self.columns or {}).values()]
        if len(set(headers)) != len(headers):
            raise ValueError("columns: two fields name the same header")
        return self

    @model_validator(mode="after")
    def _ranking_influence_only_for_user_personalization(self) -> Route:
        # a batch inference job's option (CreateBatchSegmentJob has no batchInferenceJobConfig); the API
        # reference names no recipe, so batchrecs sends it where it means something: a user's ranking
        if self.rankingInfluence is not None and self.kind is not JobKind.USER_PERSONALIZATION:
            raise ValueError("rankingInfluence applies only to kind user-personalization")
        return self

    @model_validator(mode="after")
    def _destination_fits_the_kind(self) -> Route:
        self.destination.check_route(self.kind.value, self.kind.is_segment)
        return self


class RoutesConfig(_Strict):
    # tags for every route's jobs (a route's own tags override these keys)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    routes: dict[str, Route]
    # routes turned off by an empty model variable (the template parameter left empty): name -> why
    _disabled: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def disabled(self) -> dict[str, str]:
        return dict(self._disabled)

    @model_validator(mode="before")
    @classmethod
    def _names_and_tags(cls, value: Any) -> Any:
        """Each route gets its name from its key, and the file's tags under its own."""
        if not isinstance(value, Mapping) or not isinstance(value.get("routes"), Mapping):
            return value
        shared = value.get("tags") or {}
        routes = {}
        for name, body in value["routes"].items():
            if isinstance(body, Mapping):
                tags = (
                    {**shared, **(body.get("tags") or {})}
                    if isinstance(shared, Mapping)
                    else body.get("tags")
                )
                body = {"name": name, **body, **({"tags": tags} if tags else {})}
            routes[name] = body
        return {**value, "routes": routes}

    def get(self, name: str) -> Route:
        if name in self._disabled:
            raise UnknownRouteError(f"route {name!r} is turned off: {self._disabled[name]}")
        try:
            return self.routes[name]
        except KeyError:
            known = ", ".join(sorted(self.routes))
            raise UnknownRouteError(f"no route named {name!r} (configured: {known})") from None

    def for_job(self, name: str, snapshot: str | None) -> Route:
        """The route a job was submitted with (its ``routeSnapshot``), so changing or deleting a route
        never changes a job already running; a job from before snapshots uses the route as it is now."""
        if snapshot:
            try:
                return Route.model_validate_json(snapshot)
            except ValidationError:
                pass  # written by another version of batchrecs: the current route it is
        return self.get(name)


def snapshot(route: Route) -> str:
    """The route as a job keeps it (see ``RoutesConfig.for_job``)."""
    return route.model_dump_json(exclude_none=True)


def load_routes(path: str | Path, environ: Mapping[str, str] | None = None) -> RoutesConfig:
    """Read and validate the routes file; every problem is a ``ConfigError`` naming route and field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read routes file {path}: {exc.strerror}") from exc
    return parse_routes(text, environ if environ is not None else os.environ, source=str(path))


def parse_routes(text: str, environ: Mapping[str, str], source: str = "routes") -> RoutesConfig:
    try:
        raw = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader, libyaml's when it has it
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("routes"), Mapping) or not raw["routes"]:
        raise ConfigError(f"{source}: expected a mapping with a non-empty 'routes' mapping")
    disabled = _turned_off(raw["routes"], environ)
    routes = {name: body for name, body in raw["routes"].items() if name not in disabled}
    expanded = _expand({**raw, "routes": routes}, environ, source, path=())
    try:
        config = RoutesConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid routes:\n" + _describe(exc)) from exc
    config._disabled = disabled
    return config


def _turned_off(routes: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Routes whose model is a variable set to nothing: its template parameter was left empty, which
    turns them off (a variable not set at all is still a mistake, reported when it is filled)."""
    off = {}
    for name, body in routes.items():
        for field in ("solutionVersionArn", "solutionArn"):
            value = body.get(field) if isinstance(body, Mapping) else None
            empty = (
                [v for v in _PLACEHOLDER.findall(value) if environ.get(v) == ""]
                if isinstance(value, str)
                else []
            )
            if empty:
                off[name] = (
                    f"its {field} ${{{empty[0]}}} is empty (the template parameter for it was left empty)"
                )
    return off


def _expand(value: Any, environ: Mapping[str, str], source: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        return {key: _expand(item, environ, source, (*path, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, environ, source, (*path, str(i))) for i, item in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ or not environ[name]:
                raise ConfigError(f"{source}: {_where(path)}: environment variable {name} is not set")
            return environ[name]

        return _PLACEHOLDER.sub(substitute, value)
    return value


def _where(path: tuple[str, ...]) -> str:
    if len(path) >= 2 and path[0] == "routes":
        field = ".".join(path[2:]) or "(route)"
        return f"route {path[1]!r} field {field!r}"
    return "field " + ".".join(path)


_UNIONS = {"destination", "address"}
_TAGS = {"dynamodb", "ses", "userId", "directory"}


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        parts = [str(part) for part in error["loc"]]
        # A discriminated union adds its tag ("destination.dynamodb.ttlDays"): name the field as written.
        location = tuple(
            part for i, part in enumerate(parts) if not (i and parts[i - 1] in _UNIONS and part in _TAGS)
        )
        lines.append(f"  {_where(location)}: {error['msg']}")
    return "\n".join(lines)
