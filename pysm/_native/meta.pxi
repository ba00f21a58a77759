# meta: views of the native metadata tree (BatchMeta -> FrameMeta -> ObjectMeta, classifier,
# display and user metadata).
#
# A view holds weak_ptrs to its node and to the batch, never a strong reference: when the
# Buffer (and so the BatchMeta) is gone, or the node was removed, any use raises
# ExpiredViewError (a ReferenceError) instead of reading freed memory. Structural changes
# (acquire/append/remove, iteration steps, column reads) go through pysm::meta functions that
# lock the batch mutex; plain field reads/writes do not lock (one stage owns a batch at a time).

from libcpp.map cimport map as cmap
from libcpp.pair cimport pair

cdef extern from "pysm/meta.hpp" namespace "pysm" nogil:
    cdef cppclass CBBoxCoords "pysm::BBoxCoords":
        float left, top, width, height
    cdef cppclass CUserMeta "pysm::UserMeta":
        int meta_type
    cdef cppclass CTensorOutputMeta "pysm::TensorOutputMeta"(CUserMeta):
        int unique_id
        vector[string] names
        cmap[string, CTensor] layers
    cdef cppclass CSegmentationMeta "pysm::SegmentationMeta"(CUserMeta):
        int unique_id, classes, width, height
        vector[int32_t] class_map
        vector[float] class_probabilities
    cdef cppclass CEventMessageMeta "pysm::EventMessageMeta"(CUserMeta):
        int event_type, obj_type, obj_class_id
        int sensor_id, place_id, module_id, frame_id
        double confidence
        uint64_t tracking_id
        float left, top, width, height
        string sensor_str, object_id, ts, uri
        cmap[string, string] ext
    cdef cppclass CJsonMeta "pysm::JsonMeta"(CUserMeta):
        string json
    cdef cppclass CLabelInfo "pysm::LabelInfo":
        string label
        int class_id
        float prob
        int label_id
        int num_classes
    cdef cppclass CClassifierMeta "pysm::ClassifierMeta":
        int unique_component_id
        int classifier_type
        vector[CLabelInfo] labels
    cdef cppclass CObjectMeta "pysm::ObjectMeta":
        int class_id
        uint64_t object_id
        int unique_component_id
        float confidence
        float tracker_confidence
        CRectParams rect_params
        CRectParams detector_bbox
        CRectParams tracker_bbox
        CBBoxCoords nv_bbox
        CMaskParams mask_params
        CTextParams text_params
        string label
        WeakPtr[CObjectMeta] parent
        vector[shared_ptr[CClassifierMeta]] classifiers
        vector[shared_ptr[CUserMeta]] user_meta
    cdef cppclass CDisplayMeta "pysm::DisplayMeta":
        vector[CTextParams] texts
        vector[CRectParams] rects
        vector[CLineParams] lines
        vector[CArrowParams] arrows
        vector[CCircleParams] circles
    cdef cppclass CFrameMeta "pysm::FrameMeta":
        uint64_t frame_number
        uint32_t pad_index
        uint32_t batch_id
        uint32_t source_id
        uint32_t source_width, source_height
        uint32_t pipeline_width, pipeline_height
        int64_t buffer_pts
        uint64_t ntp_timestamp
        cbool infer_done
        vector[shared_ptr[CObjectMeta]] objects
        vector[shared_ptr[CDisplayMeta]] display_meta
        vector[shared_ptr[CUserMeta]] user_meta
    cdef cppclass CBatchMeta "pysm::BatchMeta":
        uint32_t max_frames
        vector[shared_ptr[CFrameMeta]] frames
        vector[shared_ptr[CUserMeta]] user_meta
        shared_ptr[T] acquire[T]() except +raise_native

cdef extern from "pysm/meta.hpp" namespace "pysm::meta" nogil:
    void meta_append "pysm::meta::append"[T, U](CBatchMeta& b, vector[shared_ptr[T]]& lst,
                                                const shared_ptr[U]& node, const char* what) except +raise_native
    void meta_remove "pysm::meta::remove"[T, U](CBatchMeta& b, vector[shared_ptr[T]]& lst,
                                                const shared_ptr[U]& node, const char* what,
                                                const char* where) except +raise_native
    shared_ptr[T] meta_at "pysm::meta::at"[T](CBatchMeta& b, const vector[shared_ptr[T]]& lst, size_t i) except +raise_native
    size_t meta_size "pysm::meta::size"[T](CBatchMeta& b, const vector[shared_ptr[T]]& lst) except +raise_native
    shared_ptr[CUserMeta] next_user_meta(CBatchMeta& b, const vector[shared_ptr[CUserMeta]]& lst,
                                         size_t* pos, int meta_type) except +raise_native
    void meta_add_label "pysm::meta::add_label"(CBatchMeta& b, CClassifierMeta& c, CLabelInfo label) except +raise_native
    void meta_add_text "pysm::meta::add_text"(CBatchMeta& b, CDisplayMeta& d, const CTextParams& v) except +raise_native
    void meta_add_rect "pysm::meta::add_rect"(CBatchMeta& b, CDisplayMeta& d, const CRectParams& v) except +raise_native
    void meta_add_line "pysm::meta::add_line"(CBatchMeta& b, CDisplayMeta& d, const CLineParams& v) except +raise_native
    void meta_add_arrow "pysm::meta::add_arrow"(CBatchMeta& b, CDisplayMeta& d, const CArrowParams& v) except +raise_native
    void meta_add_circle "pysm::meta::add_circle"(CBatchMeta& b, CDisplayMeta& d, const CCircleParams& v) except +raise_native
    cdef cppclass CObjectColumns "pysm::meta::ObjectColumns":
        float* boxes
        cbool xyxy
        int32_t* class_ids
        float* confidences
        float* tracker_confidences
        uint64_t* object_ids
        int32_t* component_ids
    size_t fill_object_columns(CBatchMeta& b, const CFrameMeta& f, const CObjectColumns& out,
                               size_t capacity) except +raise_native
    cdef cppclass CIntMap "pysm::meta::IntMap":
        int height, width
        vector[int32_t] data
    cdef cppclass CFrameSummary "pysm::meta::FrameSummary":
        uint32_t pad_index
        int shape[2]
        vector[int32_t] bboxes
        vector[float] probs
        vector[vector[string]] labels
        vector[int64_t] objects
        vector[CIntMap] seg_maps
        int64_t timestamp
    vector[CFrameSummary] summarize(CBatchMeta& b) except +raise_native
    void generate_event_message(CBatchMeta& b, CEventMessageMeta& msg, const CObjectMeta& obj,
                                const CFrameMeta& frame, const string& sensor, const string& uri,
                                const vector[string]& labels) except +raise_native


cdef extern from *:
    """
    static const unsigned long long PYSM_UNTRACKED_OBJECT_ID = 0xFFFFFFFFFFFFFFFFull;
    """
    unsigned long long PYSM_UNTRACKED_OBJECT_ID

UNTRACKED_OBJECT_ID = PYSM_UNTRACKED_OBJECT_ID
MAX_ELEMENTS_IN_DISPLAY_META = 16

# meta_type values (DeepStream's NvDsMetaType numbers where one exists).
META_TYPE_CUSTOM = 0
META_TYPE_PAYLOAD = 8
META_TYPE_EVENT_MESSAGE = 9
META_TYPE_TENSOR_OUTPUT = 12
META_TYPE_SEGMENTATION = 13
META_TYPE_JSON = 1001

_FRAME_FIELDS = ("frame_number", "pad_index", "batch_id", "source_id", "source_width", "source_height",
                 "pipeline_width", "pipeline_height", "buffer_pts", "ntp_timestamp")


cdef shared_ptr[CBatchMeta] _lock_batch(WeakPtr[CBatchMeta]& b, str what) except *:
    cdef shared_ptr[CBatchMeta] p = b.lock()
    if p.get() == NULL:
        raise _expired(what)
    return p


cdef str _s(const string& s):
    return s.decode("utf-8", "replace")


