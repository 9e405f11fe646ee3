"""Sinks: one folder per destination, each behind the ``Destination`` port (``batchrecs.ports``)."""
