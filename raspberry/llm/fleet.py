"""A provider served by several endpoints (e.g. 8 vLLM servers of one model): each request goes
to the endpoint with the fewest requests outstanding; an endpoint that fails (no connection, a
timeout, a 5xx) is taken out for a cooldown and then tried again. Each endpoint has its own
rate limits, keyed by its URL (gateway.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from raspberry.llm.providers import Provider


class Fleet:
    def __init__(
        self,
        endpoints: list[Provider],
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.endpoints = endpoints
        self._cooldown_s, self._clock = cooldown_s, clock
        self._outstanding = {id(e): 0 for e in endpoints}
        self._out_until = {id(e): 0.0 for e in endpoints}

    @property
    def first(self) -> Provider:
        """The endpoint for calls outside the request path (batch APIs)."""
        return self.endpoints[0]

    def pick(self) -> Provider:
        """The endpoint with the fewest outstanding requests among those in service; when every
        one is out, the one back soonest. Counted as outstanding until `done`."""
        now = self._clock()
        live = [e for e in self.endpoints if self._out_until[id(e)] <= now]
        chosen = (
            min(live, key=lambda e: self._outstanding[id(e)])
            if live
            else min(self.endpoints, key=lambda e: self._out_until[id(e)])
        )
        self._outstanding[id(chosen)] += 1
        return chosen

    def done(self, endpoint: Provider, failed: bool) -> None:
        """The request ended; a failure takes the endpoint out for the cooldown."""
        self._outstanding[id(endpoint)] -= 1
        if failed and len(self.endpoints) > 1:
            self._out_until[id(endpoint)] = self._clock() + self._cooldown_s

    def out_of_service(self) -> list[str]:
        now = self._clock()
        return [e.base_url or e.name for e in self.endpoints if self._out_until[id(e)] > now]

    async def close(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.close()
