// Clustering of one image's decoded candidates, nvinfer's `cluster-mode`:
//   0 GroupRectangles - DeepStream's shipped builds have no OpenCV and run NMS with top-k 20 and
//                       IoU 0.5 instead; the caller (pysm/infer/postprocess.py) sets that up;
//   1 DBSCAN          - boxes closer than `eps` (distance 1 - IoU, same class) form clusters; a box
//                       with at least `min_boxes` neighbours (itself included) whose scores sum to at
//                       least `min_score` is a core box; every cluster becomes one box, the
//                       score-weighted mean of its members, scored with its best member; boxes in no
//                       cluster are dropped. Classes with min_boxes <= 0 are not clustered;
//   2 NMS (pysm/nms.hpp);
//   3 hybrid          - DBSCAN drops the boxes in no cluster, keeps the members unmerged, then NMS;
//   4 none.
// Every mode ends with the per-class and total top-k of NmsParams, best first.
#pragma once
#include <vector>

#include "pysm/box_decode.hpp"
#include "pysm/nms.hpp"

namespace pysm::infer {

enum class ClusterMode : int { GroupRectangles = 0, Dbscan = 1, Nms = 2, Hybrid = 3, None = 4 };

struct DbscanParams {
  float default_eps = 0.f;
  int default_min_boxes = 0;
  float default_min_score = 0.f;
  std::vector<float> eps;        // per class (index = class id); may be short
  std::vector<int> min_boxes;
  std::vector<float> min_score;
};

struct ClusterParams {
  ClusterMode mode = ClusterMode::Nms;
  NmsParams nms;        // the suppression of modes 0/2/3 and the top-k of every mode
  DbscanParams dbscan;  // modes 1 and 3
};

// NMS on the device when the mode's clustering is NMS alone (modes 0 and 2).
inline bool clusters_by_nms(ClusterMode m) { return m == ClusterMode::Nms || m == ClusterMode::GroupRectangles; }

// DBSCAN over score-sorted candidates (see above); `merge` false keeps cluster members as they are
// (hybrid mode). Returns boxes sorted best first.
std::vector<Detection> dbscan_cpu(const Detection* sorted, int n, const DbscanParams& p, bool merge);

// The whole clustering of one image's candidates (any order), best first.
std::vector<Detection> cluster_cpu(std::vector<Detection> candidates, const ClusterParams& p);

}  // namespace pysm::infer