cdef object _bbox_dict(float left, float top, float width, float height):
    return {"left": left, "top": top, "width": width, "height": height}


cdef object _np_copy_int32(const int32_t* data, Py_ssize_t h, Py_ssize_t w):
    np = _numpy()
    out = np.empty((h, w), dtype=np.int32)
    cdef int32_t[:, ::1] mv = out
    if h * w:
        memcpy(&mv[0, 0], data, h * w * sizeof(int32_t))
    return out


# ---- iterators (single pass; each step takes the batch lock, so appends meanwhile are safe) ----

cdef class _FrameIter:
    cdef WeakPtr[CBatchMeta] _b
    cdef size_t _i

    def __iter__(self):
        return self

    def __next__(self):
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "BatchMetadata.frame_items")
        cdef shared_ptr[CFrameMeta] n = meta_at[CFrameMeta](b.get()[0], b.get().frames, self._i)
        if n.get() == NULL:
            raise StopIteration
        self._i += 1
        return _frame_view(self._b, n)


cdef class _ObjectIter:
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CFrameMeta] _f
    cdef size_t _i

    def __iter__(self):
        return self

    def __next__(self):
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "FrameMetadata.object_items")
        cdef shared_ptr[CFrameMeta] f = self._f.lock()
        if f.get() == NULL:
            raise _expired("FrameMetadata.object_items")
        cdef shared_ptr[CObjectMeta] n = meta_at[CObjectMeta](b.get()[0], f.get().objects, self._i)
        if n.get() == NULL:
            raise StopIteration
        self._i += 1
        return _object_view(self._b, n)


cdef class _DisplayIter:
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CFrameMeta] _f
    cdef size_t _i

    def __iter__(self):
        return self

    def __next__(self):
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "FrameMetadata.display_items")
        cdef shared_ptr[CFrameMeta] f = self._f.lock()
        if f.get() == NULL:
            raise _expired("FrameMetadata.display_items")
        cdef shared_ptr[CDisplayMeta] n = meta_at[CDisplayMeta](b.get()[0], f.get().display_meta, self._i)
        if n.get() == NULL:
            raise StopIteration
        self._i += 1
        return _display_view(self._b, n)


cdef class _ClassifierIter:
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CObjectMeta] _o
    cdef size_t _i

    def __iter__(self):
        return self

    def __next__(self):
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "ObjectMetadata.classifier_items")
        cdef shared_ptr[CObjectMeta] o = self._o.lock()
        if o.get() == NULL:
            raise _expired("ObjectMetadata.classifier_items")
        cdef shared_ptr[CClassifierMeta] n = meta_at[CClassifierMeta](b.get()[0], o.get().classifiers, self._i)
        if n.get() == NULL:
            raise StopIteration
        self._i += 1
        return _classifier_view(self._b, n)


# Filters of _UserMetaIter
cdef enum _UserFilter:
    BY_META_TYPE = 0
    TENSOR_OUTPUT = 1
    SEGMENTATION = 2


cdef class _UserMetaIter:
    # The list lives in a batch, frame or object; _list is an aliasing weak_ptr into that node.
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[vector[shared_ptr[CUserMeta]]] _list
    cdef size_t _pos
    cdef int _filter
    cdef int _meta_type

    def __iter__(self):
        return self

    def __next__(self):
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "user_meta_items")
        cdef shared_ptr[vector[shared_ptr[CUserMeta]]] lst = self._list.lock()
        if lst.get() == NULL:
            raise _expired("user_meta_items")
        cdef shared_ptr[CUserMeta] n
        while True:
            n = next_user_meta(b.get()[0], lst.get()[0], &self._pos,
                               self._meta_type if self._filter == BY_META_TYPE else -1)
            if n.get() == NULL:
                raise StopIteration
            if self._filter == TENSOR_OUTPUT and dynamic_pointer_cast[CTensorOutputMeta, CUserMeta](n).get() == NULL:
                continue
            if self._filter == SEGMENTATION and dynamic_pointer_cast[CSegmentationMeta, CUserMeta](n).get() == NULL:
                continue
            return _user_meta_view(self._b, n)


cdef _UserMetaIter _user_iter(WeakPtr[CBatchMeta] b, shared_ptr[vector[shared_ptr[CUserMeta]]] lst,
                              int filt, int meta_type):
    cdef _UserMetaIter it = _UserMetaIter.__new__(_UserMetaIter)
    it._b = b
    it._list = WeakPtr[vector[shared_ptr[CUserMeta]]](lst)
    it._filter = filt
    it._meta_type = meta_type
    return it


# ---- BatchMetadata ---------------------------------------------------------------------------

