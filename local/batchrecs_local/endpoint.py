"""One local endpoint: moto for S3, DynamoDB, SQS, EventBridge, SNS and SES; our emulators for what
moto lacks: Personalize batch jobs (chosen by the request's ``X-Amz-Target``) and SES contact import
jobs and contact-list limits (chosen by the request's path)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import Any

import boto3
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from batchrecs_local.personalize.emulator import TARGET_PREFIX, PersonalizeEmulator, Timings
from batchrecs_local.personalize.recommender import Dataset, Recommender
from batchrecs_local.ses import SesEmulator

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
_DYNAMODB_WRITES = {"UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # noqa: S105 - not a secret


class LocalEndpoint:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, timings: Timings | None = None) -> None:
        self._host = host
        self._port = port or _free_port(host)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self.emulator = PersonalizeEmulator(
            Recommender(Dataset.generate()), lambda: self.client("s3"), REGION, ACCOUNT, timings or Timings()
        )
        self.ses = SesEmulator(self.client, delay=min(0.5, (timings or Timings()).running))
        self._server: BaseWSGIServer | None = None
        self._dynamodb_writes = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> LocalEndpoint:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(self._host, self._port, self._dispatch, threaded=True)
        threading.Thread(target=self._server.serve_forever, name="local-endpoint", daemon=True).start()
        return self

    def stop(self) -> None:
        self.emulator.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self.url)

    @cached_property
    def _session(self) -> boto3.Session:
        return boto3.Session(region_name=REGION, **CREDENTIALS)

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
            return self.emulator(environ, start_response)
        if self.ses.handles(environ):
            return self.ses(environ, start_response, forward=self._moto)
        if environ.get("HTTP_X_AMZ_TARGET", "").split(".")[-1] in _DYNAMODB_WRITES:
            # DynamoDB applies each write atomically; moto's in-memory tables do not, so concurrent
            # UpdateItems on one item (workers counting chunks) could interleave and lose an ADD.
            with self._dynamodb_writes:
                return list(self._moto(environ, start_response))
        return self._moto(environ, start_response)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
