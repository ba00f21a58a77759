// Host clustering of one image's candidates: DBSCAN, the DBSCAN + NMS hybrid, NMS and none
// (pysm/cluster.hpp says what each does). DeepStream clusters on the CPU too; with at most
// nms-max-candidates boxes per image the O(n^2) neighbourhoods cost microseconds.
#include <algorithm>
#include <map>

#include "pysm/cluster.hpp"
#include "nms_math.hpp"

namespace pysm::infer {

namespace {

bool by_score(const Detection& a, const Detection& b) { return a.score > b.score; }

// DBSCAN of one class's boxes (best first). Appends the clusters (merged or their members) to out.
void dbscan_class(const std::vector<Detection>& boxes, float eps, int min_boxes, float min_score, bool merge,
                  std::vector<Detection>& out) {
  const int n = static_cast<int>(boxes.size());
  if (min_boxes <= 0) {  // nvinfer: this class is not clustered
    out.insert(out.end(), boxes.begin(), boxes.end());
    return;
  }
  std::vector<std::vector<int>> nb(n);
  for (int i = 0; i < n; ++i) {
    nb[i].push_back(i);
    for (int j = i + 1; j < n; ++j)
      if (1.f - detail::iou(boxes[i], boxes[j]) <= eps) {
        nb[i].push_back(j);
        nb[j].push_back(i);
      }
  }
  std::vector<char> core(n, 0);
  for (int i = 0; i < n; ++i) {
    float sum = 0.f;
    for (int j : nb[i]) sum += boxes[j].score;
    core[i] = static_cast<int>(nb[i].size()) >= min_boxes && sum >= min_score;
  }
  constexpr int kUnvisited = -1;
  std::vector<int> cluster(n, kUnvisited);
  int clusters = 0;
  std::vector<int> frontier;
  for (int seed = 0; seed < n; ++seed) {  // best-scored unassigned core box starts the next cluster
    if (!core[seed] || cluster[seed] != kUnvisited) continue;
    const int id = clusters++;
    cluster[seed] = id;
    frontier.assign(1, seed);
    while (!frontier.empty()) {
      const int i = frontier.back();
      frontier.pop_back();
      if (!core[i]) continue;  // border boxes join a cluster but do not extend it
      for (int j : nb[i])
        if (cluster[j] == kUnvisited) {
          cluster[j] = id;
          frontier.push_back(j);
        }
    }
  }
  if (!merge) {
    for (int i = 0; i < n; ++i)
      if (cluster[i] != kUnvisited) out.push_back(boxes[i]);
    return;
  }
  // Score-weighted mean of each cluster's members, scored with its best member.
  struct Acc {
    double x1 = 0, y1 = 0, x2 = 0, y2 = 0, w = 0;
    float best = 0.f;
  };
  std::vector<Acc> acc(clusters);
  for (int i = 0; i < n; ++i) {
    if (cluster[i] == kUnvisited) continue;
    Acc& a = acc[cluster[i]];
    const Detection& b = boxes[i];
    const double w = std::max(b.score, 1e-6f);  // zero scores still count, evenly
    a.x1 += w * b.x1;
    a.y1 += w * b.y1;
    a.x2 += w * b.x2;
    a.y2 += w * b.y2;
    a.w += w;
    a.best = std::max(a.best, b.score);
  }
  for (const Acc& a : acc)
    out.push_back(Detection{float(a.x1 / a.w), float(a.y1 / a.w), float(a.x2 / a.w), float(a.y2 / a.w), a.best,
                            boxes.front().class_id});
}

std::vector<Detection> keep_topk(const std::vector<Detection>& sorted, const NmsParams& p) {
  std::vector<int> all(sorted.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::vector<Detection> out;
  for (int i : topk_filter(sorted.data(), all, p)) out.push_back(sorted[i]);
  return out;
}

}  // namespace

std::vector<Detection> dbscan_cpu(const Detection* sorted, int n, const DbscanParams& p, bool merge) {
  std::map<int, std::vector<Detection>> per_class;
  for (int i = 0; i < n; ++i) per_class[sorted[i].class_id].push_back(sorted[i]);
  std::vector<Detection> out;
  for (const auto& [c, boxes] : per_class)
    dbscan_class(boxes, detail::class_value(p.eps, c, p.default_eps),
                 detail::class_value(p.min_boxes, c, p.default_min_boxes),
                 detail::class_value(p.min_score, c, p.default_min_score), merge, out);
  std::stable_sort(out.begin(), out.end(), by_score);
  return out;
}

std::vector<Detection> cluster_cpu(std::vector<Detection> c, const ClusterParams& p) {
  std::stable_sort(c.begin(), c.end(), by_score);
  switch (p.mode) {
    case ClusterMode::Dbscan:
      return keep_topk(dbscan_cpu(c.data(), static_cast<int>(c.size()), p.dbscan, true), p.nms);
    case ClusterMode::Hybrid:
      c = dbscan_cpu(c.data(), static_cast<int>(c.size()), p.dbscan, false);
      [[fallthrough]];
    case ClusterMode::Nms:
    case ClusterMode::GroupRectangles: {
      std::vector<Detection> out;
      for (int i : nms_cpu(c.data(), static_cast<int>(c.size()), p.nms)) out.push_back(c[i]);
      return out;
    }
    case ClusterMode::None:
      break;
  }
  return keep_topk(c, p.nms);
}

}  // namespace pysm::infer
