"""A route's SES destination, as the routes file writes it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class IdIsAddress(BaseModel):
    """The user id is the e-mail address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["userId"]


class DirectoryLookup(BaseModel):
    """E-mail addresses from a user directory: a DynamoDB table keyed by user id (read with BatchGetItem)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["directory"]
    table: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{3,255}$")]
    keyAttribute: Annotated[str, Field(min_length=1)] = "userId"
    emailAttribute: Annotated[str, Field(min_length=1)] = "email"


TOPIC_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
MAX_TOPICS = 20  # SES: one contact list per account, at most 20 topics


class SesDestination(BaseModel):
    """Contacts in the account's SES contact list, subscribed to a topic (an e-mail list).

    Inference routes name one ``topic``; segment routes map each segment (the itemId, or the
    attribute expression as written in the input) to a topic with ``segmentTopics``. Contacts are
    loaded with SES import jobs of at most ``maxContactsPerImport`` contacts each; a contact that
    unsubscribed from everything or opted out of the topic stays opted out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ses"]
    contactList: Annotated[str, Field(min_length=1, max_length=64)]
    topic: Annotated[str, Field(pattern=TOPIC_NAME_PATTERN)] | None = None
    segmentTopics: dict[str, Annotated[str, Field(pattern=TOPIC_NAME_PATTERN)]] | None = None
    address: Annotated[IdIsAddress | DirectoryLookup, Field(discriminator="type")]
    maxContactsPerImport: Annotated[int, Field(ge=1, le=1_000_000)] = 1_000_000
    # true: the route owns its topics; an export replaces the previous one, so contacts subscribed to
    # them that this export does not reach lose that subscription (their opt-outs stay)
    replacePrevious: bool = False

    @property
    def topics(self) -> set[str]:
        return {self.topic} if self.topic else set((self.segmentTopics or {}).values())

    def check_route(self, kind: str, is_segment: bool) -> None:
        """Segment routes map segments to topics; other kinds name one topic; at most 20 topics."""
        if is_segment:
            if self.topic is not None or not self.segmentTopics:
                raise ValueError(
                    "an SES destination of a segment route maps segments to topics (segmentTopics)"
                )
        elif self.segmentTopics is not None or self.topic is None:
            raise ValueError(f"an SES destination of a {kind} route names one topic")
        if len(self.topics) > MAX_TOPICS:
            raise ValueError(f"SES contact lists hold at most {MAX_TOPICS} topics")
