"""State schemas: which keys a state has and how updates to each key are merged (reducers).

A schema is a TypedDict (or any annotated class) whose fields may carry a reducer with
``Annotated[type, reducer]``; a dict ``{key: reducer_or_None}``; or None / ``dict`` for
"any keys, last write wins". A reducer is ``fn(current, update) -> new``, e.g.
``operator.add`` to append to a list.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

Reducer = Callable[[Any, Any], Any]


class InvalidUpdateError(ValueError):
    """A node returned something that is not a state update (a mapping of known keys)."""


class StateSchema:
    """The keys of a state and the reducer of each (None: the update replaces the value)."""

    def __init__(self, schema: Any = None) -> None:
        self.schema = schema
        self.reducers: dict[str, Reducer | None] = {}
        self.open = False  # True: any key may be written
        if schema is None or schema is dict:
            self.open = True
        elif isinstance(schema, Mapping):
            for key, reducer in schema.items():
                if reducer is not None and not callable(reducer):
                    raise TypeError(f"the reducer of state key {key!r} must be callable, not {reducer!r}")
                self.reducers[str(key)] = reducer
        elif hasattr(schema, "__annotations__"):
            for key, hint in typing.get_type_hints(schema, include_extras=True).items():
                self.reducers[key] = _reducer_of(hint)
        else:
            raise TypeError(f"unsupported state schema {schema!r}: use a TypedDict, a dict of reducers, or None")

    def apply(self, state: Mapping[str, Any], update: Mapping[str, Any] | None) -> dict[str, Any]:
        """A new state: `update` merged into `state` key by key."""
        new = dict(state)
        for key, value in (update or {}).items():
            if not self.open and key not in self.reducers:
                raise InvalidUpdateError(
                    f"state has no key {key!r} (keys: {sorted(self.reducers)}); add it to the schema"
                )
            reducer = self.reducers.get(key)
            new[key] = reducer(new[key], value) if reducer is not None and key in new else value
        return new

    def check_update(self, node: str, update: Any) -> dict[str, Any] | None:
        """What a node returned, checked: None or a mapping with string keys."""
        if update is None:
            return None
        if not isinstance(update, Mapping):
            raise InvalidUpdateError(
                f"node {node!r} returned {type(update).__name__}; return a dict of state updates (or None)"
            )
        unknown = [k for k in update if not isinstance(k, str) or (not self.open and k not in self.reducers)]
        if unknown:
            raise InvalidUpdateError(
                f"node {node!r} wrote unknown state key(s) {unknown!r}; the schema has {sorted(self.reducers)}"
            )
        return dict(update)


def _reducer_of(hint: Any) -> Reducer | None:
    if typing.get_origin(hint) is typing.Annotated:
        for meta in reversed(typing.get_args(hint)[1:]):
            if callable(meta):
                return meta  # type: ignore[no-any-return]
    return None


def dumps(value: Any, what: str) -> bytes:
    """Compact UTF-8 JSON, the cross-language state format (state_type "json")."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable (state_type 'json'): {exc}") from None


def loads(raw: bytes, state_type: str) -> Any:
    if state_type not in ("", "json"):
        raise TypeError(f"checkpoint state_type is {state_type!r}; cairn_client.graph reads only 'json' states")
    return json.loads(raw) if raw else {}
