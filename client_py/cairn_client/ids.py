"""Time-ordered checkpoint ids; the scheme lives in the bottom package (`cairn.ids`), shared with the server."""

from cairn.ids import uuid7

__all__ = ["uuid7"]
