"""``python -m batchrecs``: the command line (it lives with the local cloud, outside the Lambda layer)."""

from batchrecs_local.cli import main

raise SystemExit(main())
