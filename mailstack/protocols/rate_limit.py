"""At most N requests a minute per client: the whitehole form's submissions (issue 21).

Why our own and not a proxy's: the page is served by the mail reactor itself, and each
submission costs a bounce parse, DNSBL lookups and a database write.  A sliding window of
the last ``limit`` submission times per source (an IPv4 address, an IPv6 /64: the same
sources as the login throttle, ``realm/throttle.source_of``), on the injected clock
(ARCHITECTURE C5).  A refused client is told when to come back (``Retry-After``).

Standards: RFC 6585 §4 (429 Too Many Requests), RFC 9110 §10.2.3 (Retry-After).
Security: memory is bounded: at most ``limit`` times per source and ``max_tracked``
sources; when the table is full the least recently seen source is dropped, so sources
whose window has passed go first (an attacker with many addresses can only make the limit
forget old sources, never grow the table).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

from mailstack.realm.throttle import source_of

WINDOW = 60.0


class PerClientRate:
    def __init__(self, clock, limit: int, *, window: float = WINDOW, max_tracked: int = 10_000):
        self.clock, self.limit, self.window, self.max_tracked = clock, limit, window, max_tracked
        self._seen: OrderedDict[str, deque] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, client_ip: str) -> float:
        """0 when the client may go on (the request is counted), else the seconds until it
        may try again (nothing counted)."""
        now, source = self.clock.seconds(), source_of(client_ip)
        times = self._seen.get(source)
        if times is None:
            times = self._seen[source] = deque(maxlen=self.limit)
            self._bound()
        self._seen.move_to_end(source)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return max(1.0, math.ceil(times[0] + self.window - now))
        times.append(now)
        return 0.0

    def _bound(self) -> None:
        # Least recently seen first (``admit`` moves each source to the end): those whose
        # window has passed go before any that still counts.
        while len(self._seen) > self.max_tracked:
            self._seen.popitem(last=False)
