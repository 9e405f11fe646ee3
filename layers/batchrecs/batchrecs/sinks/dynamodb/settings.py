"""A route's DynamoDB destination, as the routes file writes it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class DynamoDBDestination(BaseModel):
    """Per-user records in the stack's recommendations table, expiring after ``ttlDays``.

    ``maxWritesPerSecond`` caps the route's export across all workers (each worker takes an equal
    share); without it the writers start at ``INITIAL_WRITES_PER_SECOND`` each and adapt to throttling.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["dynamodb"]
    ttlDays: Annotated[int, Field(ge=1, le=3650)] = 30
    maxWritesPerSecond: Annotated[int, Field(ge=1)] | None = None
    # true: an export replaces the route's previous one; the records of ids that were in the previous
    # export's input and are not in this one are deleted (the default keeps them until their TTL)
    replacePrevious: bool = False

    def check_route(self, kind: str, is_segment: bool) -> None:
        """Any job kind can export to DynamoDB; replacing needs records keyed by the input's ids."""
        if self.replacePrevious and is_segment:
            raise ValueError(
                "replacePrevious needs records keyed by the input's ids; a segment route's records are "
                "keyed by user and segment (their users come from the output): leave it out"
            )
