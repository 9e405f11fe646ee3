"""Faults the local endpoint injects on purpose (``make chaos``): a matching request gets the error AWS
would answer (throttling, a 5xx, S3's SlowDown), as the service's own protocol spells it, so the code
under test sees exactly the ClientError (or botocore retry) it would see on AWS."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    """Fail ``times`` requests of ``service`` (the signing name: dynamodb, s3, personalize...) whose
    operation is ``operation`` (the ``X-Amz-Target`` action; for S3 the method and a key prefix), after
    letting ``after`` of them through; only calls signed as ``caller`` (a function's key) if given, and
    only once a call ``armed_by`` (service, operation, key prefix) has gone through, if given."""

    service: str
    operation: str
    status: int
    code: str
    times: int = 1
    after: int = 0
    caller: str | None = None
    key_prefix: str = ""  # S3: the object key must start with this
    cut_after: int | None = None  # instead of an error: the real answer, its body cut after this many bytes
    armed_by: tuple[str, str, str] | None = None  # e.g. ("ses", "POST", "/v2/email/import-jobs")
    seen: int = 0
    injected: int = 0

    def matches(self, service: str, operation: str, caller: str, key: str) -> bool:
        return (
            service == self.service
            and operation == self.operation
            and (self.caller is None or caller == self.caller)
            and key.startswith(self.key_prefix)
        )


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults = []

    def take(self, environ: dict[str, Any], service: str, caller: str) -> Fault | None:
        """The fault this request meets, counted as injected; None to let it through."""
        if not self._faults:
            return None
        operation, key = _operation(environ, service)
        with self._lock:
            for fault in self._faults:
                if fault.armed_by is not None:
                    armed_service, armed_operation, armed_key = fault.armed_by
                    if (service, operation) == (armed_service, armed_operation) and key.startswith(armed_key):
                        fault.armed_by = None  # armed: from the next call on
                    continue
                if not fault.matches(service, operation, caller, key):
                    continue
                fault.seen += 1
                if fault.seen > fault.after and fault.injected < fault.times:
                    fault.injected += 1
                    return fault
        return None


def _operation(environ: dict[str, Any], service: str) -> tuple[str, str]:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1], ""
    if service == "s3":
        bucket, _, key = environ.get("PATH_INFO", "").lstrip("/").partition("/")
        method = environ.get("REQUEST_METHOD", "")
        name = {"GET": "GetObject", "PUT": "PutObject", "HEAD": "HeadObject"}.get(method, method)
        return (name if key else f"{name}Bucket"), key
    return environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
