"""The workers: Faust agents that decode, transcribe and emit results. Never imported by the API."""

from processors.app import create_app
from processors.audio import SAMPLE_RATE, UndecodableAudio, decode_audio
from processors.engine import Transcriber, TranscriptionSummary
from processors.models import ModelNotAvailable, resolve_model
from processors.pipeline import Emitter, Resources, Source, handle_request
from processors.settings import ModelSettings, WorkerSettings
from processors.worker import run_worker

__all__ = [
    "SAMPLE_RATE",
    "Emitter",
    "ModelNotAvailable",
    "ModelSettings",
    "Resources",
    "Source",
    "Transcriber",
    "TranscriptionSummary",
    "UndecodableAudio",
    "WorkerSettings",
    "create_app",
    "decode_audio",
    "handle_request",
    "resolve_model",
    "run_worker",
]
