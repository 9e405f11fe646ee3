"""``python -m batchrecs_local``: the ``batchrecs`` command (it lives with the local cloud, outside the
Lambda layer, which ships only the ``batchrecs`` package)."""

from batchrecs_local.cli import entry

entry()
