# infer_ops: bindings of the inference ops of the core (csrc/infer): batch preprocessing, box
# decoding + NMS, and writing results into a Buffer's native metadata. pysm.infer drives these;
# the functions taking plain arrays exist so that the ops can be tested against NumPy.
#
# Arrays cross in by borrowing: a NumPy array, a torch tensor or a pysm Tensor is viewed as a
# native Tensor for the duration of one call (no copy, no reference kept); whatever the core keeps
# (tensor output metadata) it copies first.

from libcpp.map cimport map as cmap
from libcpp.utility cimport pair
from libcpp.memory cimport weak_ptr

cdef extern from "pysm/meta.hpp" namespace "pysm" nogil:
    cdef cppclass CInferColor "pysm::Color":
        double r, g, b, a
    cdef cppclass CInferRect "pysm::RectParams":
        float left, top, width, height
        int border_width
        CInferColor border_color
        cbool has_bg_color
        CInferColor bg_color
    cdef cppclass CInferFont "pysm::FontParams":
        string name
        int size
        CInferColor color
    cdef cppclass CInferText "pysm::TextParams":
        string display_text
        int x_offset, y_offset
        CInferFont font
        cbool set_bg_clr
        CInferColor text_bg_clr
    cdef cppclass CInferLabelInfo "pysm::LabelInfo":
        string label
        int class_id
        float prob
        int label_id
        int num_classes
    cdef cppclass CInferClassifierMeta "pysm::ClassifierMeta":
        int unique_component_id
        int classifier_type
        vector[CInferLabelInfo] labels
    cdef cppclass CInferUserMeta "pysm::UserMeta":
        int meta_type
    cdef cppclass CInferTensorOutputMeta "pysm::TensorOutputMeta"(CInferUserMeta):
        int unique_id
        vector[string] names
        cmap[string, CTensor] layers
    cdef cppclass CInferObjectMeta "pysm::ObjectMeta":
        int class_id
        uint64_t object_id
        int unique_component_id
        float confidence
        CInferRect rect_params
        CInferRect detector_bbox
        CInferText text_params
        string label
        vector[shared_ptr[CInferClassifierMeta]] classifiers
        vector[shared_ptr[CInferUserMeta]] user_meta
        weak_ptr[CInferObjectMeta] parent
    cdef cppclass CInferFrameMeta "pysm::FrameMeta":
        uint64_t frame_number
        uint32_t batch_id
        uint32_t source_id
        uint32_t source_width, source_height
        uint32_t pipeline_width, pipeline_height
        cbool infer_done
        vector[shared_ptr[CInferObjectMeta]] objects
        vector[shared_ptr[CInferUserMeta]] user_meta
    cdef cppclass CInferBatchMeta "pysm::BatchMeta":
        vector[shared_ptr[CInferFrameMeta]] frames

cdef extern from "pysm/preprocess.hpp" namespace "pysm::infer" nogil:
    cdef enum class CNetworkColor "pysm::infer::NetworkColor"(int):
        pass
    cdef enum class CTensorOrder "pysm::infer::TensorOrder"(int):
        pass
    cdef enum class CScalingFilter "pysm::infer::ScalingFilter"(int):
        pass
    cdef cppclass CPreprocessParams "pysm::infer::PreprocessParams":
        int width, height
        CNetworkColor color
        CTensorOrder order
        CScalingFilter filter
        float scale
        float offsets[3]
        cbool maintain_aspect_ratio
        cbool symmetric_padding
        float pad_value[3]
    cdef cppclass CCropRegion "pysm::infer::CropRegion":
        int frame, x, y, width, height
    cdef cppclass CInputTransform "pysm::infer::InputTransform":
        int crop_x, crop_y, crop_w, crop_h
        int pad_x, pad_y, scaled_w, scaled_h
        float sx, sy
        cbool valid
    void set_color_description "pysm::infer::set_color_description"(CSurface& s, int matrix, int range)
    vector[CInputTransform] c_preprocess "pysm::infer::preprocess"(
        const vector[CSurface]& frames, const vector[CCropRegion]& regions, const CPreprocessParams& p,
        CTensor& out, StreamHandle stream) except +raise_native

cdef extern from "pysm/box_decode.hpp" namespace "pysm::infer" nogil:
    cdef cppclass CDetection "pysm::infer::Detection":
        float x1, y1, x2, y2, score
        int32_t class_id
    cdef enum class CBoxDecoder "pysm::infer::BoxDecoder"(int):
        pass
    cdef cppclass CDecodeParams "pysm::infer::DecodeParams":
        CBoxDecoder kind
        int num_classes
        int net_width, net_height
        float default_threshold
        vector[float] thresholds
        int max_candidates
        vector[int] strides
        cbool yolo_xyxy
        cbool normalized
        float box_norm
        int background_class
    cdef cppclass CDeviceCandidates "pysm::infer::DeviceCandidates":
        CTensor dets
        CTensor counts
        int batch, capacity, classes
    vector[vector[CDetection]] decode_boxes_cpu "pysm::infer::decode_boxes_cpu"(
        const vector[CTensor]& outputs, const CDecodeParams& p) except +raise_native
    CDeviceCandidates decode_boxes_cuda "pysm::infer::decode_boxes_cuda"(
        const vector[CTensor]& outputs, const CDecodeParams& p, StreamHandle stream) except +raise_native

