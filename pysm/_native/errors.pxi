# Native exceptions -> pysm.errors. Extern declarations use `except +raise_native`, so a C++
# pysm::Error of kind K surfaces as the matching Python class with the native message.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.memory cimport shared_ptr, make_shared, static_pointer_cast
from libcpp.string cimport string
from libcpp.vector cimport vector
from pysm import errors as _errors

cdef extern from "pysm/error.hpp" namespace "pysm" nogil:
    cdef enum class ErrorKind(int):
        pass
    ErrorKind current_exception_kind(string* message)

cdef int raise_native() except -1:
    cdef string msg
    cdef int kind = <int>current_exception_kind(&msg)
    raise _errors.from_native(kind, msg.decode("utf-8", "replace"))