cdef class BatchMetadata:
    """Metadata of one batch: its frames and batch-level user metadata."""
    cdef WeakPtr[CBatchMeta] _b

    def __init__(self):
        raise TypeError("BatchMetadata is a view; get it from Buffer.batch_meta")

    cdef shared_ptr[CBatchMeta] _p(self) except *:
        return _lock_batch(self._b, "BatchMetadata")

    @property
    def n_frames(self):
        cdef shared_ptr[CBatchMeta] b = self._p()
        return meta_size[CFrameMeta](b.get()[0], b.get().frames)

    @property
    def is_audio(self):
        """Always False: pysm batches are video."""
        self._p()
        return False

    @property
    def frame_items(self):
        """Single-pass iterator over the FrameMetadata of the batch."""
        self._p()
        cdef _FrameIter it = _FrameIter.__new__(_FrameIter)
        it._b = self._b
        return it

    @property
    def preprocess_batch_items(self):
        """Single-pass iterator over preprocess batch metadata (pysm produces none yet)."""
        self._p()
        return iter(())

    def user_meta_items(self, int meta_type):
        """Single-pass iterator over batch-level user metadata of `meta_type`."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _user_iter(self._b, pysm_alias[vector[shared_ptr[CUserMeta]], CBatchMeta](b, &b.get().user_meta),
                          BY_META_TYPE, meta_type)

    # acquire_*: a new node owned by the batch until it is appended somewhere.
    def acquire_display_meta(self):
        """A new DisplayMetadata; fill it and append it to a frame."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _display_view(self._b, b.get().acquire[CDisplayMeta]())

    def acquire_frame_meta(self, **fields):
        """A new FrameMetadata, initialised from keyword `fields` (frame_number, pad_index, batch_id,
        source_id, source_width, source_height, pipeline_width, pipeline_height, buffer_pts,
        ntp_timestamp); append it to the batch."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        unknown = set(fields) - set(_FRAME_FIELDS)
        if unknown:
            raise _errors.InvalidArgument(f"acquire_frame_meta: unknown field(s) {sorted(unknown)}; "
                                          f"known: {', '.join(_FRAME_FIELDS)}")
        cdef shared_ptr[CFrameMeta] f = b.get().acquire[CFrameMeta]()
        cdef CFrameMeta* p = f.get()
        for k, v in fields.items():
            if k == "frame_number": p.frame_number = v
            elif k == "pad_index": p.pad_index = v
            elif k == "batch_id": p.batch_id = v
            elif k == "source_id": p.source_id = v
            elif k == "source_width": p.source_width = v
            elif k == "source_height": p.source_height = v
            elif k == "pipeline_width": p.pipeline_width = v
            elif k == "pipeline_height": p.pipeline_height = v
            elif k == "buffer_pts": p.buffer_pts = v
            elif k == "ntp_timestamp": p.ntp_timestamp = v
        return _frame_view(self._b, f)

    def acquire_object_meta(self):
        """A new ObjectMetadata (object_id untracked); fill it and append it to a frame."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _object_view(self._b, b.get().acquire[CObjectMeta]())

    def acquire_classifier_meta(self):
        """A new ClassifierMetadata; add labels and append it to an object."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _classifier_view(self._b, b.get().acquire[CClassifierMeta]())

    def acquire_event_message_meta(self):
        """A new EventMessageUserMetadata; generate() it and append it to a frame."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _user_meta_view(self._b, static_pointer_cast[CUserMeta, CEventMessageMeta](
            b.get().acquire[CEventMessageMeta]()))

    def acquire_user_meta(self):
        """A new UserMetadata; set_user_data_json() it and append it to a batch, frame or object."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _user_meta_view(self._b, static_pointer_cast[CUserMeta, CJsonMeta](b.get().acquire[CJsonMeta]()))

    def acquire_tensor_output_meta(self, int unique_id=0):
        """A new TensorOutputUserMetadata (pysm): set_layer() tensors and append it."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        cdef shared_ptr[CTensorOutputMeta] t = b.get().acquire[CTensorOutputMeta]()
        t.get().unique_id = unique_id
        return _user_meta_view(self._b, static_pointer_cast[CUserMeta, CTensorOutputMeta](t))

    def acquire_segmentation_meta(self):
        """A new SegmentationUserMetadata (pysm): set() its maps and append it to a frame."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        return _user_meta_view(self._b, static_pointer_cast[CUserMeta, CSegmentationMeta](
            b.get().acquire[CSegmentationMeta]()))

    def acquire_preprocess_batch_meta(self):
        raise _errors.NotSupportedYet("preprocess batch metadata is not provided by pysm yet")

    def acquire_obj_reid_meta(self):
        raise _errors.NotSupportedYet("ReID metadata is not provided by pysm yet")

    def append(self, item):
        """Append an acquired FrameMetadata or UserMetadata to the batch."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        cdef shared_ptr[CFrameMeta] f
        cdef shared_ptr[CUserMeta] u
        if isinstance(item, FrameMetadata):
            f = (<FrameMetadata>item)._p()
            meta_append[CFrameMeta, CFrameMeta](b.get()[0], b.get().frames, f, b"FrameMetadata")
        elif isinstance(item, UserMetadata):
            u = (<UserMetadata>item)._p()
            meta_append[CUserMeta, CUserMeta](b.get()[0], b.get().user_meta, u, b"UserMetadata")
        else:
            raise TypeError(f"BatchMetadata.append takes FrameMetadata or UserMetadata, not {type(item).__name__}")

    def extract(self, unsigned int max_items):
        """Per-frame summaries as a list of `max_items` entries indexed by pad_index (None where no
        frame of that pad is in the batch). Each is a dict: shape [h, w], bboxes [[l, t, r, b], ...]
        (ints), probs, labels (per object: its label then its classifier labels), objects (ids;
        -1 untracked), seg_maps (int32 arrays from instance masks and segmentation maps),
        timestamp (buffer pts, ns)."""
        cdef shared_ptr[CBatchMeta] b = self._p()
        cdef vector[CFrameSummary] sums
        with nogil:
            sums = summarize(b.get()[0])
        out = [None] * max_items
        cdef size_t i, k
        cdef CFrameSummary* s
        for i in range(sums.size()):
            s = &sums[i]
            if s.pad_index >= max_items:
                continue
            bboxes = [[s.bboxes[4 * k], s.bboxes[4 * k + 1], s.bboxes[4 * k + 2], s.bboxes[4 * k + 3]]
                      for k in range(s.bboxes.size() // 4)]
            seg_maps = [_np_copy_int32(s.seg_maps[k].data.data(), s.seg_maps[k].height, s.seg_maps[k].width)
                        for k in range(s.seg_maps.size())]
            out[s.pad_index] = {
                "shape": [s.shape[0], s.shape[1]],
                "bboxes": bboxes,
                "probs": s.probs,
                "labels": [[(<bytes>l).decode("utf-8", "replace") for l in ls] for ls in s.labels],
                "seg_maps": seg_maps,
                "objects": s.objects,
                "timestamp": s.timestamp,
            }
        return out

    def __repr__(self):
        if self._b.expired():
            return "BatchMetadata(<released>)"
        return f"BatchMetadata(n_frames={self.n_frames})"


cdef BatchMetadata batch_metadata_from_native(const shared_ptr[CBatchMeta]& b):
    """A BatchMetadata view of a native batch (for the pipeline's probes)."""
    cdef BatchMetadata out = BatchMetadata.__new__(BatchMetadata)
    out._b = WeakPtr[CBatchMeta](b)
    return out


# ---- FrameMetadata ---------------------------------------------------------------------------

cdef class FrameMetadata:
    """Metadata of one frame of a batch (fields read-only; set them at acquire_frame_meta)."""
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CFrameMeta] _n

    def __init__(self):
        raise TypeError("FrameMetadata is a view; iterate batch_meta.frame_items or use acquire_frame_meta()")

    cdef shared_ptr[CFrameMeta] _p(self) except *:
        cdef shared_ptr[CFrameMeta] p = self._n.lock()
        if p.get() == NULL:
            raise _expired("FrameMetadata")
        return p

    @property
    def frame_number(self):
        return self._p().get().frame_number

    @property
    def pad_index(self):
        return self._p().get().pad_index

    @property
    def batch_id(self):
        return self._p().get().batch_id

    @property
    def source_id(self):
        return self._p().get().source_id

    @property
    def source_width(self):
        """Width of the source frame (input of the muxer)."""
        return self._p().get().source_width

    @property
    def source_height(self):
        return self._p().get().source_height

    @property
    def pipeline_width(self):
        """Width of the batch surface (output of the muxer)."""
        return self._p().get().pipeline_width

    @property
    def pipeline_height(self):
        return self._p().get().pipeline_height

    @property
    def buffer_pts(self):
        """Presentation timestamp in ns (-1 unknown)."""
        return self._p().get().buffer_pts

    @property
    def ntp_timestamp(self):
        """Capture time in ns since the Unix epoch (0 unknown)."""
        return self._p().get().ntp_timestamp

    @property
    def object_items(self):
        """Single-pass iterator over the frame's ObjectMetadata."""
        self._p()
        cdef _ObjectIter it = _ObjectIter.__new__(_ObjectIter)
        it._b = self._b
        it._f = self._n
        return it

    @property
    def display_items(self):
        """Single-pass iterator over the frame's DisplayMetadata (pysm)."""
        self._p()
        cdef _DisplayIter it = _DisplayIter.__new__(_DisplayIter)
        it._b = self._b
        it._f = self._n
        return it

    cdef _UserMetaIter _users(self, int filt, int meta_type):
        cdef shared_ptr[CFrameMeta] f = self._p()
        return _user_iter(self._b, pysm_alias[vector[shared_ptr[CUserMeta]], CFrameMeta](f, &f.get().user_meta),
                          filt, meta_type)

    @property
    def tensor_items(self):
        """Single-pass iterator over TensorOutputUserMetadata attached to the frame."""
        return self._users(TENSOR_OUTPUT, 0)

    @property
    def segmentation_items(self):
        """Single-pass iterator over SegmentationUserMetadata attached to the frame."""
        return self._users(SEGMENTATION, 0)

    def user_meta_items(self, int meta_type):
        """Single-pass iterator over the frame's user metadata of `meta_type`."""
        return self._users(BY_META_TYPE, meta_type)

    def append(self, item):
        """Append an acquired ObjectMetadata, DisplayMetadata or UserMetadata (for example an
        EventMessageUserMetadata) to the frame."""
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "FrameMetadata")
        cdef shared_ptr[CFrameMeta] f = self._p()
        if isinstance(item, ObjectMetadata):
            meta_append[CObjectMeta, CObjectMeta](b.get()[0], f.get().objects, (<ObjectMetadata>item)._p(),
                                                  b"ObjectMetadata")
        elif isinstance(item, DisplayMetadata):
            meta_append[CDisplayMeta, CDisplayMeta](b.get()[0], f.get().display_meta, (<DisplayMetadata>item)._p(),
                                                    b"DisplayMetadata")
        elif isinstance(item, UserMetadata):
            meta_append[CUserMeta, CUserMeta](b.get()[0], f.get().user_meta, (<UserMetadata>item)._p(),
                                              b"UserMetadata")
        else:
            raise TypeError("FrameMetadata.append takes ObjectMetadata, DisplayMetadata or UserMetadata, "
                            f"not {type(item).__name__}")

    def remove(self, item):
        """Remove an ObjectMetadata, DisplayMetadata or UserMetadata from the frame; views of it
        (and of its children) expire."""
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "FrameMetadata")
        cdef shared_ptr[CFrameMeta] f = self._p()
        if isinstance(item, ObjectMetadata):
            meta_remove[CObjectMeta, CObjectMeta](b.get()[0], f.get().objects, (<ObjectMetadata>item)._p(),
                                                  b"ObjectMetadata", b"frame")
        elif isinstance(item, DisplayMetadata):
            meta_remove[CDisplayMeta, CDisplayMeta](b.get()[0], f.get().display_meta, (<DisplayMetadata>item)._p(),
                                                    b"DisplayMetadata", b"frame")
        elif isinstance(item, UserMetadata):
            meta_remove[CUserMeta, CUserMeta](b.get()[0], f.get().user_meta, (<UserMetadata>item)._p(),
                                              b"UserMetadata", b"frame")
        else:
            raise TypeError("FrameMetadata.remove takes ObjectMetadata, DisplayMetadata or UserMetadata, "
                            f"not {type(item).__name__}")

    # -- vectorised accessors: one native pass per call, NumPy arrays out --
    @property
    def n_objects(self):
        """Number of objects in the frame."""
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "FrameMetadata")
        cdef shared_ptr[CFrameMeta] f = self._p()
        return meta_size[CObjectMeta](b.get()[0], f.get().objects)

    def object_arrays(self, format="ltwh", columns=None):
        """The frame's objects as NumPy arrays in one call, a dict of `columns` (default all):
        boxes (N, 4) float32 (format "ltwh": left, top, width, height; "xyxy": x1, y1, x2, y2),
        class_ids int32, confidences float32, tracker_confidences float32, object_ids uint64,
        unique_component_ids int32. Row i is the i-th object of object_items."""
        if format not in ("ltwh", "xyxy"):
            raise _errors.InvalidArgument(f"format must be 'ltwh' or 'xyxy', not {format!r}")
        all_cols = ("boxes", "class_ids", "confidences", "tracker_confidences", "object_ids",
                    "unique_component_ids")
        wanted = all_cols if columns is None else tuple(columns)
        for c in wanted:
            if c not in all_cols:
                raise _errors.InvalidArgument(f"unknown column {c!r}; known: {', '.join(all_cols)}")
        np = _numpy()
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "FrameMetadata")
        cdef shared_ptr[CFrameMeta] f = self._p()
        cdef size_t cap = meta_size[CObjectMeta](b.get()[0], f.get().objects)
        cdef size_t n
        cdef CObjectColumns cols
        cdef float[:, ::1] boxes_v
        cdef int32_t[::1] cls_v, uid_v
        cdef float[::1] conf_v, tconf_v
        cdef uint64_t[::1] oid_v
        while True:
            out = {}
            cols.boxes = NULL
            cols.class_ids = NULL
            cols.confidences = NULL
            cols.tracker_confidences = NULL
            cols.object_ids = NULL
            cols.component_ids = NULL
            cols.xyxy = format == "xyxy"
            # at least one row, so that &view[0] is valid when the frame has no objects
            rows = cap if cap else 1
            if "boxes" in wanted:
                out["boxes"] = np.empty((rows, 4), np.float32)
                boxes_v = out["boxes"]
                cols.boxes = &boxes_v[0, 0]
            if "class_ids" in wanted:
                out["class_ids"] = np.empty(rows, np.int32)
                cls_v = out["class_ids"]
                cols.class_ids = &cls_v[0]
            if "confidences" in wanted:
                out["confidences"] = np.empty(rows, np.float32)
                conf_v = out["confidences"]
                cols.confidences = &conf_v[0]
            if "tracker_confidences" in wanted:
                out["tracker_confidences"] = np.empty(rows, np.float32)
                tconf_v = out["tracker_confidences"]
                cols.tracker_confidences = &tconf_v[0]
            if "object_ids" in wanted:
                out["object_ids"] = np.empty(rows, np.uint64)
                oid_v = out["object_ids"]
                cols.object_ids = &oid_v[0]
            if "unique_component_ids" in wanted:
                out["unique_component_ids"] = np.empty(rows, np.int32)
                uid_v = out["unique_component_ids"]
                cols.component_ids = &uid_v[0]
            with nogil:
                n = fill_object_columns(b.get()[0], f.get()[0], cols, cap)
            if n <= cap:
                return {k: (v if v.shape[0] == n else v[:n]) for k, v in out.items()}
            cap = n  # objects were appended meanwhile: retry with room for them

    def boxes(self, format="ltwh"):
        """(N, 4) float32: each object's rect_params as left, top, width, height ("ltwh") or
        x1, y1, x2, y2 ("xyxy")."""
        return self.object_arrays(format, ("boxes",))["boxes"]

    def class_ids(self):
        """(N,) int32 class ids."""
        return self.object_arrays(columns=("class_ids",))["class_ids"]

    def confidences(self):
        """(N,) float32 detector confidences."""
        return self.object_arrays(columns=("confidences",))["confidences"]

    def tracker_confidences(self):
        """(N,) float32 tracker confidences."""
        return self.object_arrays(columns=("tracker_confidences",))["tracker_confidences"]

    def object_ids(self):
        """(N,) uint64 object ids (UNTRACKED_OBJECT_ID = 2**64-1 before tracking)."""
        return self.object_arrays(columns=("object_ids",))["object_ids"]

    def unique_component_ids(self):
        """(N,) int32 unique component ids (gie-unique-id of the producer)."""
        return self.object_arrays(columns=("unique_component_ids",))["unique_component_ids"]

    def __eq__(self, other):
        if not isinstance(other, FrameMetadata):
            return NotImplemented
        return self._p().get() == (<FrameMetadata>other)._p().get()

    def __hash__(self):
        return hash(<size_t>self._p().get())

    def __repr__(self):
        if self._n.expired():
            return "FrameMetadata(<released>)"
        return (f"FrameMetadata(frame_number={self.frame_number}, pad_index={self.pad_index}, "
                f"batch_id={self.batch_id}, source_id={self.source_id}, "
                f"source={self.source_width}x{self.source_height}, "
                f"pipeline={self.pipeline_width}x{self.pipeline_height}, buffer_pts={self.buffer_pts}, "
                f"ntp_timestamp={self.ntp_timestamp}, n_objects={self.n_objects})")