cdef extern from "pysm/nms.hpp" namespace "pysm::infer" nogil:
    cdef cppclass CNmsParams "pysm::infer::NmsParams":
        float default_iou_threshold
        int default_topk
        vector[float] iou_threshold
        vector[int] topk
        int topk_total
        cbool class_agnostic
    vector[int] nms_cpu "pysm::infer::nms_cpu"(const CDetection* sorted, int n, const CNmsParams& p) except +raise_native
    void nms_cuda "pysm::infer::nms_cuda"(const CDetection* dets, const int* counts, int batch, int capacity,
                                          int num_classes, const CNmsParams& p, CDetection* out, int* out_counts,
                                          int device, StreamHandle stream) except +raise_native

cdef extern from "pysm/cluster.hpp" namespace "pysm::infer" nogil:
    cdef enum class CClusterMode "pysm::infer::ClusterMode":
        pass
    cdef cppclass CDbscanParams "pysm::infer::DbscanParams":
        float default_eps
        int default_min_boxes
        float default_min_score
        vector[float] eps
        vector[int] min_boxes
        vector[float] min_score
    cdef cppclass CClusterParams "pysm::infer::ClusterParams":
        CClusterMode mode
        CNmsParams nms
        CDbscanParams dbscan
    vector[CDetection] cluster_cpu "pysm::infer::cluster_cpu"(
        vector[CDetection] candidates, const CClusterParams& p) except +raise_native

cdef extern from "pysm/detect.hpp" namespace "pysm::infer" nogil:
    cdef cppclass CPendingDetections "pysm::infer::PendingDetections":
        CPendingDetections()
        cbool valid()
        vector[vector[CDetection]] collect() except +raise_native
    CPendingDetections c_detect_async "pysm::infer::detect_async"(
        const vector[CTensor]& outputs, const CDecodeParams& decode, const CClusterParams& cluster,
        StreamHandle stream) except +raise_native

cdef extern from "pysm/object_history.hpp" namespace "pysm::infer" nogil:
    cdef cppclass CObjectHistory "pysm::infer::ObjectHistory":
        CObjectHistory(int64_t reinfer_interval, cbool classifier)
        size_t size()

cdef extern from "pysm/infer_meta.hpp" namespace "pysm::infer" nogil:
    cdef cppclass CInferItem "pysm::infer::InferItem":
        shared_ptr[CInferFrameMeta] frame
        int surface
        shared_ptr[CInferObjectMeta] object
        CCropRegion region
        CInputTransform transform
    cdef cppclass CSelectParams "pysm::infer::SelectParams":
        cbool secondary
        int operate_on_gie_id
        vector[int] operate_on_class_ids
        int min_width, min_height, max_width, max_height
        shared_ptr[CObjectHistory] history
    cdef cppclass CClassAttrs "pysm::infer::ClassAttrs":
        cbool has_border_color
        CInferColor border_color
        cbool has_bg_color
        CInferColor bg_color
        float post_cluster_threshold
        float min_width, min_height, max_width, max_height
        float roi_top_offset, roi_bottom_offset
    cdef cppclass CDetectionOutput "pysm::infer::DetectionOutput":
        int unique_id
        vector[string] labels
        CClassAttrs all
        cmap[int, CClassAttrs] per_class
        vector[int] filter_out_class_ids
        int net_width, net_height
    cdef cppclass CClassifierOutput "pysm::infer::ClassifierOutput":
        int unique_id
        float threshold
        int classifier_type
        vector[vector[string]] labels
    vector[CInferItem] plan_items "pysm::infer::plan_items"(CBuffer& buffer, const CSelectParams& p) except +raise_native
    void preprocess_items "pysm::infer::preprocess_items"(const CBuffer& buffer, vector[CInferItem]& items,
                                                          const CPreprocessParams& p, CTensor& out,
                                                          StreamHandle stream) except +raise_native
    int attach_detections "pysm::infer::attach_detections"(CBuffer& buffer, const vector[CInferItem]& items,
                                                           const vector[vector[CDetection]]& dets,
                                                           const CDetectionOutput& p) except +raise_native
    int attach_classifications "pysm::infer::attach_classifications"(
        CBuffer& buffer, const vector[CInferItem]& items, const vector[CTensor]& outputs,
        const CClassifierOutput& p) except +raise_native
    void attach_tensor_output "pysm::infer::attach_tensor_output"(
        CBuffer& buffer, const vector[CInferItem]& items, const vector[string]& names,
        const vector[CTensor]& outputs, int unique_id) except +raise_native
    void attach_segmentation "pysm::infer::attach_segmentation"(
        CBuffer& buffer, const vector[CInferItem]& items, const CTensor& probs, cbool nhwc, float threshold,
        int unique_id) except +raise_native


# ---- borrowing arrays as native tensors -------------------------------------------------------

_INFER_NP_KIND_CODE = {"i": 0, "u": 1, "f": 2, "b": 6}
_INFER_TORCH_DTYPES = {
    "torch.float32": (2, 32), "torch.float16": (2, 16), "torch.bfloat16": (4, 16), "torch.float64": (2, 64),
    "torch.uint8": (1, 8), "torch.int8": (0, 8), "torch.int16": (0, 16), "torch.int32": (0, 32),
    "torch.int64": (0, 64), "torch.uint16": (1, 16), "torch.bool": (6, 8),
}


