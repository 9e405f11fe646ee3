"""The local cloud's IAM: every call a function makes is checked against its role as template.yaml writes it.

``Authorizer`` knows the roles (translated and resolved from the template), which access key belongs to
which role, and the resource-based policies (bucket, queue and topic policies). The endpoint asks it
about each request before moto or an emulator sees it; the Personalize and SES emulators ask it whether
their service principal may read or write S3 for a job. A request signed with the harness's own key
(tests, the CLI uploading a file, the runtime polling its delivery queues) is not checked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from batchrecs_local.iam.policy import Decision, Policy, Principal, Request, UnsupportedPolicy, authorize
from batchrecs_local.iam.requests import HttpRequest, NotModelled, requests_for

ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}  # needs no permission ("GetCallerIdentity", STS API reference)


@dataclass
class Role:
    name: str  # the role's physical name
    arn: str
    policies: list[Policy] = field(default_factory=list)
    trust: Policy | None = None
    session: str = ""  # the function whose role it is (the session name in denial messages)

    @property
    def session_arn(self) -> str:
        account = self.arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.name}/{self.session or self.name}"


@dataclass(frozen=True)
class Denial:
    caller: str  # the function (or service) that was denied
    request: Request
    reason: str

    def message(self) -> str:
        who = f"User: {self.caller}" if self.caller.startswith("arn:") else self.caller
        return f"{who} is not authorized to perform: {self.request.describe()} {self.reason}"


class Authorizer:
    def __init__(self, account: str, enforce: bool = True) -> None:
        self.account = account
        self.enforce = enforce  # False: record what would be denied, deny nothing (the coverage report)
        self._keys: dict[str, Role] = {}
        self._roles: dict[str, Role] = {}
        self._resource_policies: dict[str, Policy] = {}
        self._bucket_keys: dict[str, str] = {}  # bucket -> the KMS key of its default encryption (SSE-KMS)
        self._lock = threading.Lock()
        self.denials: list[Denial] = []
        self.calls: dict[str, set[str]] = {}  # caller -> actions it asked for
        self.checked = 0  # requests judged

    # ------------------------------------------------------------------ configuration

    def add_role(self, role: Role, access_key: str | None = None) -> None:
        self._roles[role.arn] = role
        if access_key is not None:
            self._keys[access_key] = role

    def set_resource_policy(self, resource_arn: str, policy: Policy) -> None:
        self._resource_policies[resource_arn] = policy

    def set_bucket_key(self, bucket: str, key_arn: str) -> None:
        """``bucket`` encrypts new objects with ``key_arn`` (SSE-KMS default encryption)."""
        self._bucket_keys[bucket] = key_arn

    def bucket_key(self, bucket: str) -> str | None:
        return self._bucket_keys.get(bucket)

    def key_requests(self, request: Request, region: str, multipart: bool = False) -> list[Request]:
        """What an S3 object request also asks KMS for when its bucket encrypts with a KMS key ("Using
        server-side encryption with AWS KMS keys", S3 user guide): a read decrypts, a write generates a
        data key (a multipart upload also decrypts), each through S3 (kms:ViaService)."""
        bucket = request.resource.removeprefix("arn:aws:s3:::").split("/", 1)[0]
        key = self._bucket_keys.get(bucket)
        if key is None or "/" not in request.resource.removeprefix("arn:aws:s3:::"):
            return []
        via = {**request.context, "kms:ViaService": f"s3.{region}.amazonaws.com"}
        if request.action in ("s3:GetObject", "s3:GetObjectVersion"):
            return [Request("kms:Decrypt", key, via)]
        if request.action == "s3:PutObject":
            needs = [Request("kms:GenerateDataKey", key, via)]
            return [*needs, Request("kms:Decrypt", key, via)] if multipart else needs
        return []

    def role(self, arn: str) -> Role | None:
        return self._roles.get(arn)

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
            self._roles.clear()
            self._resource_policies.clear()
            self._bucket_keys.clear()
            self.denials.clear()
            self.calls.clear()

    # ------------------------------------------------------------------ calls by functions

    def check_needed(self, access_key: str) -> bool:
        """Is ``access_key`` a function's (whose calls are checked)?"""
        return access_key in self._keys

    def check(self, access_key: str | None, http: HttpRequest) -> Denial | None:
        """The denial of a signed API call, or None when it is allowed (or made by the harness)."""
        role = self._keys.get(access_key or "")
        if role is None:
            return None
        caller = role.session_arn
        try:
            requests = requests_for(http)
        except NotModelled as exc:
            placeholder = Request(f"{http.service}:?", http.path)
            return self._deny(
                Denial(caller, placeholder, f"because the local IAM check cannot read it ({exc})")
            )
        multipart = "uploads" in http.query or "uploadId" in http.query
        requests = [
            *requests,
            *(need for request in requests for need in self.key_requests(request, http.region, multipart)),
        ]
        for request in requests:
            self._record(role.session or role.name, request.action)
            if request.action in ALWAYS_ALLOWED:
                continue
            principal = Principal(arn=role.arn, account=self.account)
            decision = self._decide(request, principal, role.policies)
            if decision is not Decision.ALLOW:
                return self._deny(Denial(caller, request, _because(decision)))
        return None

    # ------------------------------------------------------------------ calls by AWS services

    def check_service(
        self,
        service: str,
        role_arn: str | None,
        requests: Iterable[Request],
        source: Mapping[str, str],
        as_role_only: bool = False,
    ) -> Denial | None:
        """May ``service`` (acting for ``source``: aws:SourceArn/aws:SourceAccount) make ``requests``?

        With ``role_arn`` the service first assumes that role (its trust policy decides), and each request
        needs the role's permission and the resource policy's (the way Personalize's guide requires both);
        without, the resource policy alone decides (a service principal writing to a queue or topic).
        ``as_role_only``: the service calls as the role's session, which the role's policies (and any
        resource policy, as for any caller of the account) decide (EventBridge Scheduler's targets).
        """
        principal = Principal(service=service, account=self.account)
        role = self._roles.get(role_arn or "") if role_arn else None
        if role_arn is not None:
            if role is None:
                return self._deny(
                    Denial(service, Request("sts:AssumeRole", role_arn), "because the role does not exist")
                )
            assume = Request("sts:AssumeRole", role.arn, dict(source))
            if role.trust is None or _safe(role.trust, assume, principal) is not Decision.ALLOW:
                return self._deny(
                    Denial(service, assume, "because the role's trust policy does not allow it")
                )
        for request in requests:
            request = Request(request.action, request.resource, {**request.context, **source})
            self._record(service, request.action)
            if as_role_only and role is not None:
                decision = self._decide(request, Principal(arn=role.arn, account=self.account), role.policies)
                if decision is not Decision.ALLOW:
                    return self._deny(Denial(f"{service} (as {role.name})", request, _because(decision)))
                continue
            resource_policy = self.resource_policy(request.resource)
            if resource_policy is None or _safe(resource_policy, request, principal) is not Decision.ALLOW:
                return self._deny(
                    Denial(service, request, "because no resource-based policy allows the service principal")
                )
            if role is not None:
                decision = self._decide(request, Principal(arn=role.arn, account=self.account), role.policies)
                if decision is not Decision.ALLOW:
                    return self._deny(Denial(f"{service} (as {role.name})", request, _because(decision)))
        return None

    # ------------------------------------------------------------------ internals

    def _decide(self, request: Request, principal: Principal, policies: list[Policy]) -> Decision:
        resource_policy = self.resource_policy(request.resource)
        try:
            return authorize(request, principal, policies, resource_policy)
        except UnsupportedPolicy:
            return Decision.EXPLICIT_DENY  # fail closed; the policy tests name the element

    def resource_policy(self, resource: str) -> Policy | None:
        """The policy of ``resource`` (or of the bucket an object is in), if it has one."""
        if resource in self._resource_policies:
            return self._resource_policies[resource]
        if resource.startswith("arn:aws:s3:::"):  # an object's bucket
            return self._resource_policies.get(resource.split("/", 1)[0])
        return None

    def callers(self) -> list[str]:
        """Who has called so far (functions by name, services as ``*.amazonaws.com``): a snapshot, as
        calls of functions still running may come in meanwhile."""
        with self._lock:
            return list(self.calls)

    def _record(self, caller: str, action: str) -> None:
        with self._lock:
            self.calls.setdefault(caller, set()).add(action)
            self.checked += 1

    def _deny(self, denial: Denial) -> Denial | None:
        with self._lock:
            self.denials.append(denial)
        return denial if self.enforce else None


def _safe(policy: Policy, request: Request, principal: Principal) -> Decision:
    try:
        return authorize(request, principal, (), policy)
    except UnsupportedPolicy:
        return Decision.EXPLICIT_DENY


def _because(decision: Decision) -> str:
    if decision is Decision.EXPLICIT_DENY:
        return "with an explicit deny"
    return "because no identity-based policy allows the action"
