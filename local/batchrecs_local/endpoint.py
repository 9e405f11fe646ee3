"""One local endpoint: moto for S3, DynamoDB, SQS, EventBridge, SNS and SES; our emulators for what
moto lacks: Personalize batch jobs (chosen by the request's ``X-Amz-Target``) and SES contact import
jobs and contact-list limits (chosen by the request's path)."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

import boto3
import botocore.loaders
import botocore.session
import orjson
from moto.server import DomainDispatcherApplication
from werkzeug.serving import BaseWSGIServer, make_server

from batchrecs_local import fast_paths
from batchrecs_local.cloudformation import LocalStacks
from batchrecs_local.faults import Faults
from batchrecs_local.iam import Authorizer, Denial
from batchrecs_local.iam.requests import HttpRequest
from batchrecs_local.personalize.emulator import TARGET_PREFIX, PersonalizeEmulator, Timings
from batchrecs_local.personalize.recommender import Dataset, Recommender
from batchrecs_local.ses.emulator import SesEmulator

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
_DYNAMODB_WRITES = {"UpdateItem", "PutItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_SQS_SENDS = {"AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch"}
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # noqa: S105 - not a secret


class Happenings:
    """Counts of something happening, in all and per subject (a table), that threads can wait on without
    missing one that happened after they last looked (an ``Event`` cleared by one waiter would hide it from
    the others). What happens to no subject in particular counts for every subject."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._all = 0  # everything that happened
        self._everyone = 0  # what happened to no subject in particular
        self._subjects: dict[str, int] = {}

    def _count(self, subject: str | None) -> int:
        if subject is None:
            return self._all
        return self._everyone + self._subjects.get(subject, 0)

    def seen(self, subject: str | None = None) -> int:
        with self._condition:
            return self._count(subject)

    def happened(self, *subjects: str) -> None:
        with self._condition:
            self._all += 1
            if not subjects:
                self._everyone += 1
            for subject in subjects:
                self._subjects[subject] = self._subjects.get(subject, 0) + 1
            self._condition.notify_all()

    def wait_after(self, seen: int, timeout: float, subject: str | None = None) -> None:
        """Return once something happened (to ``subject``) since ``seen`` was read, or after ``timeout``."""
        with self._condition:
            self._condition.wait_for(lambda: self._count(subject) != seen, timeout)


