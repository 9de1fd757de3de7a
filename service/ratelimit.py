"""The sliding window: what a decision says, the headers it gives, and the in-process fallback window.

The shared window is the Lua in service/lua/window.lua; LocalWindow is the same algorithm in Python, used
only while Redis is unreachable (then each replica counts alone: R replicas admit up to R×N).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import Scope

from service.tokencache import WINDOW_SECONDS, WINDOW_US


@dataclass(frozen=True, slots=True)
class Decision:
    """One request's place in its window; times in microseconds since the Unix epoch."""

    allowed: bool
    limit: int
    remaining: int  # after this request
    reset_us: int  # when remaining next goes up (the oldest admitted request leaves the window)
    now_us: int

    @property
    def retry_after(self) -> int:
        """Whole seconds until a request would be admitted; at least 1."""
        return max(1, math.ceil((self.reset_us - self.now_us) / 1_000_000))

    def headers(self) -> list[tuple[bytes, bytes]]:
        reset_in = max(0, math.ceil((self.reset_us - self.now_us) / 1_000_000))
        out = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset_us / 1_000_000)).encode()),
            (b"ratelimit-policy", f'"token";q={self.limit};w={WINDOW_SECONDS}'.encode()),
            (b"ratelimit", f'"token";r={self.remaining};t={reset_in}'.encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


def from_script(limit: int, allowed: int, remaining: int, reset_us: int, now_us: int) -> Decision:
    return Decision(bool(allowed), limit, int(remaining), int(reset_us), int(now_us))


class LocalWindow:
    """The window of window.lua, per key, in this process (the fallback while Redis is unreachable)."""

    def __init__(self, clock: Callable[[], int] = lambda: time.time_ns() // 1000,
                 max_keys: int = 100_000) -> None:
        """`clock`: microseconds since the Unix epoch."""
        self.clock = clock
        self.max_keys = max_keys
        self._admitted: OrderedDict[str, deque[int]] = OrderedDict()

    def hit(self, key: str, limit: int, *, add: bool = True) -> Decision:
        now = self.clock()
        times = self._admitted.get(key)
        if times is None:
            times = self._admitted[key] = deque()
            self._forget_oldest_keys()
        self._admitted.move_to_end(key)
        while times and times[0] <= now - WINDOW_US:
            times.popleft()
        allowed = len(times) < limit
        if allowed and add:
            times.append(now)
        reset = times[0] + WINDOW_US if times else now
        return Decision(allowed, limit, max(0, limit - len(times)), reset, now)

    def _forget_oldest_keys(self) -> None:
        # bounded memory under a flood of addresses; forgetting a key can only admit more, never fewer
        while len(self._admitted) > self.max_keys:
            self._admitted.popitem(last=False)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(s, strict=False) for s in specs)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the rightmost address
    in X-Forwarded-For that is not a trusted proxy (what a client prepends itself is never believed)."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
    hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def forwarded_https(scope: Scope, trusted: tuple[Network, ...]) -> bool:
    """Whether the client reached us over HTTPS: our own scheme, or a trusted proxy's X-Forwarded-Proto."""
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not trusted or not client or not _in(client[0], trusted):
        return False
    proto = [v for k, v in scope["headers"] if k == b"x-forwarded-proto"]
    # the proxy nearest us wrote the last value
    return bool(proto) and proto[-1].split(b",")[-1].strip().lower() == b"https"

