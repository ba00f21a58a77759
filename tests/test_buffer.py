"""Buffer: empty (EOS) buffers, buffers from bytes, extract/get_chunk_id bounds, timestamp,
lifetime of its metadata views and tensors."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from pysm.errors import InvalidArgument
from pysm.metadata import Buffer


def as_numpy(tensor):
    """The tensor's data through DLPack (the Tensor's DLPack export belongs to pysm.tensor)."""
    if not hasattr(tensor, "__dlpack__"):
        pytest.skip("Tensor.__dlpack__ is not available in this build")
    return np.from_dlpack(tensor)


def test_empty_buffer_means_end_of_stream():
    b = Buffer()
    assert b.batch_size == 0
    assert b.eos is True
    assert b.timestamp == 2**64 - 1
    assert b.batch_meta.n_frames == 0
    assert list(b.batch_meta.frame_items) == []
    with pytest.raises(IndexError):
        b.extract(0)
    with pytest.raises(IndexError):
        b.get_chunk_id(0)
    assert "batch_size=0" in repr(b)


@pytest.mark.parametrize("make", [
    lambda d: Buffer(list(d)),
    lambda d: Buffer(bytes(d)),
    lambda d: Buffer(bytearray(d)),
    lambda d: Buffer(memoryview(bytes(d))),
    lambda d: Buffer(np.frombuffer(bytes(d), np.uint8).reshape(4, -1)),
], ids=["list", "bytes", "bytearray", "memoryview", "numpy2d"])
def test_buffer_from_bytes_holds_them_in_one_raw_surface(make):
    data = np.random.default_rng(7).integers(0, 256, size=320 * 3 * 4, dtype=np.uint8)
    b = make(data.tolist())
    assert b.batch_size == 1 and b.eos is False
    assert b.get_chunk_id(0) == 0
    t = b.extract(0)
    assert t.shape == (1, data.size)
    np.testing.assert_array_equal(as_numpy(t).reshape(-1), data)


def test_buffer_from_a_seed_sized_list():
    b = Buffer([0] * (320 * 240 * 3))  # as in DeepStream's appsrc sample
    assert b.batch_size == 1
    assert b.extract(0).shape == (1, 320 * 240 * 3)


def test_buffer_from_non_contiguous_array_copies_in_order():
    a = np.arange(24, dtype=np.uint8).reshape(4, 6)[:, ::2]
    b = Buffer(a)
    assert b.extract(0).shape == (1, a.size)
    np.testing.assert_array_equal(as_numpy(b.extract(0)).reshape(-1), a.reshape(-1))


def test_bad_data_is_rejected_clearly():
    with pytest.raises(ValueError, match="0..255"):
        Buffer([0, 256])
    with pytest.raises(ValueError, match="0..255"):
        Buffer([-1])
    with pytest.raises(InvalidArgument, match="empty"):
        Buffer([])
    with pytest.raises(InvalidArgument, match="empty"):
        Buffer(b"")
    with pytest.raises(TypeError):
        Buffer(12345)
    with pytest.raises(TypeError):
        Buffer("text")


def test_extract_and_chunk_id_bounds():
    b = Buffer(b"\x01\x02\x03")
    for bad in (-1, 1, 100):
        with pytest.raises(IndexError):
            b.extract(bad)
        with pytest.raises(IndexError):
            b.get_chunk_id(bad)


def test_timestamp_round_trip():
    b = Buffer(b"abc")
    assert b.timestamp == 2**64 - 1
    b.timestamp = 1_234_567_890
    assert b.timestamp == 1_234_567_890
    b.timestamp = -1
    assert b.timestamp == 2**64 - 1
    b.timestamp = 2**64 - 1
    assert b.timestamp == 2**64 - 1


def test_extracted_tensor_outlives_the_buffer():
    payload = bytes(range(200))
    b = Buffer(payload)
    t = b.extract(0)
    del b
    gc.collect()
    assert t.shape == (1, 200)
    np.testing.assert_array_equal(as_numpy(t).reshape(-1), np.frombuffer(payload, np.uint8))


def test_batch_meta_view_expires_with_the_buffer():
    b = Buffer(b"xyz")
    bm = b.batch_meta
    bm.append(bm.acquire_frame_meta(source_id=3))
    assert b.batch_meta.n_frames == 1
    del b
    gc.collect()
    with pytest.raises(ReferenceError):
        bm.n_frames


def test_internal_batch_of_frames_gets_one_frame_meta_per_surface():
    from pysm._native._core import _buffer_from_tensors

    gray8 = 1  # ColorFormat.GRAY8
    frames = [Buffer(bytes([i]) * (10 + i)).extract(0) for i in range(3)]  # (1, 10+i) uint8 each
    b = _buffer_from_tensors(frames, gray8, pts=[100, 200, 300])
    assert b.batch_size == 3 and b.timestamp == 100
    metas = list(b.batch_meta.frame_items)
    assert [(m.batch_id, m.pad_index) for m in metas] == [(0, 0), (1, 1), (2, 2)]
    assert [(m.pipeline_width, m.pipeline_height) for m in metas] == [(10, 1), (11, 1), (12, 1)]
    assert [(m.source_width, m.source_height) for m in metas] == [(10, 1), (11, 1), (12, 1)]
    assert [m.buffer_pts for m in metas] == [100, 200, 300]
    assert [b.extract(i).shape for i in range(3)] == [(1, 10), (1, 11), (1, 12)]
    with pytest.raises(InvalidArgument):
        _buffer_from_tensors(frames, gray8, pts=[1])
    with pytest.raises(TypeError):
        _buffer_from_tensors([b"raw"], gray8)
    with pytest.raises(ValueError):
        _buffer_from_tensors(frames, 27)  # RGB needs (H, W, 3)
    for i in range(3):  # zero-copy: the batch shows the frames' bytes
        np.testing.assert_array_equal(as_numpy(b.extract(i)).reshape(-1), np.full(10 + i, i, np.uint8))
