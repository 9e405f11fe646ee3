"""Shared test setup: no real AWS credentials or endpoints can ever be used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aws_xray_sdk.core  # noqa: F401  # opens an (unused) UDP socket at import: do it before sockets are blocked
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SOLUTION_ARNS = {
    "USER_PERSONALIZATION_SOLUTION_VERSION_ARN": "arn:aws:personalize:us-east-1:123456789012:solution/home/1a2b3c4d",
    "RELATED_ITEMS_SOLUTION_VERSION_ARN": "arn:aws:personalize:us-east-1:123456789012:solution/sims/5e6f7a8b",
    "PERSONALIZED_RANKING_SOLUTION_VERSION_ARN": "arn:aws:personalize:us-east-1:123456789012:solution/rank/9c0d1e2f",
    "ITEM_AFFINITY_SOLUTION_VERSION_ARN": "arn:aws:personalize:us-east-1:123456789012:solution/affinity/3a4b5c6d",
    "ITEM_ATTRIBUTE_AFFINITY_SOLUTION_VERSION_ARN": "arn:aws:personalize:us-east-1:123456789012:solution/attr/7e8f9a0b",
    "USER_PERSONALIZATION_SOLUTION_ARN": "arn:aws:personalize:us-east-1:123456789012:solution/home",
}
# Every ${NAME} the shipped routes file uses, as the template sets them on the functions.
ROUTES_ENV = {
    **SOLUTION_ARNS,
    "SES_CONTACT_LIST_NAME": "batchrecs",
    "USER_DIRECTORY_TABLE": "batchrecs-users",
}


@pytest.fixture(scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local cloud's cache of translated templates, one for the session: not the user's own."""
    return tmp_path_factory.mktemp("batchrecs-cache")


@pytest.fixture(autouse=True)
def _offline_aws(monkeypatch: pytest.MonkeyPatch, _cache_dir: Path) -> None:
    monkeypatch.setenv("BATCHRECS_CACHE_DIR", str(_cache_dir))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchrecs-tests")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "batchrecs-tests")
    for name, value in ROUTES_ENV.items():
        monkeypatch.setenv(name, value)


def shipped_routes_with(folder: Path, route: str, **fields: object) -> Path:
    """A copy of the shipped routes file in ``folder`` with ``fields`` set on ``route``."""
    routes = yaml.safe_load((ROOT / "config" / "routes.yaml").read_text())
    routes["routes"][route].update(fields)
    path = folder / "routes.yaml"
    path.write_text(yaml.safe_dump(routes))
    return path


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` cut into chunks of ``size`` bytes, as a streamed S3 body would deliver it."""
    for start in range(0, len(data), size):
        yield data[start : start + size]
