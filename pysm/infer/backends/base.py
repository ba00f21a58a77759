"""The interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass
class TensorInfo:
    """A model input or output as the backend reports it; dynamic dims are None."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str  # "float32", "float16", ...


class Backend(ABC):
    """Runs one model. The engine preprocesses straight into the tensor from :meth:`input_tensor`
    (on :attr:`device`, on the CUDA stream :attr:`stream_handle`), then calls :meth:`run`.

    Outputs are returned as a dict name -> tensor (NumPy arrays for host backends, torch tensors
    for device ones); both implement DLPack. Rows beyond the batch given to :meth:`run` may hold
    stale data.
    """

    name = "base"

    def __init__(self, cfg, model_path: str | None = None, model: Any = None):
        self.cfg = cfg
        self.model_path = model_path
        self.model = model
        self.gpu_id = cfg.gpu_id
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []

    # -- lifecycle ----------------------------------------------------------------------------
    @abstractmethod
    def load(self) -> None:
        """Load the model; fill :attr:`inputs` and :attr:`outputs`."""

    def close(self) -> None:
        """Release the model and its memory."""

    # -- description --------------------------------------------------------------------------
    @property
    @abstractmethod
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``: where the input tensor and outputs live."""

    @property
    def stream_handle(self) -> int:
        """The CUDA stream (cudaStream_t as int) the model runs on; 0 for host backends."""
        return 0

    @property
    def max_batch(self) -> int | None:
        """The most items one run takes (None: no limit of its own)."""
        b = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
        return b

    @property
    def fixed_batch(self) -> bool:
        """True when the model only runs at exactly :attr:`max_batch` items (static batch dim)."""
        return self.inputs[0].shape[0] is not None if self.inputs and self.inputs[0].shape else False

    def input_order(self, order: int) -> int:
        """The memory order the backend wants its input in, given the config's
        ``network-input-order`` (0 NCHW, 1 NHWC). A backend returning 1 for 0 receives an NHWC
        tensor in :meth:`run` and presents it to the model as NCHW itself."""
        return order

    def run_batch(self, items: int, batch: int) -> int:
        """Rows of the input tensor to run for ``items`` valid items (``batch``: the engine's
        batch size). Default: exactly ``items``; backends with captured shapes round up."""
        return items

    def warmup(self, batch: int, shape: tuple[int, ...], dtype: str) -> None:
        """Called once by the engine at start with the full batch shape: build, compile or
        capture what the first run would. Default: nothing."""

    # -- running ------------------------------------------------------------------------------
    @abstractmethod
    def input_tensor(self, batch: int, shape: tuple[int, ...], dtype: str) -> Any:
        """A contiguous input tensor of ``(batch, *shape)`` on :attr:`device` for the engine to fill.
        May be reused between calls (the engine fills it before every run)."""

    @abstractmethod
    def run(self, inp: Any, batch: int) -> dict[str, Any]:
        """Run the model on ``inp`` (the first ``batch`` rows are valid); outputs by name, in the
        model's output order."""
