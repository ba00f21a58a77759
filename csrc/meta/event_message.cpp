// EventMessageUserMetadata.generate(): fill an event message (nvmsgconv's input) from an object
// and its frame with DeepStream's rules (bbox in source resolution, RFC 3339 timestamp, class map).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

#include "pysm/meta.hpp"

namespace pysm {
namespace meta {

// Unique component ids of the secondary vehicle classifiers in DeepStream's reference apps.
constexpr int kVehicleTypeComponent = 4;
constexpr int kVehicleColorComponent = 5;
constexpr int kVehicleMakeComponent = 6;

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string rfc3339_utc(int64_t unix_ns) {
  if (unix_ns < 0) unix_ns = 0;
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1000000000);
  const int ms = static_cast<int>((unix_ns / 1000000) % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", ms);
  return buf;
}

void generate_event_message(BatchMeta& b, EventMessageMeta& msg, const ObjectMeta& obj, const FrameMeta& frame,
                            const std::string& sensor, const std::string& uri,
                            const std::vector<std::string>& labels) {
  std::lock_guard<std::mutex> lock(b.mu);  // reads the object's classifier list
  std::map<std::string, int> class_ids;
  if (labels.empty()) {
    class_ids = {{"car", 0}, {"person", 2}};
  } else {
    for (size_t i = 0; i < labels.size(); ++i) class_ids.emplace(labels[i], static_cast<int>(i));
  }

  // A zero pipeline size (metadata built by hand) keeps the box as is instead of dividing by 0.
  const float sw = frame.pipeline_width ? float(frame.source_width) / float(frame.pipeline_width) : 1.f;
  const float sh = frame.pipeline_height ? float(frame.source_height) / float(frame.pipeline_height) : 1.f;
  const RectParams& r = obj.rect_params;
  msg.left = r.left * sw;
  msg.top = r.top * sh;
  msg.width = r.width * sw;
  msg.height = r.height * sh;
  msg.frame_id = static_cast<int>(frame.frame_number);
  msg.tracking_id = obj.object_id;
  msg.confidence = obj.confidence;
  msg.sensor_id = msg.place_id = msg.module_id = static_cast<int>(frame.source_id);
  msg.sensor_str = sensor;
  msg.uri = uri;
  msg.object_id = obj.label;
  const bool from_pts = uri.rfind("ipc://", 0) == 0 && frame.buffer_pts >= 0;
  msg.ts = rfc3339_utc(from_pts ? frame.buffer_pts : unix_now_ns());

  // Unknown classes: DeepStream leaves type/objType zeroed (ENTRY/VEHICLE); pysm says UNKNOWN
  // and keeps the object's class id, so a payload never calls a dog a vehicle.
  msg.event_type = static_cast<int>(EventType::Entry);
  msg.obj_type = static_cast<int>(ObjectType::Unknown);
  msg.obj_class_id = obj.class_id;
  msg.ext.clear();
  auto is = [&](const char* name) {
    auto it = class_ids.find(name);
    return it != class_ids.end() && it->second == obj.class_id;
  };
  if (is("car")) {
    msg.event_type = static_cast<int>(EventType::Moving);
    msg.obj_type = static_cast<int>(ObjectType::Vehicle);
    for (const auto& c : obj.classifiers) {
      if (c->labels.empty()) continue;
      const std::string& top = c->labels.front().label;
      switch (c->unique_component_id) {
        case kVehicleTypeComponent: msg.ext["type"] = top; break;
        case kVehicleColorComponent: msg.ext["color"] = top; break;
        case kVehicleMakeComponent: msg.ext["make"] = top; break;
        default: break;
      }
    }
  } else if (is("person")) {
    msg.obj_type = static_cast<int>(ObjectType::Person);
  } else if (is("face")) {
    msg.obj_type = static_cast<int>(ObjectType::Face);
  } else if (is("bag") || is("bg")) {
    msg.obj_type = static_cast<int>(ObjectType::Bag);
  }
}

}  // namespace meta
}  // namespace pysm