cdef CTensor _borrow(object obj) except *:
    """View `obj` (pysm Tensor, torch tensor, NumPy array or any __array_interface__/DLPack
    producer) as a native Tensor without copying. The caller keeps `obj` alive during the call."""
    cdef CDType dt
    cdef CDevice dev
    cdef vector[int64_t] shape, strides
    cdef size_t data
    if isinstance(obj, Tensor):
        return (<Tensor>obj).c
    mod = type(obj).__module__
    if mod.startswith("torch"):
        code_bits = _INFER_TORCH_DTYPES.get(str(obj.dtype))
        if code_bits is None:
            raise _errors.InvalidArgument(f"torch dtype {obj.dtype} is not supported")
        dt.code = code_bits[0]
        dt.bits = code_bits[1]
        dt.lanes = 1
        for d in obj.shape:
            shape.push_back(int(d))
        for s in obj.stride():
            strides.push_back(int(s))
        if obj.device.type == "cuda":
            dev.type = CDeviceType.CUDA
            dev.id = obj.device.index or 0
        elif obj.device.type == "cpu":
            dev.type = CDeviceType.CPU
            dev.id = 0
        else:
            raise _errors.InvalidArgument(f"torch device {obj.device} is not supported")
        data = <size_t>obj.data_ptr()
    else:
        import numpy as np
        if not hasattr(obj, "__array_interface__"):
            if hasattr(obj, "__dlpack__"):
                obj = np.from_dlpack(obj)
            else:
                raise _errors.InvalidArgument(f"cannot use a {type(obj).__name__} as a tensor")
        arr = np.asarray(obj)
        kind = arr.dtype.kind
        if kind not in _INFER_NP_KIND_CODE:
            raise _errors.InvalidArgument(f"NumPy dtype {arr.dtype} is not supported")
        dt.code = _INFER_NP_KIND_CODE[kind]
        dt.bits = arr.dtype.itemsize * 8
        dt.lanes = 1
        item = arr.dtype.itemsize
        for d in arr.shape:
            shape.push_back(int(d))
        for s in arr.strides:
            if s % item:
                raise _errors.InvalidArgument("array strides must be multiples of the item size")
            strides.push_back(int(s // item))
        dev.type = CDeviceType.CPU
        dev.id = 0
        data = <size_t>arr.__array_interface__["data"][0]
    return CTensor(shared_ptr[void](), <void*>data, dt, shape, strides, dev, b"")


cdef object _to_numpy(const CTensor& t):
    """A NumPy copy of a native tensor (device tensors are copied to the host first)."""
    import numpy as np
    cdef CDevice cpu
    cpu.type = CDeviceType.CPU
    cpu.id = 0
    cdef CTensor h
    cdef CDType dt = t.dtype()
    kinds = {0: "i", 1: "u", 2: "f", 6: "b"}
    if dt.code not in kinds:
        raise _errors.InvalidArgument(f"dtype {dt.str().decode()} has no NumPy equivalent")
    out = np.empty(tuple(t.shape()), dtype=np.dtype(f"{kinds[dt.code]}{dt.itemsize()}"))
    cdef CTensor dst = _borrow(out)
    with nogil:
        if t.device().is_cuda():
            h = t.to(cpu, <StreamHandle>NULL)
            copy_tensor(h, dst, <StreamHandle>NULL)
        else:
            copy_tensor(t, dst, <StreamHandle>NULL)
    return out


cdef vector[CTensor] _borrow_all(list objs) except *:
    cdef vector[CTensor] out
    for o in objs:
        out.push_back(_borrow(o))
    return out


# ---- parameter conversion ----------------------------------------------------------------------

cdef CPreprocessParams _pre_params(dict p) except *:
    cdef CPreprocessParams c
    c.width = int(p["width"])
    c.height = int(p["height"])
    c.color = <CNetworkColor><int>int(p.get("color", 0))
    c.order = <CTensorOrder><int>int(p.get("order", 0))
    c.filter = <CScalingFilter><int>int(p.get("filter", 1))
    c.scale = float(p.get("scale", 1.0))
    offs = list(p.get("offsets", (0.0, 0.0, 0.0)))
    pads = p.get("pad_value", 0.0)
    if not isinstance(pads, (list, tuple)):
        pads = (pads,)
    pads = list(pads)
    for i in range(3):
        c.offsets[i] = float(offs[i] if i < len(offs) else (offs[0] if len(offs) == 1 else 0.0))
        c.pad_value[i] = float(pads[i] if i < len(pads) else pads[0] if pads else 0.0)
    c.maintain_aspect_ratio = bool(p.get("maintain_aspect_ratio", False))
    c.symmetric_padding = bool(p.get("symmetric_padding", False))
    return c


_INFER_DECODERS = {"yolox": 0, "yolo": 1, "detectnet_v2": 2, "ssd": 3}


cdef CDecodeParams _decode_params(dict p) except *:
    cdef CDecodeParams c
    kind = p.get("kind", "yolox")
    if kind not in _INFER_DECODERS:
        raise _errors.ConfigError(f"unknown box decoder '{kind}'; expected one of {', '.join(_INFER_DECODERS)}")
    c.kind = <CBoxDecoder><int>_INFER_DECODERS[kind]
    c.num_classes = int(p.get("num_classes", 0))
    c.net_width = int(p["net_width"])
    c.net_height = int(p["net_height"])
    # "thresholds": one value (all classes) or a per-class list; "default_threshold" for classes
    # beyond the list.
    thr = p.get("thresholds", [])
    if not isinstance(thr, (list, tuple)):
        thr = [thr]
    c.default_threshold = float(p.get("default_threshold", thr[0] if len(thr) == 1 else 0.2))
    c.thresholds.clear()
    if len(thr) > 1:
        for t in thr:
            c.thresholds.push_back(float(t))
    c.max_candidates = int(p.get("max_candidates", 1024))
    if "strides" in p:
        c.strides.clear()
        for s in p["strides"]:
            c.strides.push_back(int(s))
    c.yolo_xyxy = bool(p.get("yolo_xyxy", False))
    c.normalized = bool(p.get("normalized", False))
    c.box_norm = float(p.get("box_norm", 35.0))
    c.background_class = int(p.get("background_class", -1))
    return c


cdef CNmsParams _nms_params(dict p) except *:
    cdef CNmsParams c
    iou = p.get("iou_threshold", 0.3)
    if not isinstance(iou, (list, tuple)):
        iou = [iou]
    topk = p.get("topk", -1)
    if not isinstance(topk, (list, tuple)):
        topk = [topk]
    # One value = all classes; a list = per class, with the defaults for classes beyond it.
    c.default_iou_threshold = float(p.get("default_iou_threshold", iou[0] if len(iou) == 1 else 0.3))
    c.default_topk = int(p.get("default_topk", topk[0] if len(topk) == 1 else -1))
    c.iou_threshold.clear()
    c.topk.clear()
    if len(iou) > 1:
        for v in iou:
            c.iou_threshold.push_back(float(v))
    if len(topk) > 1:
        for v in topk:
            c.topk.push_back(int(v))
    c.topk_total = int(p.get("topk_total", -1))
    c.class_agnostic = bool(p.get("class_agnostic", False))
    return c


cdef CClusterParams _cluster_params(dict p) except *:
    """{'mode': cluster-mode, 'nms': {...} (as _nms_params), 'default_eps', 'default_min_boxes',
    'default_min_score', and per-class lists 'eps', 'min_boxes', 'min_score' (index = class id)}."""
    cdef CClusterParams c
    mode = int(p.get("mode", 2))
    if mode not in (0, 1, 2, 3, 4):
        raise _errors.InvalidArgument(f"cluster mode {mode}: use 0-4")
    c.mode = <CClusterMode>mode
    c.nms = _nms_params(p.get("nms", {}))
    c.dbscan.default_eps = float(p.get("default_eps", 0.0))
    c.dbscan.default_min_boxes = int(p.get("default_min_boxes", 0))
    c.dbscan.default_min_score = float(p.get("default_min_score", 0.0))
    for v in p.get("eps", ()):
        c.dbscan.eps.push_back(float(v))
    for v in p.get("min_boxes", ()):
        c.dbscan.min_boxes.push_back(int(v))
    for v in p.get("min_score", ()):
        c.dbscan.min_score.push_back(float(v))
    return c


cdef CInferColor _color(object rgba) except *:
    cdef CInferColor c
    v = [float(x) for x in rgba]
    c.r = v[0]
    c.g = v[1]
    c.b = v[2]
    c.a = v[3] if len(v) > 3 else 1.0
    return c


cdef CClassAttrs _class_attrs(dict a) except *:
    cdef CClassAttrs c
    if a.get("border_color") is not None:
        c.has_border_color = True
        c.border_color = _color(a["border_color"])
    if a.get("bg_color") is not None:
        c.has_bg_color = True
        c.bg_color = _color(a["bg_color"])
    c.post_cluster_threshold = float(a.get("post_cluster_threshold", 0.0))
    c.min_width = float(a.get("min_width", 0))
    c.min_height = float(a.get("min_height", 0))
    c.max_width = float(a.get("max_width", 0))
    c.max_height = float(a.get("max_height", 0))
    c.roi_top_offset = float(a.get("roi_top_offset", 0))
    c.roi_bottom_offset = float(a.get("roi_bottom_offset", 0))
    return c


cdef CDetectionOutput _detection_output(dict p) except *:
    cdef CDetectionOutput c
    c.unique_id = int(p.get("unique_id", 15))
    for lab in p.get("labels", ()):
        c.labels.push_back(str(lab).encode())
    c.all = _class_attrs(p.get("all", {}))
    for k, v in p.get("per_class", {}).items():
        c.per_class[int(k)] = _class_attrs(v)
    for k in p.get("filter_out_class_ids", ()):
        c.filter_out_class_ids.push_back(int(k))
    c.net_width = int(p.get("net_width", 0))
    c.net_height = int(p.get("net_height", 0))
    return c


cdef vector[CDetection] _detections_from_rows(object rows) except *:
    """Rows (class_id, confidence, x1, y1, x2, y2) -> native detections."""
    import numpy as np
    cdef vector[CDetection] out
    cdef CDetection d
    a = np.asarray(rows, dtype=np.float64)
    if a.size == 0:
        return out
    if a.ndim != 2 or a.shape[1] < 6:
        raise _errors.InferenceError(
            f"parser output must be rows of (class_id, confidence, x1, y1, x2, y2), got shape {a.shape}")
    for r in a:
        d.class_id = <int32_t>int(r[0])
        d.score = float(r[1])
        d.x1 = float(r[2])
        d.y1 = float(r[3])
        d.x2 = float(r[4])
        d.y2 = float(r[5])
        out.push_back(d)
    return out


cdef object _detections_to_array(const vector[CDetection]& dets):
    import numpy as np
    out = np.empty((dets.size(), 6), dtype=np.float32)
    for i in range(dets.size()):
        out[i, 0] = dets[i].class_id
        out[i, 1] = dets[i].score
        out[i, 2] = dets[i].x1
        out[i, 3] = dets[i].y1
        out[i, 4] = dets[i].x2
        out[i, 5] = dets[i].y2
    return out


cdef object _transform_dict(const CInputTransform& t):
    return {"crop": (t.crop_x, t.crop_y, t.crop_w, t.crop_h), "pad": (t.pad_x, t.pad_y),
            "scaled": (t.scaled_w, t.scaled_h), "scale": (t.sx, t.sy), "valid": bool(t.valid)}


# ---- the plan of one batch ---------------------------------------------------------------------

cdef class InferPlan:
    """The frames (primary) or objects (secondary) of one Buffer that an engine infers, in order."""
    cdef vector[CInferItem] items

    def __len__(self):
        return self.items.size()

    def chunk(self, int start, int stop):
        """Items [start, stop) as a new plan (one network batch)."""
        cdef InferPlan out = InferPlan.__new__(InferPlan)
        cdef int n = self.items.size()
        start = max(0, min(start, n))
        stop = max(start, min(stop, n))
        cdef int i
        for i in range(start, stop):
            out.items.push_back(self.items[i])
        return out

    def transforms(self):
        """Per item: how it was placed in the network input (after preprocess)."""
        return [_transform_dict(self.items[i].transform) for i in range(self.items.size())]

    def sources(self):
        """Per item: (source_id, frame_number, batch_id, is_object)."""
        return [(self.items[i].frame.get().source_id, self.items[i].frame.get().frame_number,
                 self.items[i].frame.get().batch_id, self.items[i].object.get() != NULL)
                for i in range(self.items.size())]


cdef class ObjectHistory:
    """nvinfer's secondary-mode object history (pysm/object_history.hpp): which tracked objects
    to infer again, and the classifier results to attach to the others. One per engine."""
    cdef shared_ptr[CObjectHistory] c

    def __cinit__(self, int64_t reinfer_interval=2147483647, bint classifier=True):
        if reinfer_interval < 0:
            raise _errors.InvalidArgument(f"secondary-reinfer-interval={reinfer_interval}: use 0 or more")
        self.c = make_shared[CObjectHistory](reinfer_interval, classifier)

    def __len__(self):
        """Tracked objects remembered now."""
        return self.c.get().size()


def infer_plan(Buffer buffer, dict select):
    """Select what to infer in `buffer`: whole frames, or objects (select['secondary']; an
    ObjectHistory in select['history'] skips tracked objects inferred lately)."""
    cdef CSelectParams sp
    sp.secondary = bool(select.get("secondary", False))
    sp.operate_on_gie_id = int(select.get("operate_on_gie_id", -1))
    for c in select.get("operate_on_class_ids", ()):
        sp.operate_on_class_ids.push_back(int(c))
    sp.min_width = int(select.get("min_width", 0))
    sp.min_height = int(select.get("min_height", 0))
    sp.max_width = int(select.get("max_width", 0))
    sp.max_height = int(select.get("max_height", 0))
    history = select.get("history")
    if history is not None:
        sp.history = (<ObjectHistory?>history).c
    cdef InferPlan plan = InferPlan.__new__(InferPlan)
    plan.items = plan_items(buffer.c.get()[0], sp)  # microseconds: not worth giving up the GIL
    return plan


cdef bint _launch_only(Buffer buffer, CTensor& out):
    """True when preprocessing `buffer` into `out` only queues device work (no upload, no CPU twin)."""
    if out.device().type != CDeviceType.CUDA:
        return False
    cdef size_t i
    cdef CBuffer* b = buffer.c.get()
    for i in range(b.surfaces.size()):
        if b.surfaces[i].device.type != CDeviceType.CUDA:
            return False
    return True


def infer_preprocess(Buffer buffer, InferPlan plan, dict params, out, size_t stream=0):
    """Preprocess the plan's items of `buffer` into `out` (the network input, host or device)."""
    cdef CPreprocessParams p = _pre_params(params)
    cdef CTensor t = _borrow(out)
    if _launch_only(buffer, t):
        # Device frames into a device tensor: this only queues a kernel (tens of µs). Keeping the
        # GIL is cheaper than giving it up: with many decoder threads waiting for it, getting it
        # back costs a switch interval (5 ms) or more.
        preprocess_items(buffer.c.get()[0], plan.items, p, t, <StreamHandle>stream)
        return
    with nogil:
        preprocess_items(buffer.c.get()[0], plan.items, p, t, <StreamHandle>stream)


cdef class PendingDetect:
    """Detections of one batch queued on the GPU (infer_detect_submit); infer_detect_finish
    waits for them and attaches them. Dropping it unfinished just releases the results."""
    cdef CPendingDetections p

    def rows(self):
        """Wait for the detections instead of attaching them: one (K, 6) array per item of
        class_id, score, x1, y1, x2, y2 in network pixels, best first."""
        if not self.p.valid():
            raise _errors.InvalidArgument("these detections were already collected")
        cdef vector[vector[CDetection]] dets
        with nogil:
            dets = self.p.collect()
        self.p = CPendingDetections()
        return [_detections_to_array(dets[i]) for i in range(dets.size())]


def infer_detect_submit(list outputs, dict decode, dict cluster, size_t stream=0):
    """Queue decode (+ NMS) of the batch outputs and the copy of the results to the host; returns
    a PendingDetect without waiting for the device (host outputs are processed at once)."""
    cdef vector[CTensor] outs = _borrow_all(outputs)
    cdef CDecodeParams dp = _decode_params(decode)
    cdef CClusterParams cp = _cluster_params(cluster)
    cdef PendingDetect pending = PendingDetect.__new__(PendingDetect)
    if outs.size() and outs[0].device().type == CDeviceType.CUDA:
        pending.p = c_detect_async(outs, dp, cp, <StreamHandle>stream)  # launches only: keep the GIL
        return pending
    with nogil:
        pending.p = c_detect_async(outs, dp, cp, <StreamHandle>stream)
    return pending


def infer_detect_finish(Buffer buffer, InferPlan plan, PendingDetect pending, dict attach):
    """Wait for a submitted batch's detections and attach them as ObjectMeta; returns the count."""
    if not pending.p.valid():
        raise _errors.InvalidArgument("these detections were already attached")
    cdef CDetectionOutput ap = _detection_output(attach)
    cdef vector[vector[CDetection]] dets
    cdef int n
    with nogil:
        dets = pending.p.collect()
        n = attach_detections(buffer.c.get()[0], plan.items, dets, ap)
    pending.p = CPendingDetections()
    return n


def infer_attach_parsed(Buffer buffer, InferPlan plan, list per_item_rows, dict cluster, dict attach):
    """Attach detections given as rows (class_id, confidence, x1, y1, x2, y2) in network pixels,
    one row set per item (a custom parser's result), after clustering."""
    if len(per_item_rows) != plan.items.size():
        raise _errors.InferenceError(
            f"the parser returned {len(per_item_rows)} results for a batch of {plan.items.size()}")
    cdef CClusterParams cp = _cluster_params(cluster)
    cdef CDetectionOutput ap = _detection_output(attach)
    cdef vector[vector[CDetection]] dets
    cdef vector[CDetection] cand
    for rows in per_item_rows:
        cand = _detections_from_rows(rows)
        dets.push_back(cluster_cpu(cand, cp))
    cdef int n
    with nogil:
        n = attach_detections(buffer.c.get()[0], plan.items, dets, ap)
    return n


def infer_classify(Buffer buffer, InferPlan plan, list outputs, dict params):
    """Attach classifier results (host float32 [N, C] probabilities per output layer)."""
    cdef vector[CTensor] outs = _borrow_all(outputs)
    cdef CClassifierOutput cp
    cp.unique_id = int(params.get("unique_id", 15))
    cp.threshold = float(params.get("threshold", 0.5))
    cp.classifier_type = int(params.get("classifier_type", 0))
    cdef vector[string] row
    for layer in params.get("labels", ()):
        row.clear()
        for lab in layer:
            row.push_back(str(lab).encode())
        cp.labels.push_back(row)
    cdef int n
    with nogil:
        n = attach_classifications(buffer.c.get()[0], plan.items, outs, cp)
    return n


def infer_segmentation(Buffer buffer, InferPlan plan, probs, bint nhwc, float threshold, int unique_id):
    """Attach SegmentationMeta per item from host float32 probabilities [N, C, H, W] (or NHWC)."""
    cdef CTensor t = _borrow(probs)
    with nogil:
        attach_segmentation(buffer.c.get()[0], plan.items, t, nhwc, threshold, unique_id)


def infer_tensor_meta(Buffer buffer, InferPlan plan, list names, list outputs, int unique_id, size_t stream=0):
    """Attach TensorOutputMeta: owned copies of the outputs (same device), one slice per item."""
    cdef vector[CTensor] outs = _borrow_all(outputs)
    cdef vector[CTensor] owned
    cdef vector[string] cnames
    cdef size_t i
    for nm in names:
        cnames.push_back(str(nm).encode())
    with nogil:
        for i in range(outs.size()):
            owned.push_back(outs[i].clone(<StreamHandle>stream))
        attach_tensor_output(buffer.c.get()[0], plan.items, cnames, owned, unique_id)


# ---- array-level entry points (tests, custom tooling) ------------------------------------------

def infer_preprocess_arrays(list frames, list regions, dict params, out, size_t stream=0):
    """Preprocess frames given as (array, format[, matrix, range]) into `out`.

    `regions`: (frame_index, x, y, width, height) per network item (width/height 0 = whole frame).
    Returns the per-item transforms."""
    cdef vector[CSurface] surfaces
    cdef CSurface s
    cdef CCropRegion r
    cdef vector[CCropRegion] regs
    keep = []
    for f in frames:
        arr, fmt = f[0], f[1]
        keep.append(arr)
        s = CSurface.from_tensor(_borrow(arr), _color_format(fmt))
        if len(f) > 2:
            set_color_description(s, int(f[2]), int(f[3]) if len(f) > 3 else 0)
        surfaces.push_back(s)
    for reg in regions:
        r.frame = int(reg[0])
        r.x = int(reg[1])
        r.y = int(reg[2])
        r.width = int(reg[3])
        r.height = int(reg[4])
        regs.push_back(r)
    cdef CPreprocessParams p = _pre_params(params)
    cdef CTensor t = _borrow(out)
    cdef vector[CInputTransform] tr
    with nogil:
        tr = c_preprocess(surfaces, regs, p, t, <StreamHandle>stream)
    return [_transform_dict(tr[i]) for i in range(tr.size())]


cdef CColorFormat _color_format(object fmt) except *:
    names = {"GRAY8": CColorFormat.GRAY8, "NV12": CColorFormat.NV12, "P016": CColorFormat.P016,
             "P010": CColorFormat.P016, "RGB": CColorFormat.RGB, "BGR": CColorFormat.BGR,
             "RGBA": CColorFormat.RGBA, "BGRA": CColorFormat.BGRA, "I420": CColorFormat.I420}
    key = str(getattr(fmt, "name", fmt)).upper()
    if key not in names:
        raise _errors.InvalidArgument(f"unknown colour format {fmt!r}")
    return names[key]


def infer_decode_boxes(list outputs, dict params, size_t stream=0):
    """Candidates per image as float32 arrays (K, 6): class_id, score, x1, y1, x2, y2, best first.
    Host outputs run the CPU decoder, device outputs (torch CUDA tensors) the CUDA one."""
    cdef vector[CTensor] outs = _borrow_all(outputs)
    cdef CDecodeParams dp = _decode_params(params)
    cdef vector[vector[CDetection]] res
    cdef CDeviceCandidates dc
    if outs.size() and outs[0].device().is_cuda():
        with nogil:
            dc = decode_boxes_cuda(outs, dp, <StreamHandle>stream)
        counts = _to_numpy(dc.counts)
        recs = _to_numpy(dc.dets).view("float32").reshape(dc.batch, dc.capacity, 6)
        result = []
        for b in range(dc.batch):
            r = recs[b, :counts[b]].copy()
            cls = r[:, 5].copy().view("int32").astype("float32")
            result.append(__import__("numpy").concatenate([cls[:, None], r[:, 4:5], r[:, 0:4]], axis=1))
        return result
    with nogil:
        res = decode_boxes_cpu(outs, dp)
    return [_detections_to_array(res[i]) for i in range(res.size())]


def infer_cluster(rows, dict params):
    """Cluster candidates (K, 6): class_id, score, x1, y1, x2, y2 as cluster-mode does on the host
    (params as _cluster_params takes them); returns the (M, 6) result, best first."""
    cdef vector[CDetection] cand = _detections_from_rows(rows)
    cdef CClusterParams p = _cluster_params(params)
    cdef vector[CDetection] out
    with nogil:
        out = cluster_cpu(cand, p)
    return _detections_to_array(out)


def infer_nms(rows, dict params, str device="cpu"):
    """NMS over candidates (K, 6): class_id, score, x1, y1, x2, y2 sorted best first; returns the
    kept row indices. device 'cuda[:N]' runs the CUDA kernels (one image)."""
    import numpy as np
    cdef vector[CDetection] cand = _detections_from_rows(rows)
    cdef CNmsParams p = _nms_params(params)
    cdef vector[int] kept
    cdef CDevice dev
    cdef CTensor d_in, d_cnt, d_out, d_out_cnt, h_in, h_cnt
    cdef int n = cand.size()
    cdef int cap = max(n, 1)
    cdef int classes = 1
    for i in range(cand.size()):
        classes = max(classes, cand[i].class_id + 1)
    if not device.startswith("cuda"):
        with nogil:
            kept = nms_cpu(cand.data(), n, p)
        return [kept[i] for i in range(kept.size())]
    dev.type = CDeviceType.CUDA
    dev.id = int(device.split(":")[1]) if ":" in device else 0
    recs = np.zeros((cap, 6), dtype=np.float32)
    arr = _detections_to_array(cand)
    if n:
        recs[:n, :5] = arr[:, [2, 3, 4, 5, 1]]
        recs[:n, 5] = arr[:, 0].astype(np.int32).view(np.float32)
    cnt = np.array([n], dtype=np.int32)
    h_in = _borrow(recs)
    h_cnt = _borrow(cnt)
    with nogil:
        d_in = h_in.to(dev, <StreamHandle>NULL)
        d_cnt = h_cnt.to(dev, <StreamHandle>NULL)
        d_out = d_in.clone(<StreamHandle>NULL)
        d_out_cnt = d_cnt.clone(<StreamHandle>NULL)
        d_in.synchronize()
        d_cnt.synchronize()
        d_out.synchronize()
        d_out_cnt.synchronize()
        nms_cuda(<const CDetection*>d_in.data(), <const int*>d_cnt.data(), 1, cap, classes, p,
                 <CDetection*>d_out.data(), <int*>d_out_cnt.data(), dev.id, default_stream(dev.id))
        h_in = d_out.to(h_in.device(), default_stream(dev.id))
        h_cnt = d_out_cnt.to(h_cnt.device(), default_stream(dev.id))
    out = _to_numpy(h_in)
    k = int(_to_numpy(h_cnt)[0])
    # Kept records -> indices into the input (records are unique by position in sorted order).
    kept_recs = out[:k]
    idx = []
    j = 0
    for r in kept_recs:
        while j < n and not np.array_equal(recs[j], r):
            j += 1
        idx.append(j)
        j += 1
    return idx


def infer_buffer_from_arrays(list frames, str device="cpu"):
    """A Buffer owning copies of frames given as (array, format[, matrix, range]), each its own
    size; FrameMeta is created on first inference (source_id = batch_id = index)."""
    cdef Buffer buf = Buffer()
    cdef CSurface s
    cdef CTensor t
    cdef CDevice dev
    if device.startswith("cuda"):
        dev.type = CDeviceType.CUDA
        dev.id = int(device.split(":")[1]) if ":" in device else 0
    else:
        dev.type = CDeviceType.CPU
        dev.id = 0
    for f in frames:
        arr, fmt = f[0], f[1]
        t = _borrow(arr)
        with nogil:
            t = t.to(dev, <StreamHandle>NULL)
            t.synchronize()
        s = CSurface.from_tensor(t, _color_format(fmt))
        if len(f) > 2:
            set_color_description(s, int(f[2]), int(f[3]) if len(f) > 3 else 0)
        buf.c.get().surfaces.push_back(s)
    return buf


cdef object _rect_dict(const CInferRect& r):
    return {"left": r.left, "top": r.top, "width": r.width, "height": r.height,
            "border_width": r.border_width,
            "border_color": (r.border_color.r, r.border_color.g, r.border_color.b, r.border_color.a),
            "has_bg_color": bool(r.has_bg_color)}


cdef object _user_meta_list(const vector[shared_ptr[CInferUserMeta]]& metas):
    out = []
    cdef CInferTensorOutputMeta* tm
    cdef CSegmentationMeta* sm
    cdef pair[string, CTensor] kv
    for i in range(metas.size()):
        if metas[i].get().meta_type == 13:
            sm = <CSegmentationMeta*>metas[i].get()
            out.append({"meta_type": 13, "unique_id": sm.unique_id, "classes": sm.classes,
                        "class_map": _np_copy_int32(sm.class_map.data(), sm.height, sm.width)})
            continue
        if metas[i].get().meta_type != 12:
            out.append({"meta_type": metas[i].get().meta_type})
            continue
        tm = <CInferTensorOutputMeta*>metas[i].get()
        layers = {}
        for kv in tm.layers:
            layers[kv.first.decode()] = _to_numpy(kv.second)
        out.append({"meta_type": 12, "unique_id": tm.unique_id,
                    "names": [n.decode() for n in tm.names], "layers": layers})
    return out


def infer_buffer_metadata(Buffer buffer):
    """A plain-Python snapshot of the inference results in `buffer` (per frame: objects with
    rects, labels, classifier labels and tensor output layers as NumPy copies)."""
    cdef CInferBatchMeta* bm = <CInferBatchMeta*>buffer.c.get().meta.get()
    cdef CInferFrameMeta* f
    cdef CInferObjectMeta* o
    cdef CInferClassifierMeta* cm
    cdef long parent_index
    cdef size_t k
    frames = []
    if bm == NULL:
        return frames
    for i in range(bm.frames.size()):
        f = bm.frames[i].get()
        objs = []
        for j in range(f.objects.size()):
            o = f.objects[j].get()
            classifiers = []
            for k in range(o.classifiers.size()):
                cm = o.classifiers[k].get()
                classifiers.append({
                    "unique_component_id": cm.unique_component_id,
                    "labels": [(cm.labels[m].label.decode(), cm.labels[m].class_id, cm.labels[m].prob,
                                cm.labels[m].label_id, cm.labels[m].num_classes) for m in range(cm.labels.size())]})
            parent_index = -1
            for k in range(f.objects.size()):
                if f.objects[k].get() == o.parent.lock().get():
                    parent_index = k
            objs.append({
                "class_id": o.class_id, "object_id": o.object_id, "unique_component_id": o.unique_component_id,
                "confidence": o.confidence, "label": o.label.decode(),
                "rect": _rect_dict(o.rect_params), "detector_bbox": _rect_dict(o.detector_bbox),
                "text": {"display_text": o.text_params.display_text.decode(), "x_offset": o.text_params.x_offset,
                         "y_offset": o.text_params.y_offset, "font": o.text_params.font.name.decode(),
                         "font_size": o.text_params.font.size, "set_bg_clr": bool(o.text_params.set_bg_clr)},
                "classifiers": classifiers, "parent": parent_index,
                "user_meta": _user_meta_list(o.user_meta),
            })
        frames.append({"batch_id": f.batch_id, "source_id": f.source_id, "frame_number": f.frame_number,
                       "infer_done": bool(f.infer_done), "objects": objs,
                       "user_meta": _user_meta_list(f.user_meta)})
    return frames
