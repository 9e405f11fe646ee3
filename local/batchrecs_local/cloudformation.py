"""CloudFormation's DescribeStacks for the local stack, so the operator commands find it by name as on AWS.

Only DescribeStacks is answered (query protocol, API version 2010-05-15), with the stack's outputs: the
resources are the local ones, created from the template by ``stack.deploy``. Serving this one call here
instead of through moto's CloudFormation keeps moto's CloudFormation (which imports every moto backend,
about 0.9 s) out of the local cloud's start. Any other CloudFormation call goes on to moto.

Errors are the service's: a name no stack has is ``ValidationError`` "Stack with id NAME does not exist"
(DescribeStacks, CloudFormation API reference)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


class LocalStacks:
    def __init__(self, region: str, account: str) -> None:
        self._region = region
        self._account = account
        self._stacks: dict[str, tuple[str, str, dict[str, str]]] = {}  # name -> (id, created, outputs)

    def put(self, name: str, outputs: dict[str, str]) -> None:
        stack_id = f"arn:aws:cloudformation:{self._region}:{self._account}:stack/{name}/{uuid.uuid4()}"
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        self._stacks[name] = (stack_id, created, dict(outputs))

    def handles(self, environ: dict[str, Any]) -> bool:
        """A DescribeStacks request: form-encoded, signed for the cloudformation service."""
        return (
            "/cloudformation/" in environ.get("HTTP_AUTHORIZATION", "")
            and environ.get("REQUEST_METHOD") == "POST"
            and self._form(environ).get("Action") == "DescribeStacks"
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        form = self._form(environ)
        wanted = form.get("StackName")
        names = [wanted] if wanted else sorted(self._stacks)
        # the API takes a stack's name or its id
        by_id = {stack_id: name for name, (stack_id, _, _) in self._stacks.items()}
        names = [by_id.get(name, name) for name in names]
        missing = [name for name in names if name not in self._stacks]
        if missing:
            body = (
                f'<ErrorResponse xmlns="{_NAMESPACE}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
                f"<Message>Stack with id {escape(missing[0])} does not exist</Message></Error>"
                "<RequestId>local</RequestId></ErrorResponse>"
            )
            return _respond(start_response, "400 Bad Request", body)
        members = "".join(self._member(name) for name in names)
        body = (
            f'<DescribeStacksResponse xmlns="{_NAMESPACE}"><DescribeStacksResult><Stacks>{members}</Stacks>'
            "</DescribeStacksResult><ResponseMetadata><RequestId>local</RequestId></ResponseMetadata>"
            "</DescribeStacksResponse>"
        )
        return _respond(start_response, "200 OK", body)

    def _member(self, name: str) -> str:
        stack_id, created, outputs = self._stacks[name]
        rendered = "".join(
            f"<member><OutputKey>{escape(key)}</OutputKey><OutputValue>{escape(value)}</OutputValue></member>"
            for key, value in outputs.items()
        )
        return (
            f"<member><StackName>{escape(name)}</StackName><StackId>{escape(stack_id)}</StackId>"
            f"<CreationTime>{created}</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>"
            f"<Outputs>{rendered}</Outputs></member>"
        )

    @staticmethod
    def _form(environ: dict[str, Any]) -> dict[str, str]:
        """The request's form, read once and kept in the environ (the body stays readable for moto)."""
        if "batchrecs.form" not in environ:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            pairs = parse_qs(body.decode("utf-8", "replace") + "&" + environ.get("QUERY_STRING", ""))
            environ["batchrecs.form"] = {key: values[0] for key, values in pairs.items()}
        form: dict[str, str] = environ["batchrecs.form"]
        return form


def _respond(start_response: Callable[..., Any], status: str, body: str) -> Iterable[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]
