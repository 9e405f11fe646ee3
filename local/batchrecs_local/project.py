"""Where a batchrecs project's files are: its template.yaml, and beside it the functions' code
(``functions/``, ``layers/``), the routes (``config/routes.yaml``) and the samples (``samples/``).

Imports nothing of the local cloud: the operator commands use it without the ``local`` extra."""

from __future__ import annotations

from pathlib import Path

from batchrecs.errors import ConfigError

TEMPLATE_FILE = "template.yaml"


def find_template(given: Path | None = None, start: Path | None = None) -> Path:
    """The project's template.yaml: ``given``, else the one in the working directory or the nearest
    directory above it. Never one next to the installed package: the functions' code, the routes and
    the samples are the project's, beside its template."""
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"no such template: {given}")
        return given.resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / TEMPLATE_FILE).is_file():
            return directory / TEMPLATE_FILE
    raise ConfigError(
        f"no {TEMPLATE_FILE} in {here} or a directory above it: run batchrecs in a clone of the "
        "batchrecs repository (or a project made from it), or pass --template PATH"
    )


def default_routes(template: Path | None = None) -> Path:
    """The project's routes file, beside its template."""
    return find_template(template).parent / "config" / "routes.yaml"
