"""A deployed stack as the operator commands find it: its outputs, by name (CloudFormation
``DescribeStacks``), so no command needs a raw bucket, table or queue name.

The name: ``--stack``, else ``BATCHRECS_STACK``, else ``stack_name`` of samconfig.toml (the environment's
``global`` or ``deploy`` parameters), else ``batchrecs``. ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``)
points every client at another endpoint: ``batchrecs local up`` answers for its stack the same way.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from batchrecs.errors import BatchrecsError

DEFAULT_STACK = "batchrecs"
STACK_VARIABLE = "BATCHRECS_STACK"


class StackError(BatchrecsError):
    """The stack cannot be found or is not a batchrecs stack (a usage error: exit code 2)."""


def stack_name(
    given: str | None = None,
    samconfig: Path = Path("samconfig.toml"),
    config_env: str = "default",
    environ: Mapping[str, str] = os.environ,
) -> str:
    """The stack a command works on (see the module's docstring for the order)."""
    if given:
        return given
    if environ.get(STACK_VARIABLE):
        return environ[STACK_VARIABLE]
    if samconfig.is_file():
        config = tomllib.loads(samconfig.read_text()).get(config_env, {})
        for section in ("global", "deploy"):
            name = config.get(section, {}).get("parameters", {}).get("stack_name")
            if name:
                return str(name)
    return DEFAULT_STACK


@dataclass
class Stack:
    name: str
    outputs: dict[str, str]
    endpoint_url: str | None = None
    _session: Any = field(default=None, repr=False)

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise StackError(
                f"stack {self.name} has no output {key}: is it a batchrecs stack of this version?"
            )
        return self.outputs[key]

    def model_variables(self) -> dict[str, str]:
        """The routes' model variables as the stack's functions have them (its ``ModelVariables``
        output): a variable left empty turns off the routes that name it. Each solution version's
        solution too (``*_SOLUTION_ARN``, for ``solutionArn`` routes). Empty for a stack without it."""
        listed = self.outputs.get("ModelVariables", "")
        variables = dict(pair.split("=", 1) for pair in listed.split(",") if "=" in pair)
        for name, version in list(variables.items()):
            if name.endswith("_SOLUTION_VERSION_ARN"):
                solution = name.removesuffix("_VERSION_ARN") + "_ARN"
                variables[solution] = version.rsplit("/", 1)[0] if version else ""
        return variables

    def client(self, service: str) -> Any:
        session = self._session or boto3.Session()
        return session.client(service, endpoint_url=self.endpoint_url)


def find_stack(name: str, endpoint_url: str | None = None, session: Any = None) -> Stack:
    """The stack's outputs; ``StackError`` when there is no such stack."""
    client = (session or boto3.Session()).client("cloudformation", endpoint_url=endpoint_url)
    try:
        [described] = client.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ValidationError":
            raise StackError(
                f"no stack {name} ({exc.response['Error']['Message']}): give --stack NAME, set "
                f"{STACK_VARIABLE}, or deploy it (sam deploy)"
            ) from exc
        raise
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    return Stack(name, outputs, endpoint_url, session)
