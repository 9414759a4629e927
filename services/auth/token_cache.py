"""Claims of JWTs already verified, kept until the token expires.

Verifying a token (HMAC or RSA signature, then the JSON claims) costs tens of microseconds per
request, and a client sends the same token for its whole lifetime. A token's signature and
claims cannot change, so once verified its claims hold until `exp`; what can change is the
account behind it, and that is checked on every request anyway (services.auth.epochs). Entries
are keyed by the token's SHA-256 (the process never keeps the tokens themselves), only valid
tokens are cached, and the least recently used entry goes when the cache is full.
"""

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

Claims = dict[str, Any]


class VerifiedTokens:
    """A bounded, expiring cache in front of a token verifier."""

    def __init__(
        self,
        verify: Callable[[str], Claims],
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verify = verify
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Claims, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def verify(self, token: str) -> Claims:
        """The token's claims (do not modify them); the verifier's error when it is invalid."""
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        if entry is not None:
            claims, expires_at = entry
            if self._clock() < expires_at:  # PyJWT refuses a token once exp <= now
                self._entries.move_to_end(key)
                return claims
            del self._entries[key]
        claims = self._verify(token)  # raises for an invalid, expired or foreign token
        self._entries[key] = (claims, float(claims["exp"]))
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return claims