cdef FrameMetadata _frame_view(WeakPtr[CBatchMeta] b, shared_ptr[CFrameMeta] n):
    cdef FrameMetadata out = FrameMetadata.__new__(FrameMetadata)
    out._b = b
    out._n = WeakPtr[CFrameMeta](n)
    return out


# ---- ObjectMetadata --------------------------------------------------------------------------

cdef class ObjectMetadata:
    """One detected or tracked object; every field is read/write.

    `rect_params`, `text_params` and `mask_params` return views bound to this object:
    `obj.rect_params.left = 10` changes the object. Assigning a value
    (`obj.rect_params = osd.Rect(...)`) copies it into the object."""
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CObjectMeta] _n

    def __init__(self):
        raise TypeError("ObjectMetadata is a view; use batch_meta.acquire_object_meta()")

    cdef shared_ptr[CObjectMeta] _p(self) except *:
        cdef shared_ptr[CObjectMeta] p = self._n.lock()
        if p.get() == NULL:
            raise _expired("ObjectMetadata")
        return p

    @property
    def class_id(self):
        return self._p().get().class_id
    @class_id.setter
    def class_id(self, int v):
        self._p().get().class_id = v

    @property
    def object_id(self):
        """Tracking id (UNTRACKED_OBJECT_ID = 2**64-1 until a tracker assigns one)."""
        return self._p().get().object_id
    @object_id.setter
    def object_id(self, uint64_t v):
        self._p().get().object_id = v

    @property
    def unique_component_id(self):
        return self._p().get().unique_component_id
    @unique_component_id.setter
    def unique_component_id(self, int v):
        self._p().get().unique_component_id = v

    @property
    def confidence(self):
        return self._p().get().confidence
    @confidence.setter
    def confidence(self, float v):
        self._p().get().confidence = v

    @property
    def tracker_confidence(self):
        return self._p().get().tracker_confidence
    @tracker_confidence.setter
    def tracker_confidence(self, float v):
        self._p().get().tracker_confidence = v

    @property
    def rect_params(self):
        """The box (osd.Rect bound to this object: writes go to the object)."""
        cdef shared_ptr[CObjectMeta] p = self._p()
        return _rect_view(pysm_alias[CRectParams, CObjectMeta](p, &p.get().rect_params), False)
    @rect_params.setter
    def rect_params(self, v):
        self._p().get().rect_params = _rect_value(v, "rect_params")

    @property
    def mask_params(self):
        """The instance mask (osd.Mask bound to this object)."""
        cdef shared_ptr[CObjectMeta] p = self._p()
        return _mask_view(pysm_alias[CMaskParams, CObjectMeta](p, &p.get().mask_params), False)
    @mask_params.setter
    def mask_params(self, v):
        if not isinstance(v, Mask):
            raise TypeError(f"mask_params must be an osd.Mask, not {type(v).__name__}")
        self._p().get().mask_params = (<Mask>v)._p().get()[0]

    @property
    def text_params(self):
        """The label text drawn by the OSD (osd.TextParams bound to this object)."""
        cdef shared_ptr[CObjectMeta] p = self._p()
        return _text_params_view(pysm_alias[CTextParams, CObjectMeta](p, &p.get().text_params), False, False)
    @text_params.setter
    def text_params(self, v):
        self._p().get().text_params = _text_value(v, "text_params")

    @property
    def label(self):
        return _s(self._p().get().label)
    @label.setter
    def label(self, v):
        self._p().get().label = _text_arg(v, "label")

    cdef object _box_get(self, int which):
        cdef shared_ptr[CObjectMeta] p = self._p()
        cdef CObjectMeta* o = p.get()
        if which == 0:
            return _bbox_dict(o.detector_bbox.left, o.detector_bbox.top, o.detector_bbox.width, o.detector_bbox.height)
        if which == 1:
            return _bbox_dict(o.tracker_bbox.left, o.tracker_bbox.top, o.tracker_bbox.width, o.tracker_bbox.height)
        return _bbox_dict(o.nv_bbox.left, o.nv_bbox.top, o.nv_bbox.width, o.nv_bbox.height)

    cdef _box_set(self, int which, v):
        try:
            l, t, w, h = float(v["left"]), float(v["top"]), float(v["width"]), float(v["height"])
        except (KeyError, TypeError, ValueError):
            raise _errors.InvalidArgument("a bbox is a dict with float 'left', 'top', 'width', 'height'") from None
        cdef shared_ptr[CObjectMeta] p = self._p()
        cdef CObjectMeta* o = p.get()
        if which == 0:
            o.detector_bbox.left, o.detector_bbox.top, o.detector_bbox.width, o.detector_bbox.height = l, t, w, h
        elif which == 1:
            o.tracker_bbox.left, o.tracker_bbox.top, o.tracker_bbox.width, o.tracker_bbox.height = l, t, w, h
        else:
            o.nv_bbox.left, o.nv_bbox.top, o.nv_bbox.width, o.nv_bbox.height = l, t, w, h

    @property
    def detector_bbox_info(self):
        """The box as the detector gave it: dict left/top/width/height."""
        return self._box_get(0)
    @detector_bbox_info.setter
    def detector_bbox_info(self, v):
        self._box_set(0, v)

    @property
    def tracker_bbox_info(self):
        """The box as the tracker gave it: dict left/top/width/height."""
        return self._box_get(1)
    @tracker_bbox_info.setter
    def tracker_bbox_info(self, v):
        self._box_set(1, v)

    @property
    def nv_bbox_info(self):
        """DeepStream 9's nv_bbox_info: dict left/top/width/height."""
        return self._box_get(2)
    @nv_bbox_info.setter
    def nv_bbox_info(self, v):
        self._box_set(2, v)

    @property
    def parent(self):
        """The parent object (for secondary detections), or None."""
        cdef shared_ptr[CObjectMeta] p = self._p()
        cdef shared_ptr[CObjectMeta] par = p.get().parent.lock()
        if par.get() == NULL:
            return None
        return _object_view(self._b, par)
    @parent.setter
    def parent(self, v):
        cdef shared_ptr[CObjectMeta] p = self._p()
        cdef shared_ptr[CObjectMeta] par
        if v is None:
            p.get().parent.reset()
            return
        if not isinstance(v, ObjectMetadata):
            raise TypeError(f"parent must be an ObjectMetadata or None, not {type(v).__name__}")
        par = (<ObjectMetadata>v)._p()
        if par.get() == p.get():
            raise _errors.InvalidArgument("an object cannot be its own parent")
        p.get().parent = WeakPtr[CObjectMeta](par)

    @property
    def classifier_items(self):
        """Single-pass iterator over the object's ClassifierMetadata."""
        self._p()
        cdef _ClassifierIter it = _ClassifierIter.__new__(_ClassifierIter)
        it._b = self._b
        it._o = self._n
        return it

    cdef _UserMetaIter _users(self, int filt, int meta_type):
        cdef shared_ptr[CObjectMeta] o = self._p()
        return _user_iter(self._b, pysm_alias[vector[shared_ptr[CUserMeta]], CObjectMeta](o, &o.get().user_meta),
                          filt, meta_type)

    @property
    def tensor_items(self):
        """Single-pass iterator over TensorOutputUserMetadata attached to the object."""
        return self._users(TENSOR_OUTPUT, 0)

    def user_meta_items(self, int meta_type):
        """Single-pass iterator over the object's user metadata of `meta_type`."""
        return self._users(BY_META_TYPE, meta_type)

    def append(self, item):
        """Append an acquired ClassifierMetadata or UserMetadata to the object."""
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "ObjectMetadata")
        cdef shared_ptr[CObjectMeta] o = self._p()
        if isinstance(item, ClassifierMetadata):
            meta_append[CClassifierMeta, CClassifierMeta](b.get()[0], o.get().classifiers,
                                                          (<ClassifierMetadata>item)._p(), b"ClassifierMetadata")
        elif isinstance(item, UserMetadata):
            meta_append[CUserMeta, CUserMeta](b.get()[0], o.get().user_meta, (<UserMetadata>item)._p(),
                                              b"UserMetadata")
        else:
            raise TypeError(f"ObjectMetadata.append takes ClassifierMetadata or UserMetadata, not {type(item).__name__}")

    def remove(self, item):
        """Remove a ClassifierMetadata or UserMetadata from the object (pysm)."""
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "ObjectMetadata")
        cdef shared_ptr[CObjectMeta] o = self._p()
        if isinstance(item, ClassifierMetadata):
            meta_remove[CClassifierMeta, CClassifierMeta](b.get()[0], o.get().classifiers,
                                                          (<ClassifierMetadata>item)._p(), b"ClassifierMetadata",
                                                          b"object")
        elif isinstance(item, UserMetadata):
            meta_remove[CUserMeta, CUserMeta](b.get()[0], o.get().user_meta, (<UserMetadata>item)._p(),
                                              b"UserMetadata", b"object")
        else:
            raise TypeError(f"ObjectMetadata.remove takes ClassifierMetadata or UserMetadata, not {type(item).__name__}")

    def __eq__(self, other):
        if not isinstance(other, ObjectMetadata):
            return NotImplemented
        return self._p().get() == (<ObjectMetadata>other)._p().get()

    def __hash__(self):
        return hash(<size_t>self._p().get())

    def __repr__(self):
        if self._n.expired():
            return "ObjectMetadata(<released>)"
        r = self.rect_params
        return (f"ObjectMetadata(class_id={self.class_id}, object_id={self.object_id}, "
                f"unique_component_id={self.unique_component_id}, confidence={self.confidence:g}, "
                f"label={self.label!r}, box=({r.left:g}, {r.top:g}, {r.width:g}, {r.height:g}))")


