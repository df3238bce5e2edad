"""The workers: agents that split recordings into chunks, transcribe them in batches and stitch the results.
Never imported by the API."""

from processors.app import KafkaEmitter, build_agents
from processors.audio import SAMPLE_RATE, UndecodableAudio, decode_audio
from processors.batching import BatchDecoder, DecodeOptions, Window, WindowResult
from processors.engine import Transcriber
from processors.models import ModelNotAvailable, resolve_model
from processors.planning import PlannedChunk, plan_chunks
from processors.settings import ModelSettings, WorkerSettings
from processors.speech import Region, SpeechOptions, find_speech, level_speech
from processors.stitching import StitchStep, stitch
from processors.transport import Emitter, Source
from processors.worker import run_worker

__all__ = [
    "SAMPLE_RATE",
    "BatchDecoder",
    "DecodeOptions",
    "Emitter",
    "KafkaEmitter",
    "ModelNotAvailable",
    "ModelSettings",
    "PlannedChunk",
    "Region",
    "Source",
    "SpeechOptions",
    "StitchStep",
    "Transcriber",
    "UndecodableAudio",
    "Window",
    "WindowResult",
    "WorkerSettings",
    "build_agents",
    "decode_audio",
    "find_speech",
    "level_speech",
    "plan_chunks",
    "resolve_model",
    "run_worker",
    "stitch",
]
