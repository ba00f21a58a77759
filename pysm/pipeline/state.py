"""The pipeline state machine: EMPTY -> READY -> PAUSED -> PLAYING and back, one step at a time,
as GStreamer (and so pyservicemaker) has it."""

from __future__ import annotations

import enum

from pysm.errors import StateError


class PipelineState(enum.IntEnum):
    """Pipeline and element states (values as pyservicemaker's C++ enum)."""

    INVALID = 0
    EMPTY = 1
    READY = 2
    PAUSED = 3
    PLAYING = 4


_ORDER = [PipelineState.EMPTY, PipelineState.READY, PipelineState.PAUSED, PipelineState.PLAYING]


def transition_path(current: PipelineState, target: PipelineState) -> list[tuple[PipelineState, PipelineState]]:
    """The single steps from ``current`` to ``target`` (empty when they are equal)."""
    if current not in _ORDER or target not in _ORDER:
        raise StateError(f"no transition from {current.name} to {target.name}")
    i, j = _ORDER.index(current), _ORDER.index(target)
    step = 1 if j > i else -1
    return [(_ORDER[k], _ORDER[k + step]) for k in range(i, j, step)]


class StateMachine:
    """Holds one state; ``steps_to`` validates and returns the single-step transitions."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.state = PipelineState.EMPTY

    def steps_to(self, target: PipelineState) -> list[tuple[PipelineState, PipelineState]]:
        return transition_path(self.state, target)

    def require(self, *allowed: PipelineState, action: str) -> None:
        if self.state not in allowed:
            names = "/".join(s.name for s in allowed)
            raise StateError(f"{self.owner}: cannot {action} in state {self.state.name} (needs {names})")