cdef ObjectMetadata _object_view(WeakPtr[CBatchMeta] b, shared_ptr[CObjectMeta] n):
    cdef ObjectMetadata out = ObjectMetadata.__new__(ObjectMetadata)
    out._b = b
    out._n = WeakPtr[CObjectMeta](n)
    return out


# ---- ClassifierMetadata ----------------------------------------------------------------------

cdef class LabelInfo:
    """One classifier result: label, class_id, prob, label_id, num_classes."""
    cdef readonly str label
    cdef readonly int class_id
    cdef readonly float prob
    cdef readonly int label_id
    cdef readonly int num_classes

    def __init__(self, str label="", int class_id=0, float prob=0, int label_id=0, int num_classes=0):
        self.label, self.class_id, self.prob, self.label_id, self.num_classes = \
            label, class_id, prob, label_id, num_classes

    def __repr__(self):
        return (f"LabelInfo(label={self.label!r}, class_id={self.class_id}, prob={self.prob:g}, "
                f"label_id={self.label_id}, num_classes={self.num_classes})")


cdef class ClassifierMetadata:
    """Results of one classifier for one object."""
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CClassifierMeta] _n

    def __init__(self):
        raise TypeError("ClassifierMetadata is a view; use batch_meta.acquire_classifier_meta()")

    cdef shared_ptr[CClassifierMeta] _p(self) except *:
        cdef shared_ptr[CClassifierMeta] p = self._n.lock()
        if p.get() == NULL:
            raise _expired("ClassifierMetadata")
        return p

    @property
    def n_labels(self):
        return self._p().get().labels.size()

    @property
    def unique_component_id(self):
        return self._p().get().unique_component_id
    @unique_component_id.setter
    def unique_component_id(self, int v):
        self._p().get().unique_component_id = v

    @property
    def classifier_type(self):
        return self._p().get().classifier_type
    @classifier_type.setter
    def classifier_type(self, int v):
        self._p().get().classifier_type = v

    cdef CLabelInfo* _label(self, shared_ptr[CClassifierMeta]& p, int i) except NULL:
        if i < 0 or <size_t>i >= p.get().labels.size():
            raise _errors.OutOfRangeError(f"label index {i} out of range: the classifier has {p.get().labels.size()} label(s)")
        return &p.get().labels[i]

    def get_n_label(self, int i):
        """Label text of result i."""
        cdef shared_ptr[CClassifierMeta] p = self._p()
        return _s(self._label(p, i).label)

    def get_label_info(self, int i):
        """LabelInfo of result i."""
        cdef shared_ptr[CClassifierMeta] p = self._p()
        cdef CLabelInfo* l = self._label(p, i)
        return LabelInfo(_s(l.label), l.class_id, l.prob, l.label_id, l.num_classes)

    def add_label(self, label, int class_id=0, float prob=0.0, label_id=None, int num_classes=0):
        """Add a result (pysm; label_id defaults to its index)."""
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "ClassifierMetadata")
        cdef shared_ptr[CClassifierMeta] p = self._p()
        cdef CLabelInfo li
        li.label = _text_arg(label, "label")
        li.class_id = class_id
        li.prob = prob
        li.label_id = -1 if label_id is None else int(label_id)
        li.num_classes = num_classes
        meta_add_label(b.get()[0], p.get()[0], li)

    def __repr__(self):
        if self._n.expired():
            return "ClassifierMetadata(<released>)"
        return (f"ClassifierMetadata(n_labels={self.n_labels}, unique_component_id={self.unique_component_id}, "
                f"classifier_type={self.classifier_type})")


