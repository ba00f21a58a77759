"""Video demux and decode: NVDEC on the GPU, PyAV on the CPU, one Frame type for both.

- :class:`Demuxer`: PyAV demux of files, RTSP and HTTP into zero-copy :class:`Packet` objects.
- :class:`Decoder`: NVDEC (``device="auto"``/``"cuda"``) or software (``"cpu"``) decode to Frames.
- :class:`VideoReader`: both together, as an iterator (with looping).
- :func:`convert` / ``Frame.to(format)``: NV12/P016 to RGB/BGR/RGBA/BGRA on the frame's device.
- :func:`nvdec_capabilities`: what the GPU's NVDEC engines support (``cuvidGetDecoderCaps``).
- :func:`clear_decoder_cache`, :func:`decoder_cache_info`, :func:`configure_decoder_cache`: the
  cache of parked NVDEC sessions that makes opening and closing streams cheap.
- :func:`configure_nvdec_queue`: how deep new NVDEC decoders queue (device memory per decoder).
"""

from __future__ import annotations

from pysm._native._core import AnnexBConverter, Frame, nvdec_built, nvdec_capabilities
from pysm.codec.convert import convert
from pysm.codec.decoder import (
    Decoder,
    clear_decoder_cache,
    configure_decoder_cache,
    configure_nvdec_queue,
    decoder_cache_info,
    nvdec_unavailable_reason,
    parse_device,
)
from pysm.codec.demux import LIVE_SCHEMES, Demuxer, Packet, StreamInfo
from pysm.codec.reader import VideoReader

__all__ = [
    "AnnexBConverter", "Decoder", "Demuxer", "Frame", "LIVE_SCHEMES", "Packet", "StreamInfo", "VideoReader",
    "clear_decoder_cache", "configure_decoder_cache", "configure_nvdec_queue", "convert", "decoder_cache_info", "nvdec_built",
    "nvdec_capabilities", "nvdec_unavailable_reason", "parse_device",
]
