"""Handlers sharing one process still sign as their own roles: the key follows the invocation's context."""

from __future__ import annotations

import contextvars
import threading

import boto3
from batchrecs_local.iam import identity


def _signing_key(session: boto3.Session) -> str:
    credentials = session.get_credentials()
    assert credentials is not None
    return credentials.get_frozen_credentials().access_key


def test_calls_are_signed_with_the_key_of_the_invocation_running_them() -> None:
    # Given the local cloud's credentials installed for every botocore session of the process
    identity.install("testing", "testing")
    session = boto3.Session(region_name="us-east-1")  # as the fast writer makes its own session
    # Then outside an invocation the harness's key signs, inside one the function's
    assert _signing_key(session) == "testing"
    with identity.acting_as(identity.function_key("ExportPlannerFunction")):
        assert _signing_key(session) == "LOCALFNEXPORTPLANNERFUNCTION"
        # and a thread started with a copy of the invocation's context signs as the function too
        seen: list[str] = []
        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(lambda: seen.append(_signing_key(session)),)
        )
        thread.start()
        thread.join()
        assert seen == ["LOCALFNEXPORTPLANNERFUNCTION"]
    assert _signing_key(session) == "testing"


def test_explicit_keys_are_left_alone() -> None:
    identity.install("testing", "testing")
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    with identity.acting_as(identity.function_key("SubmitFunction")):
        assert _signing_key(session) == "local"
