"""Public building blocks for tools that speak the gRPC API below the client classes (the health check of
`cairn health`, the load generator of `cairn bench`): how a channel is configured and authenticated, how
states travel zstd-compressed, and the SaveRequest a `save_stream` iterator yields. The client classes use the same functions."""

from ._shared import DEFAULT_MAX_MESSAGE_BYTES, SERVICE, StateWire, call_metadata, channel_args, save_request

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "SERVICE", "StateWire", "call_metadata", "channel_args", "save_request"]
