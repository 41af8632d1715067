"""Reserved node names."""

START = "__start__"
"""The virtual node a run starts from: edges from START name the first nodes."""

END = "__end__"
"""The virtual node a run ends at: an edge to END (or no edge at all) stops that branch."""

RESERVED = frozenset({START, END})
