"""``pip install .`` gives a working ``batchrecs``.

What the two packages import is declared (the local cloud's packages as the ``local`` extra), the versions
CI pins are within the declared ranges, and a wheel built from this tree runs the offline and operator
commands from a directory outside any project without the local extra, while the local cloud's commands
say how to get it. The wheel is built with the pinned setuptools, without a download."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DECLARED = {canonicalize_name(Requirement(line).name) for line in PROJECT["dependencies"]}
LOCAL_EXTRA = {
    canonicalize_name(Requirement(line).name) for line in PROJECT["optional-dependencies"]["local"]
}
LOCAL_MODULES = ["moto", "werkzeug", "samtranslator", "numpy"]


def _third_party_imports(package: Path) -> dict[str, str]:
    """Top-level modules imported anywhere in ``package`` (not the standard library's, not ours): one
    importing file each."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("batchrecs", "batchrecs_local"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(
    ("package", "allowed"),
    [("layers/batchrecs/batchrecs", DECLARED), ("local/batchrecs_local", DECLARED | LOCAL_EXTRA)],
)
def test_every_module_a_package_imports_is_declared(package: str, allowed: set[str]) -> None:
    distributions = importlib.metadata.packages_distributions()
    undeclared = {
        module: importer
        for module, importer in _third_party_imports(ROOT / package).items()
        if not {canonicalize_name(name) for name in distributions.get(module, [module])} & allowed
    }

    assert undeclared == {}, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_the_versions_ci_pins_are_within_the_declared_ranges() -> None:
    pinned: dict[str, str] = {}
    for file in ("constraints.txt", "requirements-dev.txt", "layers/batchrecs/requirements.txt"):
        for line in (ROOT / file).read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                requirement = Requirement(line)
                pinned[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    declared = [
        Requirement(line) for line in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["local"]]
    ]

    outside = {
        str(requirement): pinned.get(canonicalize_name(requirement.name))
        for requirement in declared
        if pinned.get(canonicalize_name(requirement.name)) not in requirement.specifier
    }

    assert outside == {}, (
        f"declared ranges that leave out the version CI tests (or that CI does not pin): {outside}"
    )


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this tree, unpacked as pip would install it."""
    built = tmp_path_factory.mktemp("wheel")
    subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(built),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = built.glob("batchrecs-*.whl")
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    return target


def test_the_wheel_holds_both_packages_the_license_and_the_command(unpacked: Path) -> None:
    [info] = unpacked.glob("batchrecs-*.dist-info")
    metadata = (info / "METADATA").read_text()
    requires = {
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    }

    assert (unpacked / "batchrecs" / "operate" / "jobs.py").is_file()
    assert (unpacked / "batchrecs_local" / "cli.py").is_file()
    assert not (unpacked / "tests").exists()
    assert "batchrecs = batchrecs_local.cli:entry" in (info / "entry_points.txt").read_text()
    assert f"Version: {PROJECT['version']}" in metadata
    assert "License-Expression: MIT" in metadata
    assert list(info.rglob("LICENSE"))
    assert "Provides-Extra: local" in metadata
    assert any(line.startswith("boto3") for line in requires)
    assert any(line.startswith("moto[server]") and 'extra == "local"' in line for line in requires)


# Run in a fresh interpreter (-I: no PYTHONPATH, no working directory on sys.path) that finds batchrecs
# only in the unpacked wheel and cannot import the local extra's packages, in a directory that is no
# project: each command's exit code and the last line it wrote to stderr.
_INSTALLED = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2].split(","):
    sys.modules[name] = None  # as if not installed: import fails, find_spec finds nothing
import batchrecs_local.cli
import batchrecs.consumer, batchrecs.operate.jobs, batchrecs.operate.replay  # what the operator commands use
from importlib.util import find_spec
assert batchrecs_local.cli.__file__.startswith(sys.argv[1]), batchrecs_local.cli.__file__
assert find_spec("moto") is None
results = {}
for name, argv in json.loads(sys.argv[3]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = batchrecs_local.cli.main(argv)
        except SystemExit as exc:
            code = exc.code
    results[name] = [code, (out.getvalue() + err.getvalue()).strip().splitlines()[-1:]]
print(json.dumps(results))
"""


def test_the_installed_command_runs_without_the_local_extra_outside_a_project(
    unpacked: Path, tmp_path: Path
) -> None:
    users = tmp_path / "users.jsonl"
    users.write_text('{"userId": "1"}\n{"userId": "2"}\n')
    routes = tmp_path / "routes.yaml"
    routes.write_text((ROOT / "config" / "routes.yaml").read_text())
    commands = {
        "version": ["--version"],
        "validate by kind": ["validate", str(users), "--kind", "user-personalization"],
        "validate by route, routes given": [
            "validate",
            str(users),
            "--route",
            "home",
            "--routes",
            str(routes),
        ],
        "validate by route, no project": ["validate", str(users), "--route", "home"],
        "local run": ["local", "run", str(users), "--route", "home"],
        "demo": ["demo"],
    }

    ran = subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [
            sys.executable,
            "-I",
            "-c",
            _INSTALLED,
            str(unpacked),
            ",".join(LOCAL_MODULES),
            json.dumps(commands),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    results = json.loads(ran.stdout)

    assert results["version"] == [0, [f"batchrecs {PROJECT['version']}"]]
    assert results["validate by kind"][0] == 0
    assert results["validate by route, routes given"][0] == 0
    code, [said] = results["validate by route, no project"]
    assert code == 2
    assert "no template.yaml in" in said and "--template" in said
    for command in ("local run", "demo"):
        code, [said] = results[command]
        assert code == 2
        assert "pip install 'batchrecs[local]'" in said
        assert "moto" in said
