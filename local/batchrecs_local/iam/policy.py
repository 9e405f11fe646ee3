"""IAM policy evaluation: the part of AWS's policy logic the template uses, written to fail closed.

What is evaluated, as the IAM User Guide's "Policy evaluation logic" describes it for one account:
an explicit ``Deny`` in any applicable policy wins; otherwise an ``Allow`` in the caller's identity
policies or in the resource's policy (for a principal it names) allows; otherwise the request is
implicitly denied. Statements match by ``Action``/``NotAction`` (case-insensitive, ``*`` and ``?``),
``Resource``/``NotResource`` (case-sensitive wildcards), ``Principal`` (resource policies) and
``Condition``. Condition operators: the String*, Arn*, Bool, Null and Numeric* families, each with
``...IfExists``; a key missing from the request makes a positive operator false and a negated one
(``StringNotEquals``, ``ArnNotLike``, ...) true ("IAM JSON policy elements: Condition operators").
An operator or element outside that set raises ``UnsupportedPolicy``: a policy the local cloud cannot
judge must not be judged "allowed".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

Policy = Mapping[str, Any]  # a policy document {"Version": ..., "Statement": [...]}


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


class UnsupportedPolicy(ValueError):
    """A policy element or condition operator this evaluator does not implement."""


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a role (``arn``) or an AWS service (``service``)."""

    arn: str | None = None
    service: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class Request:
    action: str  # e.g. "s3:GetObject"
    resource: str  # an ARN, or "*" for actions without a resource
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys, as named in policies

    def describe(self) -> str:
        return f"{self.action} on resource: {self.resource}"


def authorize(
    request: Request,
    principal: Principal,
    identity_policies: Iterable[Policy] = (),
    resource_policy: Policy | None = None,
) -> Decision:
    """The decision for one request by ``principal`` in the account that owns the resource."""
    identity = [evaluate(policy, request) for policy in identity_policies]
    resource = evaluate(resource_policy, request, principal) if resource_policy else Decision.IMPLICIT_DENY
    decisions = [*identity, resource]
    if Decision.EXPLICIT_DENY in decisions:
        return Decision.EXPLICIT_DENY
    if Decision.ALLOW in decisions:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY


def evaluate(policy: Policy, request: Request, principal: Principal | None = None) -> Decision:
    """One policy's decision; ``principal`` is given for resource-based policies (which name principals)."""
    allowed = False
    for statement in _statements(policy):
        if not _applies(statement, request, principal):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return Decision.EXPLICIT_DENY
        if effect != "Allow":
            raise UnsupportedPolicy(f"statement Effect must be Allow or Deny, found {effect!r}")
        allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


_KNOWN_ELEMENTS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}


def _statements(policy: Policy) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else list(statements)
    for statement in statements:
        unknown = set(statement) - _KNOWN_ELEMENTS
        if unknown:
            raise UnsupportedPolicy(f"statement elements not evaluated locally: {sorted(unknown)}")
    return statements


def _applies(statement: Mapping[str, Any], request: Request, principal: Principal | None) -> bool:
    if "Action" in statement:
        if not any(_glob(pattern, request.action, fold=True) for pattern in _list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_glob(pattern, request.action, fold=True) for pattern in _list(statement["NotAction"])):
            return False
    else:
        raise UnsupportedPolicy("a statement needs Action or NotAction")
    if "Resource" in statement:
        if not any(_glob(pattern, request.resource) for pattern in _list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_glob(pattern, request.resource) for pattern in _list(statement["NotResource"])):
            return False
    elif principal is None:  # identity policies must say which resources they cover
        raise UnsupportedPolicy("an identity policy statement needs Resource or NotResource")
    if principal is not None:
        if "NotPrincipal" in statement:
            raise UnsupportedPolicy("NotPrincipal is not evaluated locally")
        if not _principal_matches(statement.get("Principal"), principal):
            return False
    return all(
        _condition(operator, tests, request.context)
        for operator, tests in (statement.get("Condition") or {}).items()
    )


def _principal_matches(element: Any, principal: Principal) -> bool:
    if element is None:
        return False
    if element == "*":
        return True
    for kind, values in element.items():
        for value in _list(values):
            if kind == "Service" and principal.service == value:
                return True
            if kind == "AWS":
                if value == "*" and principal.arn is not None:
                    return True
                if principal.arn is not None and value == principal.arn:
                    return True
                # the account itself as principal ("arn:...:root"): the account delegates to IAM, and the
                # identity's own policies decide ("AWS JSON policy elements: Principal"; a key policy's
                # root statement "enables IAM policies", AWS KMS developer guide): it grants no one
    return False


# ------------------------------------------------------------------ conditions


def _condition(operator: str, tests: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    if operator.startswith(("ForAnyValue:", "ForAllValues:")):
        raise UnsupportedPolicy(f"set operator {operator} is not evaluated locally")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise UnsupportedPolicy(f"condition operator {operator} is not evaluated locally")
    compare, negated = _OPERATORS[base]
    for key, expected in tests.items():
        actual = _context_value(context, key)
        values = [str(value) for value in _list(expected)]
        if base == "Null":
            if not any((actual is None) == (value.lower() == "true") for value in values):
                return False
            continue
        if actual is None:
            if if_exists or negated:
                continue
            return False
        matched = any(compare(value, actual) for value in values)
        if matched == negated:
            return False
    return True


def _context_value(context: Mapping[str, str], key: str) -> str | None:
    # condition key names are case-insensitive
    lowered = key.lower()
    return next((value for name, value in context.items() if name.lower() == lowered), None)


def _string_like(pattern: str, value: str) -> bool:
    return _glob(pattern, value)


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike compares each of the six colon-separated parts; a wildcard stays inside its part."""
    expected, actual = pattern.split(":", 5), value.split(":", 5)
    if len(expected) != 6 or len(actual) != 6:
        return False
    return all(_glob(e, a) for e, a in zip(expected, actual, strict=True))


def _numeric(test: Any) -> Any:
    def compare(expected: str, actual: str) -> bool:
        try:
            return bool(test(float(actual), float(expected)))
        except ValueError:
            return False

    return compare


_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (lambda e, a: e == a, False),
    "StringNotEquals": (lambda e, a: e == a, True),
    "StringEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),  # IAM evaluates ArnEquals like ArnLike
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda e, a: e.lower() == a.lower(), False),
    "Null": (None, False),
    "NumericEquals": (_numeric(lambda a, e: a == e), False),
    "NumericNotEquals": (_numeric(lambda a, e: a == e), True),
    "NumericLessThan": (_numeric(lambda a, e: a < e), False),
    "NumericLessThanEquals": (_numeric(lambda a, e: a <= e), False),
    "NumericGreaterThan": (_numeric(lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, e: a >= e), False),
}


# ------------------------------------------------------------------ wildcards


def _glob(pattern: str, value: str, fold: bool = False) -> bool:
    return _compiled(pattern, fold).fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _compiled(pattern: str, fold: bool) -> re.Pattern[str]:
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else [value]
