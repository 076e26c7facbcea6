"""The DLQ record of SPEC §1: what was rejected, where it came from, and why."""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, ValidationError

INGEST = "ingest"  # SPEC §1: the `topic` of the ingest gateway's DLQ records
IMPORT = "import"  # and of `muster import`'s (a line of an imported file)
OUTSIDE = (INGEST, IMPORT)  # letters of records that never were on a topic


class DeadLetter(BaseModel):
    """The DLQ value; the record keeps the original key. The ingest gateway's letters have
    `topic` "ingest" and no partition or offset (the record never was on a topic)."""

    model_config = ConfigDict(frozen=True)

    error: str
    topic: str
    partition: int | None
    offset: int | None
    raw: str | None

    @classmethod
    def of(
        cls,
        error: str,
        topic: str,
        partition: int | None,
        offset: int | None,
        value: bytes | None,
    ) -> DeadLetter:
        raw = raw_text(value)
        return cls(error=error, topic=topic, partition=partition, offset=offset, raw=raw)

    @classmethod
    def from_gateway(cls, value: bytes | None) -> DeadLetter | None:
        """A DLQ record the ingest gateway or `muster import` sent, or None for any other
        (the pipeline's own are stored when it sends them)."""
        try:
            letter = cls.model_validate_json(value or b"")
        except ValidationError:
            return None
        return letter if letter.topic in OUTSIDE else None


def raw_text(value: bytes | None) -> str | None:
    """The original value as text, or base64 when it is not UTF-8 (SPEC §1)."""
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii")
