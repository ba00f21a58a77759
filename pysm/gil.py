"""The interpreter's thread switch interval, tuned once a pipeline runs or readers decode in threads.

A pipeline runs one thread per source plus one per element. Python hands the GIL to a waiting
thread only when the holder blocks or after the switch interval (5 ms by default). With dozens of
decoder threads wanting the GIL, every time the inference thread gives it up for a native call it
may wait a whole interval or more to get it back, and the GPU waits with it. Measured on an H200
(ResNet-18 detector, 128 streams): 2,196 fps at 5 ms, 3,370 fps at 0.5 ms. Readers decoding in
threads meet the same wait: PyAV gives the GIL up for every packet it reads, and while a reader
waits for it its NVDEC engine runs dry (7 H.264 streams on an H100: NVDEC 87-96 % busy at 5 ms,
93-100 % at 0.5 ms).

So pysm lowers the interval to 0.5 ms when a pipeline starts or a second ``VideoReader`` iterates at
the same time as another, unless the application already set its own value.
``PYSM_SWITCH_INTERVAL`` overrides: a number of seconds, or ``keep`` to leave Python's setting
alone. The setting is process-wide and stays after the pipeline or the readers stop.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("pysm")

PYTHON_DEFAULT = 0.005
PIPELINE_INTERVAL = 0.0005


def tune_switch_interval() -> float:
    """Apply the pipeline switch interval (see the module doc); returns the interval in force."""
    current = sys.getswitchinterval()
    env = os.environ.get("PYSM_SWITCH_INTERVAL", "").strip().lower()
    if env == "keep":
        return current
    if env:
        try:
            target = float(env)
        except ValueError:
            log.warning("PYSM_SWITCH_INTERVAL=%r is not a number of seconds or 'keep'; ignored", env)
            return current
        if target <= 0:
            log.warning("PYSM_SWITCH_INTERVAL=%r must be positive; ignored", env)
            return current
    else:
        if abs(current - PYTHON_DEFAULT) > 1e-9 or current <= PIPELINE_INTERVAL:
            return current  # the application chose its own value
        target = PIPELINE_INTERVAL
    if target != current:
        sys.setswitchinterval(target)
        log.debug("thread switch interval %.4f s -> %.4f s", current, target)
    return sys.getswitchinterval()
