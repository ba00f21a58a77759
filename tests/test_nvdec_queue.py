"""pysm.codec.configure_nvdec_queue: validation, and the settings reaching new NVDEC decoders
(no GPU needed: the native decoder is replaced by a recorder). That a shallower queue decodes the
same frames is tested on a GPU host in test_decode_gpu.py."""

from __future__ import annotations

import numpy as np
import pytest

from codec_media import make_clip

import pysm.codec
from pysm import errors
from pysm.codec import Demuxer
from pysm.codec import decoder as decoder_module

DEFAULTS = {"display_delay": -1, "extra_decode_surfaces": -1, "output_surfaces": -1}


@pytest.fixture
def restore_queue():
    yield
    pysm.codec.configure_nvdec_queue(**DEFAULTS)


def test_settings_are_kept_validated_and_restored(restore_queue):
    assert pysm.codec.configure_nvdec_queue() == DEFAULTS
    got = pysm.codec.configure_nvdec_queue(display_delay=1, output_surfaces=2)
    assert got == {"display_delay": 1, "extra_decode_surfaces": -1, "output_surfaces": 2}
    assert pysm.codec.configure_nvdec_queue(extra_decode_surfaces=0)["display_delay"] == 1, "None keeps a setting"
    for bad in ({"display_delay": 17}, {"extra_decode_surfaces": -2}, {"output_surfaces": 0},
                {"display_delay": 2.5}, {"output_surfaces": True}, {"display_delay": "4"}):
        with pytest.raises(errors.InvalidArgument, match=next(iter(bad))):
            pysm.codec.configure_nvdec_queue(**bad)
    with pytest.raises(errors.InvalidArgument, match="output_surfaces"):
        pysm.codec.configure_nvdec_queue(display_delay=3, output_surfaces=0)
    assert pysm.codec.configure_nvdec_queue() == {"display_delay": 1, "extra_decode_surfaces": 0,
                                                  "output_surfaces": 2}, "a refused call changes nothing"
    assert pysm.codec.configure_nvdec_queue(display_delay=np.int64(2))["display_delay"] == 2
    assert pysm.codec.configure_nvdec_queue(**DEFAULTS) == DEFAULTS


def test_new_decoders_get_the_settings(restore_queue, monkeypatch, tmp_path):
    created = []

    class Recorder:
        def __init__(self, *args, **kwargs):
            created.append(kwargs)

    monkeypatch.setattr(decoder_module._core, "NvdecDecoder", Recorder)
    with Demuxer(make_clip(tmp_path / "c.mp4", "h264", n=4, width=64, height=48)) as d:
        info = d.info
    decoder_module._NvdecBackend(info, 0, False, None, None)
    pysm.codec.configure_nvdec_queue(display_delay=0, extra_decode_surfaces=2, output_surfaces=8)
    decoder_module._NvdecBackend(info, 0, False, None, None)
    assert [{k: c[k] for k in DEFAULTS} for c in created] == [
        DEFAULTS, {"display_delay": 0, "extra_decode_surfaces": 2, "output_surfaces": 8}]
