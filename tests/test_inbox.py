"""Inbox wake-ups: an armed consumer wakes once enough items arrived on the pads it takes from
(events and halts still wake it at once); a blocked producer wakes once its pad drained to half."""

import threading
import time

from pysm.pipeline.inbox import Inbox
from pysm.pipeline.items import SourceEOS


def _waiter(box: Inbox, want: dict, need: int, timeout: float = 5.0):
    """A consumer thread that arms ``want``/``need`` and waits; returns (thread, result list)."""
    out: list = []
    armed = threading.Event()

    def run() -> None:
        with box.cond:
            box.arm(dict(want), need)
            armed.set()
            t0 = time.monotonic()
            box.cond.wait(timeout)
            box.disarm()
            out.append(time.monotonic() - t0)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    armed.wait(5)
    return t, out


def test_armed_consumer_wakes_only_when_the_batch_can_complete():
    halt = threading.Event()
    box = Inbox(4)
    for pad in ("a", "b", "c"):
        box.add_pad(pad)
    t, out = _waiter(box, {"a": 1, "b": 1, "c": 1}, 3)
    box.put("a", 1, halt)
    box.put("a", 2, halt)  # pad a's quota is used: does not count
    box.put("b", 3, halt)
    time.sleep(0.2)
    assert t.is_alive() and not out, "woken before the batch could complete"
    box.put("c", 4, halt)
    t.join(2)
    assert out and out[0] < 2.0
    assert box.pending() == 4


def test_armed_consumer_still_wakes_for_events_and_need_is_capped():
    halt = threading.Event()
    box = Inbox(4)
    box.add_pad("a")
    box.add_pad("b")
    t, out = _waiter(box, {"a": 1}, 5)  # need capped to what 'a' can supply
    box.put("b", 0, halt)  # not wanted: no wake-up
    time.sleep(0.2)
    assert not out
    box.put("a", 1, halt)
    t.join(2)
    assert out and out[0] < 2.0

    t, out = _waiter(box, {"a": 2, "b": 2}, 4)
    box.put("b", SourceEOS("src"), halt, force=True)  # an end-of-stream event wakes at once
    t.join(2)
    assert out and out[0] < 2.0


def test_producer_is_woken_once_its_pad_drained_to_half():
    halt = threading.Event()
    box = Inbox(4)
    box.add_pad("a")
    box.add_pad("b")
    notified: list[str] = []

    class Counting(threading.Condition):
        def __init__(self, pad: str) -> None:
            super().__init__(box.lock)
            self.pad = pad

        def notify(self, n: int = 1) -> None:
            notified.append(self.pad)
            super().notify(n)

    box._space = {pad: Counting(pad) for pad in box._space}
    for i in range(4):
        assert box.put("a", i, halt)
        assert box.put("b", i, halt)
    assert box.get(1.0) == ("a", 0)  # 3 left: above half, its producer sleeps on
    assert notified == []
    assert box.get(1.0) == ("b", 0)
    assert box.get(1.0) == ("a", 1)  # 2 left: now
    assert notified == ["a"]
    with box.lock:  # the mux takes items itself and calls space_freed
        box.pads["b"].popleft()
        box.space_freed("b")
    assert notified == ["a", "b"]

    done = threading.Event()  # a blocked producer resumes after the drain
    for i in range(2):
        box.put("a", 10 + i, halt)

    def produce() -> None:
        box.put("a", 99, halt)
        done.set()

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    box.get(1.0), box.get(1.0)
    assert done.wait(2)
    t.join(2)
