"""EngineFileMonitor: hot-swap an inference model when its file changes on disk.

pyservicemaker's ``utils.EngineFileMonitor(infer_node, engine_file)`` watches a TensorRT engine
file and makes nvinfer load it again while the pipeline runs. pysm's monitor does the same for any
model file the engine can load (engine, ONNX, TorchScript): it polls the file's size and
modification time, waits until a change has settled (a writer may still be copying), then calls
``InferEngine.reload(path)``. The swap happens between batches; only batches in flight when the
file changes may be lost. A file that fails to load leaves the running model in place and is
reported through ``on_error`` (default: a warning).
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Callable

__all__ = ["EngineFileMonitor"]


def _engine_of(target: Any) -> Any:
    """The InferEngine behind an engine, a pipeline node or element wrapping one."""
    if hasattr(target, "reload") and callable(target.reload):
        return target
    for holder in (target, getattr(target, "element", None)):  # a pipeline Node wraps its element
        for attr in ("engine", "infer_engine", "_engine"):
            e = getattr(holder, attr, None) if holder is not None else None
            if e is not None and hasattr(e, "reload"):
                return e
    return None


class EngineFileMonitor:
    """Watch ``engine_file_path`` and reload ``infer_engine_or_node`` when it changes.

    Args:
        infer_engine_or_node: an :class:`pysm.infer.InferEngine`, or a pipeline node/element of
            nvinfer (its engine is found, else its ``model-engine-file`` property is set).
        engine_file_path: the file to watch.
        interval: seconds between polls.
        on_error: called with the exception when a changed file cannot be loaded.
    """

    def __init__(self, infer_engine_or_node: Any, engine_file_path: str, *, interval: float = 0.5,
                 on_error: Callable[[BaseException], None] | None = None):
        self.target = infer_engine_or_node
        self.path = os.fspath(engine_file_path)
        self.interval = float(interval)
        self.on_error = on_error
        self.reloads = 0  # successful swaps so far
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "EngineFileMonitor":
        with self._lock:
            if self.started:
                return self
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"EngineFileMonitor({self.path})", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            t, self._thread = self._thread, None
            self._stop.set()
        if t is not None and t is not threading.current_thread():
            t.join(timeout=max(5.0, 4 * self.interval))

    def __enter__(self) -> "EngineFileMonitor":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _run(self) -> None:
        seen = self._stat()
        pending: tuple[int, int] | None = None
        while not self._stop.wait(self.interval):
            cur = self._stat()
            if cur is None or cur == seen:
                pending = None
                continue
            if cur != pending:  # changed since the last poll: let the writer finish
                pending = cur
                continue
            seen, pending = cur, None
            self._swap()

    def _swap(self) -> None:
        try:
            engine = _engine_of(self.target)
            if engine is not None:
                engine.reload(self.path)
            elif hasattr(self.target, "set"):
                self.target.set({"model-engine-file": self.path})
            else:
                raise TypeError(f"{type(self.target).__name__} is neither an InferEngine nor an nvinfer node")
            self.reloads += 1
        except Exception as e:  # noqa: BLE001 - report and keep the running model
            if self.on_error is not None:
                self.on_error(e)
            else:
                warnings.warn(f"EngineFileMonitor: could not load '{self.path}': {e}", RuntimeWarning, stacklevel=2)