cdef ClassifierMetadata _classifier_view(WeakPtr[CBatchMeta] b, shared_ptr[CClassifierMeta] n):
    cdef ClassifierMetadata out = ClassifierMetadata.__new__(ClassifierMetadata)
    out._b = b
    out._n = WeakPtr[CClassifierMeta](n)
    return out


# ---- DisplayMetadata -------------------------------------------------------------------------

cdef class DisplayMetadata:
    """Texts, rects, lines, arrows and circles the OSD draws on a frame (at most 16 of each,
    as in DeepStream; past that add_* raises IndexError: acquire another DisplayMetadata)."""
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CDisplayMeta] _n

    def __init__(self):
        raise TypeError("DisplayMetadata is a view; use batch_meta.acquire_display_meta()")

    cdef shared_ptr[CDisplayMeta] _p(self) except *:
        cdef shared_ptr[CDisplayMeta] p = self._n.lock()
        if p.get() == NULL:
            raise _expired("DisplayMetadata")
        return p

    @property
    def n_rects(self):
        return self._p().get().rects.size()

    @property
    def n_labels(self):
        return self._p().get().texts.size()

    @property
    def n_lines(self):
        return self._p().get().lines.size()

    @property
    def n_arrows(self):
        return self._p().get().arrows.size()

    @property
    def n_circles(self):
        return self._p().get().circles.size()

    def add_text(self, text):
        """Add an osd.Text (copied)."""
        cdef CTextParams v = _text_value(text, "add_text")
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "DisplayMetadata")
        meta_add_text(b.get()[0], self._p().get()[0], v)

    def add_rect(self, rect):
        """Add an osd.Rect (copied)."""
        cdef CRectParams v = _rect_value(rect, "add_rect")
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "DisplayMetadata")
        meta_add_rect(b.get()[0], self._p().get()[0], v)

    def add_line(self, line):
        """Add an osd.Line (copied)."""
        if not isinstance(line, Line):
            raise TypeError(f"add_line takes an osd.Line, not {type(line).__name__}")
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "DisplayMetadata")
        meta_add_line(b.get()[0], self._p().get()[0], (<Line>line)._p().get()[0])

    def add_arrow(self, arrow):
        """Add an osd.Arrow (copied)."""
        if not isinstance(arrow, Arrow):
            raise TypeError(f"add_arrow takes an osd.Arrow, not {type(arrow).__name__}")
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "DisplayMetadata")
        meta_add_arrow(b.get()[0], self._p().get()[0], (<Arrow>arrow)._p().get()[0])

    def add_circle(self, circle):
        """Add an osd.Circle (copied)."""
        if not isinstance(circle, Circle):
            raise TypeError(f"add_circle takes an osd.Circle, not {type(circle).__name__}")
        cdef shared_ptr[CBatchMeta] b = _lock_batch(self._b, "DisplayMetadata")
        meta_add_circle(b.get()[0], self._p().get()[0], (<Circle>circle)._p().get()[0])

    # Read back (pysm): free copies of the elements.
    @property
    def texts(self):
        cdef shared_ptr[CDisplayMeta] p = self._p()
        return [_text_params_view(make_shared[CTextParams](t), True, True) for t in p.get().texts]

    @property
    def rects(self):
        cdef shared_ptr[CDisplayMeta] p = self._p()
        return [_rect_view(make_shared[CRectParams](r), True) for r in p.get().rects]

    @property
    def lines(self):
        cdef shared_ptr[CDisplayMeta] p = self._p()
        return [_line_view(make_shared[CLineParams](l), True) for l in p.get().lines]

    @property
    def arrows(self):
        cdef shared_ptr[CDisplayMeta] p = self._p()
        return [_arrow_view(make_shared[CArrowParams](a), True) for a in p.get().arrows]

    @property
    def circles(self):
        cdef shared_ptr[CDisplayMeta] p = self._p()
        return [_circle_view(make_shared[CCircleParams](c), True) for c in p.get().circles]

    def __repr__(self):
        if self._n.expired():
            return "DisplayMetadata(<released>)"
        return (f"DisplayMetadata(n_rects={self.n_rects}, n_labels={self.n_labels}, n_lines={self.n_lines}, "
                f"n_arrows={self.n_arrows}, n_circles={self.n_circles})")


