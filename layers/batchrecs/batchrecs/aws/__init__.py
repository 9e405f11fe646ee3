"""Thin boto3 adapters implementing ``batchrecs.ports``. Clients are created lazily, on first use."""
