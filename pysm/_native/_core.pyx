# cython: language_level=3, binding=True, embedsignature=True
# distutils: language = c++
"""pysm's native bindings: one extension module, so the core's singletons (memory pools, the
loaded driver libraries) exist once. Each concept lives in its own .pxi; logic stays in csrc/ or in
plain Python."""

include "errors.pxi"
include "core_decl.pxi"
include "cuda.pxi"
include "tensor.pxi"
include "frame.pxi"
include "buffer.pxi"
include "osd.pxi"
include "meta.pxi"
include "mux.pxi"
include "decoder.pxi"
include "imgproc.pxi"
include "infer_ops.pxi"
