"""`cairn bench`: a load generator for any CheckpointStore server (ours or another implementation of the proto).

Picked up by `cairn` through `register(subparsers)`. Nothing heavy is imported here: the histogram, plotting
and gRPC machinery load when the subcommand runs.
"""

from .cli import register

__all__ = ["register"]
