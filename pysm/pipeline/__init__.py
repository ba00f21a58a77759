"""The pipeline runtime: pyservicemaker's Pipeline API, elements, messages and probes."""

from pysm.pipeline import signal
from pysm.pipeline.factory import CommonFactory, probe, register_probe
from pysm.pipeline.messages import (DynamicSourceMessage, EOSMessage, ErrorMessage, PipelineMessage,
                                    SourceStateMessage, StateTransitionMessage, StreamEOSMessage,
                                    WarningMessage)
from pysm.pipeline.node import Node
from pysm.pipeline.pipeline import Pipeline
from pysm.pipeline.probe import (BatchMetadataOperator, BufferObserver, BufferOperator, BufferProvider,
                                 BufferRetriever, Feeder, Probe, Receiver)
from pysm.pipeline.state import PipelineState

__all__ = [
    "Pipeline", "Node", "PipelineState", "PipelineMessage", "EOSMessage", "StateTransitionMessage",
    "DynamicSourceMessage", "ErrorMessage", "WarningMessage", "SourceStateMessage", "StreamEOSMessage",
    "Probe", "Receiver", "Feeder", "BufferRetriever", "BufferProvider", "BufferOperator",
    "BatchMetadataOperator", "BufferObserver", "CommonFactory", "probe", "register_probe", "signal",
]