cdef DisplayMetadata _display_view(WeakPtr[CBatchMeta] b, shared_ptr[CDisplayMeta] n):
    cdef DisplayMetadata out = DisplayMetadata.__new__(DisplayMetadata)
    out._b = b
    out._n = WeakPtr[CDisplayMeta](n)
    return out


# ---- user metadata ---------------------------------------------------------------------------

cdef class UserMetadata:
    """User metadata attached to a batch, frame or object: `meta_type` plus a payload.

    The cast methods (as_tensor_output, as_segmentation, ...) return the typed view, or None
    when the payload is of another kind. A UserMetadata is truthy while its node is alive."""
    cdef WeakPtr[CBatchMeta] _b
    cdef WeakPtr[CUserMeta] _n

    def __init__(self):
        raise TypeError("UserMetadata is a view; use batch_meta.acquire_user_meta()")

    cdef shared_ptr[CUserMeta] _p(self) except *:
        cdef shared_ptr[CUserMeta] p = self._n.lock()
        if p.get() == NULL:
            raise _expired(type(self).__name__)
        return p

    def __bool__(self):
        return not self._n.expired()

    @property
    def meta_type(self):
        return self._p().get().meta_type
    @meta_type.setter
    def meta_type(self, int v):
        self._p().get().meta_type = v

    def set_user_data_json(self, data, int meta_type):
        """Store `data` as JSON text and set meta_type (user metadata from acquire_user_meta)."""
        import json
        cdef shared_ptr[CUserMeta] p = self._p()
        cdef shared_ptr[CJsonMeta] j = dynamic_pointer_cast[CJsonMeta, CUserMeta](p)
        if j.get() == NULL:
            raise _errors.InvalidArgument(
                f"set_user_data_json: this is a {type(self).__name__}; JSON data goes into user "
                "metadata from batch_meta.acquire_user_meta()")
        text = json.dumps(data)
        j.get().json = text.encode("utf-8")
        j.get().meta_type = meta_type

    def get_user_data_json(self):
        """The object stored with set_user_data_json, or None."""
        import json
        cdef shared_ptr[CUserMeta] p = self._p()
        cdef shared_ptr[CJsonMeta] j = dynamic_pointer_cast[CJsonMeta, CUserMeta](p)
        if j.get() == NULL or j.get().json.empty():
            return None
        return json.loads(_s(j.get().json))

    def as_tensor_output(self):
        cdef shared_ptr[CUserMeta] p = self._p()
        if dynamic_pointer_cast[CTensorOutputMeta, CUserMeta](p).get() == NULL:
            return None
        return _user_meta_view(self._b, p)

    def as_segmentation(self):
        cdef shared_ptr[CUserMeta] p = self._p()
        if dynamic_pointer_cast[CSegmentationMeta, CUserMeta](p).get() == NULL:
            return None
        return _user_meta_view(self._b, p)

    def as_event_message(self):
        cdef shared_ptr[CUserMeta] p = self._p()
        if dynamic_pointer_cast[CEventMessageMeta, CUserMeta](p).get() == NULL:
            return None
        return _user_meta_view(self._b, p)

    # Kinds pysm does not produce yet: never a match.
    def as_preprocess_batch(self):
        self._p()
        return None

    def as_nvdsanalytics_obj(self):
        self._p()
        return None

    def as_nvdsanalytics_frame(self):
        self._p()
        return None

    def as_obj_reid(self):
        self._p()
        return None

    def as_structure_str(self):
        self._p()
        return ""

    def __eq__(self, other):
        if not isinstance(other, UserMetadata):
            return NotImplemented
        return self._p().get() == (<UserMetadata>other)._p().get()

    def __hash__(self):
        return hash(<size_t>self._p().get())

    def __repr__(self):
        if self._n.expired():
            return f"{type(self).__name__}(<released>)"
        return f"{type(self).__name__}(meta_type={self.meta_type})"


cdef class TensorOutputUserMetadata(UserMetadata):
    """Raw output tensors of an inference (output-tensor-meta=1): unique_id and get_layers()."""

    cdef shared_ptr[CTensorOutputMeta] _t(self) except *:
        return static_pointer_cast[CTensorOutputMeta, CUserMeta](self._p())

    @property
    def unique_id(self):
        return self._t().get().unique_id
    @unique_id.setter
    def unique_id(self, int v):
        self._t().get().unique_id = v

    def get_layers(self):
        """dict layer name -> Tensor (zero-copy views that keep the output memory alive)."""
        cdef shared_ptr[CTensorOutputMeta] t = self._t()
        cdef CTensorOutputMeta* m = t.get()
        out = {}
        cdef string name
        for name in m.names:
            if m.layers.count(name):
                out[_s(name)] = tensor_from_native(m.layers[name])
        cdef pair[string, CTensor] kv
        for kv in m.layers:
            key = _s(kv.first)
            if key not in out:
                out[key] = tensor_from_native(kv.second)
        return out

    def set_layer(self, name, Tensor tensor):
        """Attach `tensor` as output layer `name` (pysm; replaces a layer of that name)."""
        cdef shared_ptr[CTensorOutputMeta] t = self._t()
        cdef string key = _text_arg(name, "layer name")
        if not t.get().layers.count(key):
            t.get().names.push_back(key)
        t.get().layers[key] = tensor.c

    def __repr__(self):
        if self._n.expired():
            return "TensorOutputUserMetadata(<released>)"
        return f"TensorOutputUserMetadata(unique_id={self.unique_id}, layers={list(self.get_layers())})"


cdef class SegmentationUserMetadata(UserMetadata):
    """A segmentation result: unique_id, classes, width, height, class_map (int32 HxW) and
    class_probabilities_map (float32 HxWxC). The maps are returned as copies."""

    cdef shared_ptr[CSegmentationMeta] _g(self) except *:
        return static_pointer_cast[CSegmentationMeta, CUserMeta](self._p())

    @property
    def unique_id(self):
        return self._g().get().unique_id

    @property
    def classes(self):
        return self._g().get().classes

    @property
    def width(self):
        return self._g().get().width

    @property
    def height(self):
        return self._g().get().height

    @property
    def class_map(self):
        cdef shared_ptr[CSegmentationMeta] g = self._g()
        cdef Py_ssize_t h = g.get().height, w = g.get().width
        if h <= 0 or w <= 0 or <size_t>(h * w) > g.get().class_map.size():
            h = w = 0
        return _np_copy_int32(g.get().class_map.data(), h, w)

    @property
    def class_probabilities_map(self):
        np = _numpy()
        cdef shared_ptr[CSegmentationMeta] g = self._g()
        cdef Py_ssize_t h = g.get().height, w = g.get().width, c = g.get().classes
        if h <= 0 or w <= 0 or c <= 0 or <size_t>(h * w * c) > g.get().class_probabilities.size():
            h = w = c = 0
        out = np.empty((h, w, c), dtype=np.float32)
        cdef float[:, :, ::1] mv = out
        if h * w * c:
            memcpy(&mv[0, 0, 0], g.get().class_probabilities.data(), h * w * c * sizeof(float))
        return out

    def set(self, class_map, class_probabilities_map=None, unique_id=None, classes=None):
        """Set the maps (pysm): class_map int (H, W); optional probabilities (H, W, C)."""
        np = _numpy()
        cm = np.ascontiguousarray(class_map, dtype=np.int32)
        if cm.ndim != 2:
            raise _errors.InvalidArgument(f"class_map must be 2-D (height, width), got shape {cm.shape}")
        probs = None
        if class_probabilities_map is not None:
            probs = np.ascontiguousarray(class_probabilities_map, dtype=np.float32)
            if probs.ndim != 3 or probs.shape[:2] != cm.shape:
                raise _errors.InvalidArgument(
                    f"class_probabilities_map must be (height, width, classes) with height, width = "
                    f"{cm.shape}, got shape {probs.shape}")
        cdef shared_ptr[CSegmentationMeta] g = self._g()
        cdef CSegmentationMeta* m = g.get()
        cdef const int32_t[:, ::1] cmv = cm
        cdef const float[:, :, ::1] pmv
        cdef Py_ssize_t n = cm.shape[0] * cm.shape[1]
        m.class_map.resize(n)
        if n:
            memcpy(m.class_map.data(), &cmv[0, 0], n * sizeof(int32_t))
        m.height, m.width = cm.shape[0], cm.shape[1]
        if probs is not None:
            pmv = probs
            n = probs.size
            m.class_probabilities.resize(n)
            if n:
                memcpy(m.class_probabilities.data(), &pmv[0, 0, 0], n * sizeof(float))
            m.classes = probs.shape[2]
        else:
            m.class_probabilities.clear()
            m.classes = int(cm.max()) + 1 if cm.size else 0
        if classes is not None:
            m.classes = classes
        if unique_id is not None:
            m.unique_id = unique_id

    def __repr__(self):
        if self._n.expired():
            return "SegmentationUserMetadata(<released>)"
        return (f"SegmentationUserMetadata(unique_id={self.unique_id}, classes={self.classes}, "
                f"width={self.width}, height={self.height})")


