"""What the operator commands do with a deployed stack (or ``batchrecs local up``): find it by name, read
its jobs through the jobs table's indexes, upload and follow a file, re-drive its queues."""
