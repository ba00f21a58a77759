// DisplayMeta elements, capped per kind at MAX_ELEMENTS_IN_DISPLAY_META as DeepStream's fixed
// arrays are; past the cap the caller gets a clear error instead of a silent drop.
#include <string>

#include "pysm/error.hpp"
#include "pysm/meta.hpp"

namespace pysm {
namespace meta {

namespace {
template <class T>
void add_capped(BatchMeta& b, std::vector<T>& list, const T& v, const char* kind) {
  std::lock_guard<std::mutex> lock(b.mu);
  if (list.size() >= static_cast<size_t>(MAX_ELEMENTS_IN_DISPLAY_META))
    raise(ErrorKind::Index, std::string("DisplayMetadata holds at most ") +
                                std::to_string(MAX_ELEMENTS_IN_DISPLAY_META) + " " + kind +
                                " (MAX_ELEMENTS_IN_DISPLAY_META); acquire another DisplayMetadata with "
                                "batch_meta.acquire_display_meta() and append it to the frame");
  list.push_back(v);
}
}  // namespace

void add_text(BatchMeta& b, DisplayMeta& d, const TextParams& v) { add_capped(b, d.texts, v, "texts"); }
void add_rect(BatchMeta& b, DisplayMeta& d, const RectParams& v) { add_capped(b, d.rects, v, "rects"); }
void add_line(BatchMeta& b, DisplayMeta& d, const LineParams& v) { add_capped(b, d.lines, v, "lines"); }
void add_arrow(BatchMeta& b, DisplayMeta& d, const ArrowParams& v) { add_capped(b, d.arrows, v, "arrows"); }
void add_circle(BatchMeta& b, DisplayMeta& d, const CircleParams& v) { add_capped(b, d.circles, v, "circles"); }

}  // namespace meta
}  // namespace pysm
