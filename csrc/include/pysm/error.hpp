// Typed errors of the native core. Each kind maps onto one Python exception class
// (pysm.errors); messages name the element / source / codec / key and what to do.
#pragma once
#include <stdexcept>
#include <string>

namespace pysm {

enum class ErrorKind : int {
  Generic = 0,
  Config = 1,
  Source = 2,
  Decode = 3,
  Inference = 4,
  Pipeline = 5,
  Cuda = 6,        // a CUDA runtime/driver call failed
  Driver = 7,      // a driver library could not be loaded
  Value = 8,       // bad argument (dtype, layout, shape)
  Index = 9,
  Reference = 10,  // a view outlived its owner
  Memory = 11,     // allocation failed
  Timeout = 12,
  NotImplemented = 13,
  Io = 14,
  Unsupported = 15,  // codec/size/feature the hardware does not support
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void raise(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

// For bindings: classify the in-flight exception (call only inside a catch block).
// Returns the kind and fills `message`; unknown exceptions map to Generic.
ErrorKind current_exception_kind(std::string* message) noexcept;

}  // namespace pysm
