"""The store's clock measured from its answers' ``Date`` headers, so an agent can tell whether
its own clock is off even when only one other node is left to compare with.

A ``Date`` header is whole seconds: the server's time was in ``[date, date + 1)`` when it
answered, and the answer was written between our sending (``received - elapsed``) and our
receiving. Each answer bounds the offset (server minus us) from both sides; the bounds of the
recent answers intersect, so a few answers give the offset within a fraction of a second.
Bounds that no longer intersect mean a clock was stepped: the estimate starts again.

Pure: the caller passes its own times.
"""

from __future__ import annotations

import collections
import email.utils
import threading


def parse_date(header: str | None) -> float | None:
    """An HTTP ``Date`` header as epoch seconds, or None when absent or unreadable."""
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class ServerTime:
    """The offset of a server's clock against ours, from the answers of the last ``keep``."""

    def __init__(self, keep: int = 30) -> None:
        self._lock = threading.Lock()
        self._bounds: collections.deque[tuple[float, float]] = collections.deque(maxlen=keep)

    def answer(self, date: float | None, received: float, elapsed: float) -> None:
        """One answer: its ``Date`` (epoch seconds, whole), our time on receiving it and how
        long it took from our sending."""
        if date is None or elapsed < 0:
            return
        low = date - received  # the server wrote at date or later, we read it at received
        high = date + 1.0 - (received - elapsed)  # before date + 1, after we sent
        with self._lock:
            lo, hi = self._range()
            if lo is not None and hi is not None and (low > hi or high < lo):
                self._bounds.clear()  # a clock was stepped: the old answers are void
            self._bounds.append((low, high))

    def _range(self) -> tuple[float | None, float | None]:
        if not self._bounds:
            return None, None
        return max(b[0] for b in self._bounds), min(b[1] for b in self._bounds)

    def offset(self) -> float | None:
        """The server's clock minus ours (s), or None before any answer with a date."""
        with self._lock:
            lo, hi = self._range()
        if lo is None or hi is None:
            return None
        return round((lo + hi) / 2, 2)
