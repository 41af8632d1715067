"""Cairn server: a tiered checkpoint store for durable graphs, served over gRPC."""

__version__ = "0.1.0"
