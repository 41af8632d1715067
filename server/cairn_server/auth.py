"""Who is calling: bearer tokens mapped to tenants.

With no tokens configured every caller is the default tenant "". With tokens,
a call must carry `authorization: Bearer TOKEN` metadata; every key and row is
scoped by the token's tenant, so tenants never see each other's threads.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import grpc

from .config import Config
from cairn.errors import Unauthenticated


class Authenticator:
    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self._tokens = dict(tokens or {})

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    @classmethod
    def from_text(cls, text: str) -> Authenticator:
        """Parse `TOKEN TENANT` lines (blank lines and # comments ignored)."""
        tokens: dict[str, str] = {}
        first_line: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"auth tokens line {number}: expected 'TOKEN TENANT', got {len(parts)} fields")
            if parts[0] in tokens:
                # Which tenant a caller lands in must not depend on line order: refuse, without echoing the secret.
                raise ValueError(
                    f"auth tokens line {number}: this token is already listed on line {first_line[parts[0]]}; "
                    "each token must map to exactly one tenant"
                )
            tokens[parts[0]] = parts[1]
            first_line[parts[0]] = number
        return cls(tokens)

    @classmethod
    def from_file(cls, path: str) -> Authenticator:
        return cls.from_text(Path(path).read_text())

    @classmethod
    def from_config(cls, config: Config) -> Authenticator:
        """Tokens from --auth-tokens-file and --auth-tokens (',' or newline separated pairs) together."""
        text = Path(config.auth_tokens_file).read_text() if config.auth_tokens_file else ""
        if config.auth_tokens:
            text += "\n" + config.auth_tokens.replace(",", "\n")
        return cls.from_text(text)

    def tenant(self, context: grpc.aio.ServicerContext) -> str:
        if not self._tokens:
            return ""
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode("latin-1")
                break
        if not header:
            raise Unauthenticated(
                "this server requires a token: send `authorization: Bearer TOKEN` metadata", reason="MISSING_TOKEN"
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the authorization metadata must be `Bearer TOKEN`", reason="INVALID_TOKEN")
        for known, tenant in self._tokens.items():
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                return tenant
        raise Unauthenticated("the bearer token is not valid for this server", reason="INVALID_TOKEN")