class LocalEndpoint:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        timings: Timings | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        share_models_in_process()
        fast_paths.install()
        self._host = host
        self._port = port or _free_port(host)
        self._moto = DomainDispatcherApplication(fast_paths.backend_app)
        # every signed call is checked against the caller's role from template.yaml (see iam/)
        self.iam = authorizer or Authorizer(ACCOUNT)
        # set when a job the monitor polls changes (a batch job, a training, an SES import): the local
        # runtime ticks the monitor then, not only on its schedule
        self.changed = threading.Event()
        self.messages_sent = Happenings()  # SQS messages sent through this endpoint, by queue name
        self.table_writes = Happenings()  # DynamoDB writes answered by this endpoint
        self.emulator = PersonalizeEmulator(
            Recommender(Dataset.generated()),
            lambda: self.client("s3"),
            REGION,
            ACCOUNT,
            timings or Timings(),
            authorizer=self.iam,
            changed=self.changed,
        )
        self.ses = SesEmulator(
            self.client,
            ACCOUNT,
            delay=min(0.5, (timings or Timings()).running),
            authorizer=self.iam,
            changed=self.changed,
        )
        self._server: BaseWSGIServer | None = None
        self._dynamodb_writes = threading.Lock()
        self.faults = Faults()  # injected on purpose by ``make chaos``
        self.stacks = LocalStacks(REGION, ACCOUNT)  # DescribeStacks, for the operator commands
        # Lambda's Invoke (asynchronous) of the stack's functions, when a runtime runs them
        self.invoke_function: Callable[[str, dict[str, Any]], bool] | None = None
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._session = sharing_models(region_name=REGION)  # one for every client: a session costs 15 ms
        self._clients_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> LocalEndpoint:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = make_server(self._host, self._port, self._dispatch, threaded=True)
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="local-endpoint", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.emulator.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def client(self, service: str, access_key: str | None = None) -> Any:
        """A client of this endpoint: the harness's (unchecked), or signing as ``access_key``'s role.

        Clients are made once per service and key and shared (botocore's clients are thread-safe), from one
        session whose loader of the service models every session of the process shares.
        """
        key = (service, access_key)
        with self._clients_lock:  # a session is not thread-safe: clients are made one at a time
            if key not in self._clients:
                self._clients[key] = self._session.client(
                    service,
                    endpoint_url=self.url,
                    aws_access_key_id=access_key or CREDENTIALS["aws_access_key_id"],
                    aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
                )
            return self._clients[key]

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        denial = self._authorize(environ)
        if denial is not None:
            return _error(environ, 403, "AccessDenied", denial.message(), start_response)
        signed = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", ""))
        if signed is not None:
            fault = self.faults.take(environ, signed.group("service"), signed.group("key"))
            if fault is not None and fault.cut_after is not None:
                return _cut(self._moto(environ, start_response), fault.cut_after)
            if fault is not None:
                return _error(environ, fault.status, fault.code, "injected by make chaos", start_response)
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(TARGET_PREFIX):
            return self.emulator(environ, start_response)
        invoked = _LAMBDA_INVOKE.fullmatch(environ.get("PATH_INFO", ""))
        if invoked and environ.get("REQUEST_METHOD") == "POST":
            return self._invoke(environ, unquote(invoked.group(1)), start_response)
        if self.ses.handles(environ):
            return self.ses(environ, start_response, forward=self._moto)
        if self.stacks.handles(environ):
            return self.stacks(environ, start_response)
        if environ.get("HTTP_X_AMZ_TARGET", "").split(".")[-1] in _DYNAMODB_WRITES:
            # DynamoDB applies each write atomically; moto's in-memory tables do not, so concurrent
            # UpdateItems on one item (workers counting chunks) could interleave and lose an ADD.
            tables = _written_tables(_request_json(environ))
            with self._dynamodb_writes:
                answered = list(self._moto(environ, start_response))
            self.table_writes.happened(*tables)  # whoever waits on a table's items looks again
            return answered
        if environ.get("HTTP_X_AMZ_TARGET", "") in _SQS_SENDS:
            url = (_request_json(environ) or {}).get("QueueUrl")
            answered = list(self._moto(environ, start_response))
            # the queue's pollers look again (all of them when the queue is not named)
            self.messages_sent.happened(*([url.rsplit("/", 1)[-1]] if isinstance(url, str) else []))
            return answered
        return self._moto(environ, start_response)

    def _invoke(
        self, environ: dict[str, Any], function: str, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Lambda Invoke, InvocationType Event only (what ``batchrecs redrive-events`` uses)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        if environ.get("HTTP_X_AMZ_INVOCATION_TYPE") != "Event":
            return _error(
                environ, 400, "InvalidParameterValueException", "only Event invocations", start_response
            )
        if self.invoke_function is None or not self.invoke_function(function, payload):
            message = f"Function not found: {function}"
            return _error(environ, 404, "ResourceNotFoundException", message, start_response)
        start_response("202 Accepted", [("Content-Length", "0")])
        return [b""]

    def _authorize(self, environ: dict[str, Any]) -> Denial | None:
        signed = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", ""))
        if signed is None:
            return None  # unsigned: moto's own API (reset), never a function's call
        access_key, region, service = signed.group("key"), signed.group("region"), signed.group("service")
        if not self.iam.check_needed(access_key):
            return None
        body = b""
        if service != "s3":  # API bodies are small JSON or form data; S3 bodies are left unread
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        http = HttpRequest(
            service=service,
            method=environ["REQUEST_METHOD"],
            path=path,
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers={
                key[5:].replace("_", "-").lower(): value
                for key, value in environ.items()
                if key.startswith("HTTP_")
            },
            body=body,
            region=region,
            account=ACCOUNT,
        )
        return self.iam.check(access_key, http)


def _request_json(environ: dict[str, Any]) -> dict[str, Any] | None:
    """The request's JSON body (None when it is not a JSON object), left in place for moto to read."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return request if isinstance(request, dict) else None


def _written_tables(request: dict[str, Any] | None) -> list[str]:
    """The tables a DynamoDB write names (none when its body is not JSON: then it counts for every table)."""
    if request is None:
        return []
    named = [request.get("TableName"), *(request.get("RequestItems") or {})]
    named += [each.get("TableName") for item in request.get("TransactItems") or [] for each in item.values()]
    return sorted({name.rsplit("/", 1)[-1] for name in named if isinstance(name, str)})  # a name or an ARN


_MODELS = fast_paths.ListedOnce(file_loader=fast_paths.OrjsonDataFiles())  # one for every local client


def share_models_in_process() -> None:
    """Give every botocore session this process makes the shared loader: moto's (it loads a service's
    whole model to list its regions), the X-Ray SDK's and a handler's own ``boto3.Session()`` would each
    read and parse endpoints.json and the models again (measured: about half a second of a local run)."""
    botocore.session.create_loader = _shared_loader


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    return _MODELS if not search_path_string else botocore.loaders.create_loader(search_path_string)


def sharing_models(**options: Any) -> boto3.Session:
    """A boto3 session whose service models come from the loader every local client shares: a model is
    read and parsed once per process (40-170 ms each), not once per session."""
    core = botocore.session.Session()
    core.register_component("data_loader", _MODELS)
    return boto3.Session(botocore_session=core, **options)


_LAMBDA_INVOKE = re.compile(r"/2015-03-31/functions/([^/]+)/invocations")
_CREDENTIAL = re.compile(
    r"Credential=(?P<key>[^/&]+)(?:/|%2F)\d{8}(?:/|%2F)(?P<region>[^/&%]+)(?:/|%2F)(?P<service>[^/&%]+)"
)


_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error", 503: "Slow Down"}


def _error(
    environ: dict[str, Any], status_code: int, code: str, message: str, start_response: Callable[..., Any]
) -> Iterable[bytes]:
    """An error as each protocol spells it, so botocore raises the ClientError AWS would cause.

    ``code`` ``AccessDenied`` is spelled per service as AWS does (AccessDeniedException for JSON APIs,
    AuthorizationError for query APIs); other codes are used as given."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    denied = code == "AccessDenied"
    status = f"{status_code} {_STATUS_TEXT.get(status_code, 'Error')}"
    if target.startswith("AmazonSQS."):
        body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-query-error", f"{code};Sender"),
        ]
    elif target:
        body = json.dumps(
            {"__type": "AccessDeniedException" if denied else code, "message": message}
        ).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1")]
        status = "400 Bad Request" if denied else status
    elif environ.get("PATH_INFO", "").startswith("/v2/email/"):
        body = json.dumps({"message": message}).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", f"{code}Exception" if denied else code),
        ]
    elif "Action=" in environ.get("QUERY_STRING", "") or environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        query_code = "AuthorizationError" if denied else code
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code>"
            f"<Message>{_xml(message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:  # S3
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{_xml(message)}</Message><RequestId>local</RequestId></Error>"
        ).encode()
        headers = [("Content-Type", "application/xml")]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:  # drain an unread body so the kept-alive connection stays usable
        environ["wsgi.input"].read(length)
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _cut(body: Iterable[bytes], limit: int) -> Iterable[bytes]:
    """The answer's first ``limit`` bytes, then the connection drops (as a network failure mid-stream):
    the client has read the headers and part of the body when the read fails."""
    sent = 0
    for part in body:
        if sent + len(part) >= limit:
            yield part[: limit - sent]
            raise ConnectionAbortedError("injected by make chaos: the connection dropped mid-stream")
        sent += len(part)
        yield part


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
