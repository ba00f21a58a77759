#include "pysm/error.hpp"

#include <new>

namespace pysm {

ErrorKind current_exception_kind(std::string* message) noexcept {
  try {
    throw;
  } catch (const Error& e) {
    *message = e.what();
    return e.kind();
  } catch (const std::bad_alloc&) {
    *message = "out of host memory";
    return ErrorKind::Memory;
  } catch (const std::out_of_range& e) {
    *message = e.what();
    return ErrorKind::Index;
  } catch (const std::invalid_argument& e) {
    *message = e.what();
    return ErrorKind::Value;
  } catch (const std::exception& e) {
    *message = e.what();
    return ErrorKind::Generic;
  } catch (...) {
    *message = "unknown native exception";
    return ErrorKind::Generic;
  }
}

}  // namespace pysm
