"""The parameter sets a stream has carried in band, for decoders that start part-way through it."""

from __future__ import annotations

from typing import Any

#: Most parameter sets remembered: far more than H.264 (32 SPS, 256 PPS) or HEVC (16 VPS, 16 SPS,
#: 64 PPS) can hold at once; only sets whose id cannot be read (malformed) add beyond those.
MAX_SETS = 512


class ParameterSets:
    """The H.264 SPS/PPS and HEVC VPS/SPS/PPS a stream has carried in band so far: the last of each
    type and id.

    A decoder starting at a later restart point (a further session of :class:`ParallelDecode`)
    knows only the container's codec configuration, which keeps the stream's first parameter
    sets. A file whose sets change part-way (two recordings joined, a camera reconfigured)
    carries the new ones in band only where they start to apply, not always in a key frame's
    packet; without them the later segments decode wrong or not at all. Such a segment's first
    packet gets the sets seen before it, ahead of its own NAL units (:meth:`prefixed`).
    """

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder
        self._sets: dict[Any, bytes] = {}  # key -> NAL unit, in the order last carried

    def see(self, packet: Any) -> None:
        """Note the parameter sets of ``packet``, the stream's next packet."""
        for key, nal in self._decoder.parameter_sets(packet):
            self._sets.pop(key, None)
            self._sets[key] = nal
        while len(self._sets) > MAX_SETS:
            del self._sets[next(iter(self._sets))]

    def prefixed(self, packet: Any) -> Any:
        """``packet`` carrying ahead of its own NAL units the parameter sets seen before it (a copy;
        :meth:`Decoder.with_parameter_sets`), or ``packet`` itself where none were: for a
        segment's first packet, and to read a restart point's slice header as the serial decoder
        does."""
        return self._decoder.with_parameter_sets(packet, list(self._sets.items())) if self._sets else packet