cdef class EventMessageUserMetadata(UserMetadata):
    """An event message for nvmsgconv/brokers, filled by generate()."""

    cdef shared_ptr[CEventMessageMeta] _e(self) except *:
        return static_pointer_cast[CEventMessageMeta, CUserMeta](self._p())

    def generate(self, ObjectMetadata object_meta, FrameMetadata frame_meta, sensor="N/A", uri="N/A",
                 labels=()):
        """Fill the message from an object and its frame: bbox scaled from pipeline to source
        resolution; frame_id; tracking_id = object_id; confidence; sensor_id = place_id =
        module_id = source_id; sensor_str = sensor; object_id = label; ts = RFC 3339 UTC now
        (from the frame's buffer_pts for ipc:// URIs). Classes map {"car": 0, "person": 2} by
        default, or {labels[i]: i}: car -> MOVING/VEHICLE with type/color/make from classifiers
        4/5/6; person -> PERSON; face -> FACE; bag/bg -> BAG; other classes -> UNKNOWN."""
        cdef shared_ptr[CEventMessageMeta] e = self._e()
        cdef shared_ptr[CObjectMeta] o = object_meta._p()
        cdef shared_ptr[CFrameMeta] f = frame_meta._p()
        cdef shared_ptr[CBatchMeta] b = _lock_batch(frame_meta._b, "FrameMetadata")
        cdef string c_sensor = _text_arg(sensor, "sensor")
        cdef string c_uri = _text_arg(uri, "uri")
        cdef vector[string] c_labels
        for l in labels:
            c_labels.push_back(_text_arg(l, "labels[i]"))
        with nogil:
            generate_event_message(b.get()[0], e.get()[0], o.get()[0], f.get()[0], c_sensor, c_uri, c_labels)

    @property
    def event_type(self):
        """NvDsEventType number (0 ENTRY, 1 EXIT, 2 MOVING, 3 STOPPED, 4 EMPTY, 5 PARKED, 6 RESET)."""
        return self._e().get().event_type
    @event_type.setter
    def event_type(self, int v):
        self._e().get().event_type = v

    @property
    def obj_type(self):
        """NvDsObjectType number (0 VEHICLE, 1 PERSON, 2 FACE, 3 BAG, ..., 0x102 UNKNOWN)."""
        return self._e().get().obj_type
    @obj_type.setter
    def obj_type(self, int v):
        self._e().get().obj_type = v

    @property
    def obj_class_id(self):
        return self._e().get().obj_class_id
    @obj_class_id.setter
    def obj_class_id(self, int v):
        self._e().get().obj_class_id = v

    @property
    def sensor_id(self):
        return self._e().get().sensor_id
    @sensor_id.setter
    def sensor_id(self, int v):
        self._e().get().sensor_id = v

    @property
    def place_id(self):
        return self._e().get().place_id
    @place_id.setter
    def place_id(self, int v):
        self._e().get().place_id = v

    @property
    def module_id(self):
        return self._e().get().module_id
    @module_id.setter
    def module_id(self, int v):
        self._e().get().module_id = v

    @property
    def frame_id(self):
        return self._e().get().frame_id
    @frame_id.setter
    def frame_id(self, int v):
        self._e().get().frame_id = v

    @property
    def confidence(self):
        return self._e().get().confidence
    @confidence.setter
    def confidence(self, double v):
        self._e().get().confidence = v

    @property
    def tracking_id(self):
        return self._e().get().tracking_id
    @tracking_id.setter
    def tracking_id(self, uint64_t v):
        self._e().get().tracking_id = v

    @property
    def bbox(self):
        """dict left/top/width/height in source resolution."""
        cdef shared_ptr[CEventMessageMeta] e = self._e()
        return _bbox_dict(e.get().left, e.get().top, e.get().width, e.get().height)
    @bbox.setter
    def bbox(self, v):
        try:
            l, t, w, h = float(v["left"]), float(v["top"]), float(v["width"]), float(v["height"])
        except (KeyError, TypeError, ValueError):
            raise _errors.InvalidArgument("bbox is a dict with float 'left', 'top', 'width', 'height'") from None
        cdef shared_ptr[CEventMessageMeta] e = self._e()
        e.get().left, e.get().top, e.get().width, e.get().height = l, t, w, h

    @property
    def sensor_str(self):
        return _s(self._e().get().sensor_str)
    @sensor_str.setter
    def sensor_str(self, v):
        self._e().get().sensor_str = _text_arg(v, "sensor_str")

    @property
    def object_id(self):
        """The object's label (DeepStream's objectId field)."""
        return _s(self._e().get().object_id)
    @object_id.setter
    def object_id(self, v):
        self._e().get().object_id = _text_arg(v, "object_id")

    @property
    def ts(self):
        """RFC 3339 UTC timestamp with milliseconds."""
        return _s(self._e().get().ts)
    @ts.setter
    def ts(self, v):
        self._e().get().ts = _text_arg(v, "ts")

    @property
    def uri(self):
        return _s(self._e().get().uri)
    @uri.setter
    def uri(self, v):
        self._e().get().uri = _text_arg(v, "uri")

    @property
    def ext(self):
        """Extra attributes (vehicle: type, color, make) as a dict copy."""
        cdef shared_ptr[CEventMessageMeta] e = self._e()
        cdef pair[string, string] kv
        return {_s(kv.first): _s(kv.second) for kv in e.get().ext}
    @ext.setter
    def ext(self, v):
        cdef shared_ptr[CEventMessageMeta] e = self._e()
        items = [(_text_arg(k, "ext key"), _text_arg(x, "ext value")) for k, x in dict(v).items()]
        e.get().ext.clear()
        for k, x in items:
            e.get().ext[k] = x

    def __repr__(self):
        if self._n.expired():
            return "EventMessageUserMetadata(<released>)"
        return (f"EventMessageUserMetadata(event_type={self.event_type}, obj_type={self.obj_type}, "
                f"object_id={self.object_id!r}, tracking_id={self.tracking_id}, ts={self.ts!r})")


cdef UserMetadata _user_meta_view(WeakPtr[CBatchMeta] b, shared_ptr[CUserMeta] n):
    """The most specific view class for the node's payload."""
    cdef UserMetadata out
    if dynamic_pointer_cast[CTensorOutputMeta, CUserMeta](n).get() != NULL:
        out = TensorOutputUserMetadata.__new__(TensorOutputUserMetadata)
    elif dynamic_pointer_cast[CSegmentationMeta, CUserMeta](n).get() != NULL:
        out = SegmentationUserMetadata.__new__(SegmentationUserMetadata)
    elif dynamic_pointer_cast[CEventMessageMeta, CUserMeta](n).get() != NULL:
        out = EventMessageUserMetadata.__new__(EventMessageUserMetadata)
    else:
        out = UserMetadata.__new__(UserMetadata)
    out._b = b
    out._n = WeakPtr[CUserMeta](n)
    return out
