"""batchrecs: Amazon Personalize batch recommendations from an S3 drop to per-user records.

The package follows the data flow: ``formats`` (wire formats) -> ``routes`` (configuration) ->
``submit`` -> ``jobs`` (job store, state machine) -> ``monitor`` -> ``export`` -> ``sinks``.
``aws`` holds the thin boto3 adapters behind the ports the domain code uses.
"""
