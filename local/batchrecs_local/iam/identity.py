"""Which function is calling: per-invocation credentials for handlers that share one process.

On AWS each function signs its calls with its own role's credentials. Locally the functions run in one
process and build their clients with plain ``boto3.client(...)`` (or ``boto3.Session()``), so the
credentials botocore resolves are a ``CallerCredentials``: every time a request is signed it yields the
access key of the function whose invocation is running in this context (``acting_as``), or the
harness's key outside any invocation. The endpoint maps the key back to the function's role.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import boto3
import botocore.credentials
from botocore.credentials import CredentialProvider, Credentials, ReadOnlyCredentials

_caller: ContextVar[str | None] = ContextVar("batchrecs_local_caller", default=None)
_installed = threading.Lock()
_state: dict[str, Any] = {}


def function_key(logical_id: str) -> str:
    """The local access key id of a function (its role's credentials)."""
    return f"LOCALFN{logical_id.upper()}"


@contextmanager
def acting_as(access_key: str) -> Iterator[None]:
    """Calls signed in this context (and threads started with a copy of it) use ``access_key``."""
    token = _caller.set(access_key)
    try:
        yield
    finally:
        _caller.reset(token)


def current_key() -> str | None:
    return _caller.get()


class CallerCredentials(Credentials):
    """Credentials whose access key is the calling function's, read each time a request is signed."""

    def __init__(self, harness_key: str, secret_key: str) -> None:
        super().__init__(harness_key, secret_key)
        self._harness_key = harness_key

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return ReadOnlyCredentials(_caller.get() or self._harness_key, self.secret_key, None)


class _CallerProvider(CredentialProvider):
    METHOD = "batchrecs-local-caller"

    def __init__(self, credentials: CallerCredentials) -> None:
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def install(harness_key: str, secret_key: str) -> None:
    """Make every botocore session in this process resolve ``CallerCredentials`` first (idempotent)."""
    with _installed:
        credentials = CallerCredentials(harness_key, secret_key)
        original = _state.setdefault(
            "create_credential_resolver", botocore.credentials.create_credential_resolver
        )

        def create_credential_resolver(session: Any, *args: Any, **kwargs: Any) -> Any:
            resolver = original(session, *args, **kwargs)
            resolver.providers.insert(0, _CallerProvider(credentials))
            return resolver

        botocore.credentials.create_credential_resolver = create_credential_resolver
        boto3.DEFAULT_SESSION = None  # a default session made earlier resolved its credentials already
