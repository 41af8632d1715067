"""Cairn Console: a browser view of a Cairn server's threads, checkpoint timelines, durable runs and health.

A thin client of the public gRPC API (``cairn_client`` and the ``cairn.v1`` stubs only): it works against
any server that speaks the proto and adds no storage path. ``cairn console --target ADDR`` starts it.

Modules:
    cli       the ``cairn console`` subcommand (registered by the ``cairn`` command); also ``python -m cairn_console``
    app       the aiohttp application: routes, security middleware, JSON handlers
    views     what each page shows, built from gRPC calls (threads, timeline, checkpoint)
    actions   the state-changing calls behind ``--allow-writes`` (fork, delete, clear, prune)
    runs      durable runs: the list (ListRuns), a run with its attempts (GetRun), cancel (CancelRun)
    decode    states and write values made readable: JSON, LangGraph msgpack, or a labelled hex preview
    diff      a bounded structural diff of two decoded states
    health    the server's Prometheus metrics, sampled and turned into rates
    static/   the page: one HTML file, one script, one stylesheet, no build step
"""
