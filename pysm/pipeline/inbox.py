"""An element's input: one bounded FIFO per sink pad under one lock. A producer blocks while the
pad it feeds is full (backpressure), polling the pipeline's halt flag so that stopping never
hangs; a waiting producer is woken once its pad has drained to half its capacity. Producers wait on their own pad's condition and the consumer on another, so a consumer
taking one item wakes only the producer of that pad (no thundering herd with 100+ sources).

A consumer that needs several items before it can act (the mux completing a batch) can ``arm`` a
wake-up: producers then wake it only once that many items arrived on the pads it still takes from,
instead of on every item (which cost the mux a scan of all its pads per frame)."""

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
        self._want: Optional[dict[str, int]] = None  # armed: pad -> items it may still contribute
        self._need = 0  # armed: items to arrive on wanted pads before the consumer is woken

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
        """Call with the lock held after taking items from ``pad`` directly (the mux).

        The producer is woken once the pad has drained to half its capacity, not per item taken:
        it then refills several slots per wake-up (a source decoding bursts of frames would
        otherwise wait and wake once per frame)."""
        dq = self.pads.get(pad)
        if dq is not None and len(dq) <= self.capacity // 2:
            space = self._space.get(pad)
            if space is not None:
                space.notify()

    def arm(self, want: dict[str, int], need: int) -> None:
        """Call with the lock held before waiting on ``cond``: wake the consumer only when ``need``
        data items arrived on the pads of ``want`` (at most ``want[pad]`` counted per pad). End-of-
        stream events, pad changes and ``wake_all`` still wake it at once. Disarmed by the wake-up
        or by ``disarm``; ``need`` beyond what ``want`` can supply is capped (never a lost wake-up)."""
        need = min(need, sum(want.values()))
        if need <= 0:
            self._want = None
            return
        self._want, self._need = want, need

    def disarm(self) -> None:
        """Back to waking the consumer on every item (call with the lock held)."""
        self._want = None

    def _arrived(self, pad: str) -> None:
        want = self._want
        if want is None:
            self.cond.notify()
            return
        left = want.get(pad)
        if not left:
            return  # the consumer cannot take it now (its pad is full for this batch)
        if left == 1:
            del want[pad]
        else:
            want[pad] = left - 1
        self._need -= 1
        if self._need <= 0:
            self._want = None
            self.cond.notify()

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
                if force:  # an event: the consumer must see it now
                    dq.append(item)
                    self.cond.notify()
                    return True
                if len(dq) < cap:
                    dq.append(item)
                    self._arrived(pad)
                    return True
                if self.leaky == 1:
                    self.dropped += 1
                    return True
                if self.leaky == 2 and self._drop_oldest(dq):
                    dq.append(item)
                    self._arrived(pad)
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
                        if len(dq) <= self.capacity // 2:  # see space_freed
                            self._space[pad].notify()
                        return pad, item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)

    def pending(self) -> int:
        with self.lock:
            return sum(len(d) for d in self.pads.values())
