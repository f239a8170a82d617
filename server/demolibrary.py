"""The demo library as rooms and room services see it: parsed demos from the store.

Parsed demos are kept for a short while so that a burst of quiz answers or a
room loading a demo does not re-read and re-validate the document each time;
publishing or removing a demo through the API forgets it at once.
"""

from __future__ import annotations

import time

from demos import Demo, Timeline, parse_demo, timeline_of
from store import Store

#: Seconds a parsed demo is reused (another server process may replace it meanwhile).
CACHE_SECONDS = 30.0
CACHE_SIZE = 64


class DemoLibrary:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, Demo]] = {}

    async def demo(self, demo_id: str) -> Demo | None:
        """The demo, or None if the library has none by that id."""
        cached = self._cache.get(demo_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        document = await self.store.get_demo(demo_id)
        if document is None:
            self._cache.pop(demo_id, None)
            return None
        demo, _ = parse_demo(document, f"{demo_id}.demo.json")
        if demo is None:  # stored demos were validated on the way in; an older format?
            return None
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[demo_id] = (now, demo)
        return demo

    async def timeline(self, demo_id: str) -> Timeline | None:
        demo = await self.demo(demo_id)
        return None if demo is None else timeline_of(demo_id, demo)

    def forget(self, demo_id: str) -> None:
        self._cache.pop(demo_id, None)
