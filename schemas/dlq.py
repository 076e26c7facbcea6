"""The DLQ record of SPEC §1: what was rejected, where it came from, and why."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict


class DeadLetter(BaseModel):
    """The DLQ value; the record keeps the original key."""

    model_config = ConfigDict(frozen=True)

    error: str
    topic: str
    partition: int
    offset: int
    raw: str | None

    @classmethod
    def of(
        cls, error: str, topic: str, partition: int, offset: int, value: bytes | None
    ) -> DeadLetter:
        raw = raw_text(value)
        return cls(error=error, topic=topic, partition=partition, offset=offset, raw=raw)


def raw_text(value: bytes | None) -> str | None:
    """The original value as text, or base64 when it is not UTF-8 (SPEC §1)."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii")
