"""Domain exceptions. Adapters translate botocore ``ClientError`` into these with ``raise ... from``."""


class BatchrecsError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigError(BatchrecsError):
    """The routes file or a function's settings are invalid; raised at startup."""


class UnknownRouteError(BatchrecsError):
    """A file was dropped under a prefix that names no configured route."""


class JobNotFoundError(BatchrecsError):
    """The jobs table has no record of a job an event refers to."""


class JobConflictError(BatchrecsError):
    """A conditional write on a job lost a race: the stored status was not the expected one."""


class PersonalizeLimitExceeded(BatchrecsError):
    """Personalize refused a job because too many are pending or running (retry later)."""


class PersonalizeUnavailable(BatchrecsError):
    """Personalize did not answer (throttling, a 5xx, a timeout): try the same request again later."""


class PersonalizeJobExists(BatchrecsError):
    """A job with this name already exists (an earlier delivery submitted it)."""


class PersonalizeRejected(BatchrecsError):
    """Personalize refused the request for good (bad input, unknown solution version...)."""


class PersonalizeRouteRefused(PersonalizeRejected):
    """The route asks for what the service refuses for good: a solution version, filter or role that
    does not exist, too many tags. Nothing to run until the route changes (REJECTED, not CREATE FAILED)."""


class ExportError(BatchrecsError):
    """The export of a finished job could not complete."""


class ObjectChangedError(ExportError):
    """An object is no longer the one expected: an upload replaced or deleted before it was read, or an
    output file changed between planning and reading a chunk of it (its version or ETag is gone)."""


class WriteRetriesExhausted(ExportError):
    """Items stayed unprocessed after every retry; they were not written."""

    def __init__(self, unprocessed: int, attempts: int, seconds: float) -> None:
        super().__init__(
            f"{unprocessed} items still unprocessed after {attempts} attempts "
            f"in {seconds:.0f} s that stored nothing"
        )
        self.unprocessed = unprocessed
        self.attempts = attempts


class DynamoDBError(BatchrecsError):
    """A BatchWriteItem call failed; ``retryable`` ones (throttling, 5xx, connection) are retried."""

    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable
