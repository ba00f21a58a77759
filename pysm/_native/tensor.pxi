# Tensor: Python view of a native pysm::Tensor, the zero-copy exchange type. It speaks DLPack 1.0
# (versioned and legacy capsules, the CUDA stream handshake), __array_interface__ for host memory
# and __cuda_array_interface__ (v3) for device memory. The DLPack structs and the export/import
# logic live in csrc/core/dlpack.cpp; this file only moves capsules and arguments.
from cpython.pycapsule cimport PyCapsule_New, PyCapsule_IsValid, PyCapsule_GetPointer, PyCapsule_SetName
from libc.stdint cimport intptr_t, uintptr_t
import enum as _enum

cdef extern from "pysm/dlpack.hpp" namespace "pysm::dlpack" nogil:
    cdef struct CDLDevice "pysm::dlpack::DLDevice":
        int32_t device_type
        int32_t device_id
    cdef struct CDLPackVersion "pysm::dlpack::DLPackVersion":
        uint32_t major
        uint32_t minor
    cdef struct CDLTensor "pysm::dlpack::DLTensor":
        void* data
        CDLDevice device
        int32_t ndim
    cdef struct CDLManagedTensor "pysm::dlpack::DLManagedTensor":
        CDLTensor dl_tensor
        void* manager_ctx
        void (*deleter)(CDLManagedTensor*) noexcept
    cdef struct CDLManagedTensorVersioned "pysm::dlpack::DLManagedTensorVersioned":
        CDLPackVersion version
        void* manager_ctx
        void (*deleter)(CDLManagedTensorVersioned*) noexcept
        uint64_t flags
        CDLTensor dl_tensor
    CDLManagedTensorVersioned* dl_export_versioned "pysm::dlpack::export_versioned"(
        const CTensor& t, cbool read_only, cbool is_copied) except +raise_native
    CDLManagedTensor* dl_export_legacy "pysm::dlpack::export_legacy"(const CTensor& t) except +raise_native
    CTensor dl_import_versioned "pysm::dlpack::import_versioned"(
        CDLManagedTensorVersioned* m, string layout, cbool* read_only) except +raise_native
    CTensor dl_import_legacy "pysm::dlpack::import_legacy"(CDLManagedTensor* m, string layout) except +raise_native
    void dl_wait_for_consumer "pysm::dlpack::wait_for_consumer"(const CTensor& t, intptr_t stream) except +raise_native

# DLPack device type codes used at the Python level.
cdef enum:
    _KDLCPU = 1
    _KDLCUDA = 2
    _KDLCUDAHOST = 3
    _KDLCUDAMANAGED = 13


class ColorFormat(_enum.IntEnum):
    """Colour formats of frame surfaces (values as in csrc/include/pysm/surface.hpp)."""
    GRAY8 = 1
    I420 = 2
    NV12 = 6
    P016 = 7
    P010 = 7  # alias: NVDEC's 10-bit output is stored as P016 (content in the high bits)
    RGBA = 19
    BGRA = 20
    RGB = 27
    BGR = 28


cdef void _versioned_capsule_destructor(object capsule) noexcept:
    # Runs when a capsule is garbage-collected; a consumer that took the tensor renamed the capsule
    # to "used_dltensor_versioned", so only unconsumed tensors are freed here.
    cdef CDLManagedTensorVersioned* m
    if PyCapsule_IsValid(capsule, b"dltensor_versioned"):
        m = <CDLManagedTensorVersioned*>PyCapsule_GetPointer(capsule, b"dltensor_versioned")
        if m != NULL and m.deleter != NULL:
            m.deleter(m)


cdef void _legacy_capsule_destructor(object capsule) noexcept:
    cdef CDLManagedTensor* m
    if PyCapsule_IsValid(capsule, b"dltensor"):
        m = <CDLManagedTensor*>PyCapsule_GetPointer(capsule, b"dltensor")
        if m != NULL and m.deleter != NULL:
            m.deleter(m)


cdef CDType _dtype_from_py(object dtype) except *:
    """numpy dtype-like (or "bfloat16") -> native DType."""
    cdef CDType d
    if isinstance(dtype, str) and dtype == "bfloat16":
        d.code = 4
        d.bits = 16
        d.lanes = 1
        return d
    import numpy as np
    try:
        nd = np.dtype(dtype)
    except TypeError as e:
        raise _errors.InvalidArgument(f"unknown dtype {dtype!r}; expected a NumPy dtype such as 'uint8' or 'float32'") from e
    codes = {"i": 0, "u": 1, "f": 2, "b": 6}
    if nd.kind not in codes or nd.itemsize not in (1, 2, 4, 8) or (nd.kind == "f" and nd.itemsize == 1):
        raise _errors.InvalidArgument(
            f"unsupported dtype {nd}; expected int8/16/32/64, uint8/16/32/64, float16/32/64, bfloat16 or bool")
    d.code = codes[nd.kind]
    d.bits = nd.itemsize * 8
    d.lanes = 1
    return d


cdef CDevice _device_from_py(object device) except *:
    """'cpu' | 'cuda' | 'cuda:N' | 'gpu' | int N (a CUDA ordinal) -> native Device."""
    cdef CDevice d
    d.type = CDeviceType.CPU
    d.id = 0
    if isinstance(device, int) and not isinstance(device, bool):
        if device < 0:
            raise _errors.InvalidArgument(f"device index must be >= 0, got {device}")
        d.type = CDeviceType.CUDA
        d.id = device
        return d
    if isinstance(device, str):
        s = device.strip().lower()
        if s == "cpu":
            return d
        if s in ("cuda", "gpu"):
            d.type = CDeviceType.CUDA
            return d
        for prefix in ("cuda:", "gpu:"):
            if s.startswith(prefix) and s[len(prefix):].isdigit():
                d.type = CDeviceType.CUDA
                d.id = int(s[len(prefix):])
                return d
    raise _errors.InvalidArgument(f"unknown device {device!r}; expected 'cpu', 'cuda', 'cuda:N' or an int N")


cdef CDevice _device_from_dl(object dl_device) except *:
    cdef CDevice d
    try:
        dev_type, dev_id = int(dl_device[0]), int(dl_device[1])
    except (TypeError, ValueError, IndexError) as e:
        raise BufferError(f"dl_device must be a (device_type, device_id) tuple, got {dl_device!r}") from e
    if dev_type in (_KDLCPU, _KDLCUDAHOST):
        d.type = CDeviceType.CPU
        d.id = 0
    elif dev_type in (_KDLCUDA, _KDLCUDAMANAGED):
        d.type = CDeviceType.CUDA
        d.id = dev_id
    else:
        raise BufferError(f"pysm cannot export to DLPack device type {dev_type}; it exports to kDLCPU (1) or kDLCUDA (2)")
    return d


cdef cbool _same_device(CDevice a, CDevice b):
    if a.type == CDeviceType.CUDA or b.type == CDeviceType.CUDA:
        return a.type == b.type and a.id == b.id
    return True  # host memory is host memory, pageable or pinned


cdef class Tensor:
    """A zero-copy view of host or device memory: the exchange type between pysm, NumPy, torch and
    CuPy. It keeps the memory it views alive (a pooled frame, a decoder surface, or the array it
    was imported from).

    Exchange without copies through DLPack 1.0 (``torch.from_dlpack(t)``, ``np.from_dlpack(t)``,
    ``cupy.from_dlpack(t)``), ``__array_interface__`` (host) or ``__cuda_array_interface__``
    (device). Strides are in elements, as DLPack has them; pitched frames keep their row pitch.
    """
    cdef CTensor c
    cdef bint readonly

    cdef bint _defined(self):
        return self.c.data() != NULL or (self.c.numel() == 0 and self.c.ndim() > 0)

    # --- properties --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """Dimensions, outermost first."""
        return tuple(self.c.shape())

    @property
    def strides(self) -> tuple:
        """Strides in elements (not bytes), as DLPack has them. Pitched frames show their pitch."""
        return tuple(self.c.strides())

    @property
    def ndim(self) -> int:
        return self.c.ndim()

    @property
    def dtype(self):
        """The element type as a NumPy dtype (bfloat16: NumPy's dtype of ``ml_dtypes.bfloat16`` when installed,
        else the string ``"bfloat16"``)."""
        cdef CDType d = self.c.dtype()
        import numpy as np
        if d.code == 4:
            try:
                import ml_dtypes
                return np.dtype(ml_dtypes.bfloat16)
            except ImportError:
                return "bfloat16"
        return np.dtype(d.str().decode())

    @property
    def device_type(self) -> str:
        """"GPU" for device memory, "CPU" for host memory, "NONE" for an empty tensor."""
        if not self._defined():
            return "NONE"
        return "GPU" if self.c.device().is_cuda() else "CPU"

    @property
    def device(self) -> str:
        """"cuda:N" or "cpu"."""
        cdef CDevice d = self.c.device()
        return f"cuda:{d.id}" if d.is_cuda() else "cpu"

    @property
    def layout(self) -> str:
        """The layout tag ("HWC", "CHW", "NCHW", "NHWC", "HW", "NV12", ... or "")."""
        return self.c.layout().decode()

    @property
    def format(self) -> str:
        """Alias of :attr:`layout` (pyservicemaker calls the tag a format)."""
        return self.c.layout().decode()

    @property
    def data_ptr(self) -> int:
        """Address of the first element (device address for GPU tensors)."""
        return <uintptr_t>self.c.data()

    @property
    def is_contiguous(self) -> bool:
        return bool(self.c.is_contiguous())

    @property
    def read_only(self) -> bool:
        """True when imported from a read-only producer (e.g. a non-writeable NumPy array)."""
        return bool(self.readonly)

    def size(self) -> int:
        """Bytes of the elements (numel * itemsize; a pitched frame's row padding not counted)."""
        return self.c.nbytes()

    def __bool__(self):
        return bool(self._defined())

    def __repr__(self):
        if not self._defined():
            return "Tensor()"
        return (f"Tensor(shape={self.shape}, dtype={self.c.dtype().str().decode()}, device={self.device}, "
                f"layout={self.layout!r}, strides={self.strides})")

    # --- factories and copies ----------------------------------------------------------------
    @staticmethod
    def empty(shape, dtype="uint8", device="cpu", layout: str = "") -> "Tensor":
        """A new contiguous, uninitialised tensor from pysm's memory pool of ``device``
        ('cpu', 'cuda', 'cuda:N'); host tensors are pinned when CUDA is present."""
        cdef vector[int64_t] sh
        for n in shape:
            sh.push_back(int(n))
        cdef CDType dt = _dtype_from_py(dtype)
        cdef CDevice dev = _device_from_py(device)
        cdef string lay = layout.encode()
        cdef CTensor t
        with nogil:
            t = CTensor.empty(sh, dt, dev, lay)
        return tensor_from_native(t)

    def clone(self) -> "Tensor":
        """A contiguous deep copy on the same device; independent of the original's memory."""
        self._require()
        cdef CTensor t
        with nogil:
            t = self.c.clone(NULL)
        return tensor_from_native(t)

    def to_gpu(self, int device_id=0) -> "Tensor":
        """This tensor in device memory of GPU ``device_id``: a copy, or ``self`` when it already
        lives there. The copy runs on pysm's stream; consumers are ordered after it by event."""
        self._require()
        cdef CDevice d = self.c.device()
        if d.is_cuda() and d.id == device_id:
            return self
        d.type = CDeviceType.CUDA
        d.id = device_id
        cdef CTensor t
        with nogil:
            t = self.c.to(d, NULL)
        return tensor_from_native(t)

    def cpu(self) -> "Tensor":
        """This tensor in host memory: a copy for device tensors, ``self`` for host tensors."""
        self._require()
        if not self.c.device().is_cuda():
            return self
        cdef CDevice d
        d.type = CDeviceType.CPU
        d.id = 0
        cdef CTensor t
        with nogil:
            t = self.c.to(d, NULL)
        return tensor_from_native(t)

    def wrap(self, format) -> "Buffer":
        """A single-frame Buffer whose surface is this tensor (zero-copy), e.g.
        ``as_tensor(arr, "HWC").wrap(ColorFormat.RGB)`` for a BufferProvider. Read-only inputs are
        copied first, since pipeline stages (OSD) may draw on frames."""
        self._require()
        if isinstance(format, str):
            try:
                format = ColorFormat[format.upper()]
            except KeyError:
                raise _errors.InvalidArgument(
                    f"unknown colour format {format!r}; expected one of {', '.join(ColorFormat.__members__)}") from None
        try:
            fmt = ColorFormat(int(format))
        except (TypeError, ValueError):
            raise _errors.InvalidArgument(
                f"unknown colour format {format!r}; expected a ColorFormat ({', '.join(ColorFormat.__members__)})") from None
        cdef CTensor src = self.c
        if self.readonly:
            with nogil:
                src = self.c.clone(NULL)
        cdef CSurface s = CSurface.from_tensor(src, <CColorFormat>(<int>fmt))
        cdef shared_ptr[CBuffer] b = make_shared[CBuffer]()
        b.get().surfaces.push_back(s)
        return buffer_from_native(b)

    cdef int _require(self) except -1:
        if not self._defined():
            raise _errors.InvalidArgument("the tensor is empty (it views no memory)")
        return 0

    def _with_layout(self, str layout) -> "Tensor":
        """A view of the same memory with another layout tag (no copy)."""
        cdef Tensor out = tensor_from_native(self.c)
        out.c.set_layout(layout.encode())
        out.readonly = self.readonly
        return out

    # --- DLPack ------------------------------------------------------------------------------
    def __dlpack_device__(self) -> tuple:
        """(device_type, device_id) as DLPack codes: (1, 0) for host memory (kDLCPU) and (2, N) for
        GPU N (kDLCUDA).

        Unlike pyservicemaker, which always reports kDLCUDA, this reports where the memory really
        is, so that NumPy imports host tensors and torch/CuPy place them on the right device."""
        cdef CDevice d = self.c.device()
        if d.is_cuda():
            return (_KDLCUDA, d.id)
        return (_KDLCPU, 0)

    def __dlpack__(self, stream=None, *, max_version=None, dl_device=None, copy=None):
        """Export as a DLPack capsule (consumable once): "dltensor_versioned" (DLPack 1.0) when the
        consumer's ``max_version`` is >= (1, 0), else legacy "dltensor".

        ``stream`` is the consumer's CUDA stream (1 legacy default, 2 per-thread default, -1 no
        synchronisation, None = legacy default, else a cudaStream_t address): it is made to wait,
        on the device, for pysm's pending write of this tensor. ``dl_device`` other than the
        tensor's device, or ``copy=True``, export a copy; ``copy=False`` raises BufferError when a
        copy would be needed."""
        self._require()
        if stream is not None and (not isinstance(stream, int) or isinstance(stream, bool)):
            raise TypeError(f"stream must be an int or None, got {type(stream).__name__}")
        cdef CTensor t = self.c
        cdef CDevice target = self.c.device()
        cdef bint copied = False
        if dl_device is not None:
            target = _device_from_dl(dl_device)
        if copy or not _same_device(target, self.c.device()):
            if copy is False:
                raise BufferError(
                    f"exporting this tensor (on {self.device}) to DLPack device {tuple(dl_device)} needs a copy, "
                    "but copy=False was given")
            with nogil:
                t = self.c.to(target, NULL)
            copied = True
        cdef intptr_t s
        if t.device().is_cuda():
            s = 1 if stream is None else <intptr_t>stream
            with nogil:
                dl_wait_for_consumer(t, s)
        cdef CDLManagedTensorVersioned* mv
        cdef CDLManagedTensor* ml
        if max_version is not None and int(max_version[0]) >= 1:
            mv = dl_export_versioned(t, self.readonly and not copied, copied)
            try:
                return PyCapsule_New(mv, b"dltensor_versioned", _versioned_capsule_destructor)
            except BaseException:
                mv.deleter(mv)
                raise
        if self.readonly and not copied:
            raise BufferError("a read-only tensor can be exported only as a DLPack 1.0 versioned capsule "
                              "(the consumer must pass max_version=(1, 0)), which carries the read-only flag")
        ml = dl_export_legacy(t)
        try:
            return PyCapsule_New(ml, b"dltensor", _legacy_capsule_destructor)
        except BaseException:
            ml.deleter(ml)
            raise

    # --- array interfaces --------------------------------------------------------------------
    cdef object _typestr(self):
        cdef CDType d = self.c.dtype()
        kinds = {0: "i", 1: "u", 2: "f", 6: "b"}
        if d.code not in kinds or d.lanes != 1:
            raise _errors.InvalidArgument(
                f"dtype {d.str().decode()} has no array-interface type string; export it through DLPack "
                "(torch.from_dlpack) instead")
        n = d.itemsize()
        return ("|" if n == 1 else "<") + kinds[d.code] + str(n)

    cdef object _interface(self):
        cdef size_t item = self.c.dtype().itemsize()
        return {
            "shape": self.shape,
            "typestr": self._typestr(),
            "data": (<uintptr_t>self.c.data(), bool(self.readonly)),
            "strides": None if self.c.is_contiguous() else tuple(s * item for s in self.c.strides()),
        }

    @property
    def __array_interface__(self):
        """NumPy's array interface (v3) for host tensors; ``np.asarray(t)`` is zero-copy and keeps
        ``t`` alive. Device tensors have none: use DLPack, ``__cuda_array_interface__`` or cpu()."""
        if self.c.device().is_cuda():
            raise AttributeError("a GPU tensor has no __array_interface__; use .cpu() for a host copy, "
                                 "or DLPack / __cuda_array_interface__ for device consumers")
        self._require()
        d = self._interface()
        d["version"] = 3
        return d

    def __array__(self, dtype=None, copy=None):
        """NumPy conversion: host tensors without a copy (unless ``copy=True`` or another dtype is
        asked for); GPU tensors as a host copy, since NumPy cannot view device memory
        (``copy=False`` raises ValueError for them)."""
        import numpy as np
        self._require()
        if self.c.device().is_cuda():
            if copy is False:
                raise ValueError(f"a tensor on {self.device} cannot be viewed by NumPy without a copy; "
                                 "use .cpu() or leave copy unset")
            arr = np.from_dlpack(self.cpu())
        else:
            arr = np.from_dlpack(self)
            if copy:
                arr = arr.copy()
        if dtype is not None and arr.dtype != np.dtype(dtype):
            if copy is False:
                raise ValueError(f"converting {arr.dtype} to {np.dtype(dtype)} needs a copy, but copy=False")
            arr = arr.astype(dtype)
        return arr

    @property
    def __cuda_array_interface__(self):
        """The CUDA array interface (v3) for device tensors (CuPy, numba). When pysm's write of
        this tensor may still be pending, "stream" names pysm's stream (made to wait for the
        write), on which the consumer must synchronise; else it is None."""
        if not self.c.device().is_cuda():
            raise AttributeError("a host tensor has no __cuda_array_interface__; use __array_interface__ "
                                 "or .to_gpu()")
        self._require()
        d = self._interface()
        d["version"] = 3
        d["stream"] = None
        cdef shared_ptr[CEvent] ev = self.c.ready_event()
        cdef StreamHandle ps
        cdef int dev = self.c.device().id
        if ev.get() != NULL and not ev.get().query():
            with nogil:
                ps = default_stream(dev)
                self.c.wait_ready(ps)
            d["stream"] = <uintptr_t>ps
        return d


cdef Tensor tensor_from_native(const CTensor& t):
    cdef Tensor out = Tensor.__new__(Tensor)
    out.c = t
    out.readonly = False
    return out


def is_dlpack_capsule(obj) -> bool:
    """True for an unconsumed or consumed DLPack capsule."""
    return bool(PyCapsule_IsValid(obj, b"dltensor_versioned") or PyCapsule_IsValid(obj, b"dltensor")
                or PyCapsule_IsValid(obj, b"used_dltensor_versioned") or PyCapsule_IsValid(obj, b"used_dltensor"))


def tensor_from_dlpack_capsule(object capsule, str layout="", bint on_pysm_stream=False) -> Tensor:
    """Consume a DLPack capsule (renaming it "used_...", so it cannot be consumed twice) and view
    its memory as a Tensor whose owner calls the producer's deleter. ``on_pysm_stream``: the
    producer ordered its pending work before pysm's stream for the tensor's device, so record the
    tensor's ready event there."""
    cdef CDLManagedTensorVersioned* mv
    cdef CDLManagedTensor* ml
    cdef cbool ro = False
    cdef string lay = layout.encode()
    cdef Tensor out = Tensor.__new__(Tensor)
    if PyCapsule_IsValid(capsule, b"dltensor_versioned"):
        mv = <CDLManagedTensorVersioned*>PyCapsule_GetPointer(capsule, b"dltensor_versioned")
        # Rename first: from here on the import owns the tensor (it calls the deleter even on error).
        PyCapsule_SetName(capsule, b"used_dltensor_versioned")
        out.c = dl_import_versioned(mv, lay, &ro)
    elif PyCapsule_IsValid(capsule, b"dltensor"):
        ml = <CDLManagedTensor*>PyCapsule_GetPointer(capsule, b"dltensor")
        PyCapsule_SetName(capsule, b"used_dltensor")
        out.c = dl_import_legacy(ml, lay)
    elif PyCapsule_IsValid(capsule, b"used_dltensor_versioned") or PyCapsule_IsValid(capsule, b"used_dltensor"):
        raise _errors.InvalidArgument("this DLPack capsule was already consumed (a capsule can be consumed only "
                                      "once); call __dlpack__() on the producer again")
    else:
        raise _errors.InvalidArgument(
            f"expected a DLPack capsule named 'dltensor' or 'dltensor_versioned', got {type(capsule).__name__}")
    out.readonly = ro
    cdef int dev
    if on_pysm_stream and out.c.device().is_cuda():
        dev = out.c.device().id
        with nogil:
            out.c.mark_written(default_stream(dev))
    return out


def pysm_stream_handle(int device) -> int:
    """Address of pysm's own CUDA stream on ``device`` (the stream a DLPack producer is asked to
    order its pending work before)."""
    cdef StreamHandle s
    with nogil:
        s = default_stream(device)
    return <uintptr_t>s


def surface_tensor(format, int width, int height, device="cpu", int align=256) -> Tensor:
    """A freshly allocated (uninitialised) frame surface of ``format`` viewed as a Tensor, with rows
    padded to ``align`` bytes: the pitched layout decoders produce."""
    cdef CDevice dev = _device_from_py(device)
    fmt = ColorFormat(int(format)) if not isinstance(format, str) else ColorFormat[format.upper()]
    cdef CSurface s
    cdef CColorFormat cf = <CColorFormat>(<int>fmt)
    with nogil:
        s = CSurface.allocate(cf, width, height, dev, align)
    return tensor_from_native(s.tensor())
