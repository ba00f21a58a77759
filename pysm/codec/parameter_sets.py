"""The parameter sets a stream has carried in band, for decoders that start part-way through it."""

from __future__ import annotations

from typing import Any

from pysm.codec.decoder import _is_key

#: Most distinct parameter-set NAL units remembered (the oldest are forgotten first).
MAX_SETS = 64


class ParameterSets:
    """The H.264 SPS/PPS and HEVC VPS/SPS/PPS NAL units a stream has carried in band so far, in the
    order a serial decoder took them.

    A decoder starting at a later restart point (a further session of :class:`ParallelDecode`)
    knows only the container's codec configuration, which keeps the stream's first parameter
    sets. A file whose sets change part-way (two recordings joined, a camera reconfigured)
    carries the new ones in band only where they start to apply; without them the later segments
    decode wrong or not at all. Such a segment's first packet gets the sets seen before it, in
    order, ahead of its own NAL units (:meth:`prefixed`). Only key frames' packets are read
    (:meth:`see`): encoders put parameter sets there.
    """

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder
        self._sets: dict[bytes, None] = {}  # insertion order: the order they were last carried

    def see(self, packet: Any) -> None:
        """Note the parameter sets of ``packet``, the stream's next packet, if it is a key frame's."""
        if not _is_key(packet):
            return
        for nal in self._decoder.parameter_sets(packet):
            self._sets.pop(nal, None)
            self._sets[nal] = None
        while len(self._sets) > MAX_SETS:
            del self._sets[next(iter(self._sets))]

    def prefixed(self, packet: Any) -> Any:
        """``packet``, the first of a segment, carrying ahead of its own NAL units the parameter sets
        seen before it that it lacks (a copy), or ``packet`` itself where it lacks none."""
        return self._decoder.with_parameter_sets(packet, list(self._sets))
