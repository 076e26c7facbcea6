"""The root of muster's exceptions: every error muster raises on purpose derives from it."""

from __future__ import annotations


class MusterError(Exception):
    """Base of all muster errors; the CLI prints these without a traceback."""


class InvalidEvent(MusterError):
    """A record that is not a valid event per SPEC §2; it goes to the DLQ with this text."""


class UnknownScope(MusterError):
    """A scope value the store has never seen (a mistyped district, say): answering zeros
    would look like a true figure, so the caller is told, with the values it knows."""
