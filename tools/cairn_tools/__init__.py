"""Tools that are clients of Cairn's gRPC API, built on the public `cairn_client` API only.

- `cairn_tools.admin`: the operator commands of `cairn` (threads, history, show, delete, copy, prune, health).
- `cairn_tools.runs`: `cairn runs ...`, the durable-runs commands.
- `cairn_tools.bench`: `cairn bench`, the load generator.
- `cairn_tools.cluster`: real redis-server / postgres / `cairn serve` processes for tests and benchmarks.

The console (`cairn console`) is a package of its own, `cairn_console`, on the same footing.
"""
