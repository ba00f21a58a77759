"""An element's input: one bounded FIFO per sink pad under one lock. A producer blocks while the
pad it feeds is full (backpressure), polling the pipeline's halt flag so that stopping never
hangs. Producers wait on their own pad's condition and the consumer on another, so a consumer
taking one item wakes only the producer of that pad (no thundering herd with 100+ sources)."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Optional


class Inbox:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self.lock = threading.RLock()  # re-entered by the mux (pad add/remove under its own hold)
        self.cond = threading.Condition(self.lock)  # the consumer waits here for items
        self.pads: dict[str, collections.deque] = {}
        self._space: dict[str, threading.Condition] = {}  # producers of each pad wait here
        self._rr = 0  # round-robin start for fairness between pads
        self.leaky = 0  # queue's 'leaky': 1 drops the new item when full, 2 the oldest
        self.dropped = 0

    def add_pad(self, pad: str) -> None:
        with self.lock:
            if pad not in self.pads:
                self.pads[pad] = collections.deque()
                self._space[pad] = threading.Condition(self.lock)

    def remove_pad(self, pad: str) -> list:
        with self.lock:
            dq = self.pads.pop(pad, None)
            space = self._space.pop(pad, None)
            if space is not None:
                space.notify_all()
            self.cond.notify_all()
            return list(dq) if dq else []

    def clear(self) -> None:
        with self.lock:
            for pad, dq in self.pads.items():
                dq.clear()
                self._space[pad].notify_all()
            self.cond.notify_all()

    def wake_all(self) -> None:
        """Wake every waiter (the pipeline halted: loops should notice now, not at their next poll)."""
        with self.lock:
            for space in self._space.values():
                space.notify_all()
            self.cond.notify_all()

    def space_freed(self, pad: str) -> None:
        """Call with the lock held after taking items from ``pad`` directly (the mux)."""
        space = self._space.get(pad)
        if space is not None:
            space.notify()

    def put(self, pad: str, item: Any, halt: threading.Event, limit: Optional[int] = None,
            force: bool = False) -> bool:
        """Append ``item`` to ``pad``; waits while the pad holds ``min(capacity, limit)`` items.
        Returns False if the pipeline halted (the item is dropped) or the pad is gone."""
        cap = self.capacity if limit is None else max(1, min(self.capacity, limit))
        with self.lock:
            while True:
                dq = self.pads.get(pad)
                if dq is None:
                    return False
                if force or len(dq) < cap:
                    dq.append(item)
                    self.cond.notify()
                    return True
                if self.leaky == 1:
                    self.dropped += 1
                    return True
                if self.leaky == 2 and self._drop_oldest(dq):
                    dq.append(item)
                    self.cond.notify()
                    return True
                if halt.is_set():
                    return False
                self._space[pad].wait(0.1)

    def _drop_oldest(self, dq: collections.deque) -> bool:
        """Drops the oldest data item (never an end-of-stream event)."""
        from pysm.pipeline.items import EVENTS

        for i, it in enumerate(dq):
            if not isinstance(it, EVENTS):
                del dq[i]
                self.dropped += 1
                return True
        return False

    def get(self, timeout: float) -> Optional[tuple[str, Any]]:
        """The next item of any pad (round robin), or None after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                names = list(self.pads)
                n = len(names)
                for k in range(n):
                    pad = names[(self._rr + k) % n]
                    dq = self.pads[pad]
                    if dq:
                        self._rr = (self._rr + k + 1) % max(n, 1)
                        item = dq.popleft()
                        self._space[pad].notify()
                        return pad, item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def pending(self) -> int:
        with self.lock:
            return sum(len(d) for d in self.pads.values())
