"""The split, transcribe and stitch agents' steps in one process, without Kafka or the object store.

For benchmarks on a machine that has only numpy, CTranslate2, faster-whisper and pydantic (a lent GPU machine): the
agents' own functions are called, in the order the agents call them, with the settings given.
"""

from __future__ import annotations

import time
import types
from typing import Any

import numpy as np


class Service:
    """The split, transcribe and stitch agents' steps, in one process, on recordings given as samples."""

    def __init__(
        self, model: Any, meta: dict[str, Any], batch_size: int, *, voices: Any = None, beside: bool = False
    ) -> None:
        """`voices`: a voice embedder; each chunk's voices are then embedded as the transcribe agent embeds a
        diarized job's, after its batch's decode, or with `beside` on a thread of their own while the next batch
        decodes."""
        from benchmarks.standalone import processors_module

        self.batching = processors_module("batching")
        self.chunk_plan = processors_module("chunk_plan")
        self.transcribing = processors_module("transcribing")
        self.stitching = processors_module("stitching")
        self.recovery = processors_module("recovery")
        # The settings as `--prepare` read them from `ChunkingSettings` (whose module needs the worker's packages).
        self.chunking = types.SimpleNamespace(**meta["chunking"])
        self.recovery_options = self.recovery.RecoveryOptions(
            enabled=meta["recovery"]["enabled"],
            min_stretch_s=meta["recovery"]["min_stretch_s"],
            rounds=meta["recovery"]["rounds"],
        )
        self.decoder = self.batching.BatchDecoder(model, beam_size=5, batch_size=batch_size)
        self.batch_size = batch_size
        self.voices, self.beside = voices, beside
        self.chunk_windows = processors_module("diarization").chunk_windows

    def embed_voices(self, batch: list[Any]) -> int:
        """What `processors.speakers.chunk_voices` embeds for each chunk of a batch (that module needs the object
        store's client); the number of windows embedded."""
        count = 0
        for loaded in batch:
            chunk = loaded.request
            spans = [(s.start, s.end) for s in chunk.spans]
            _windows, stretches = self.chunk_windows(loaded.audio, spans, chunk.owned.start, chunk.owned.end)
            if stretches:
                self.voices.embed(stretches)
            count += len(stretches)
        return count

    def split(self, job_id: str, audio: np.ndarray) -> list[Any]:
        """The split agent's plan and chunk events (`processors.chunk_plan`), the chunks kept in memory."""
        from schemas.transcript import TranscriptionOptions

        recording = self.chunk_plan.plan_recording(audio, self.chunking)
        return [
            self.transcribing.LoadedChunk(
                self.chunk_plan.chunk_requested(
                    job_id,
                    recording,
                    chunk,
                    overlap_s=self.chunking.overlap_s,
                    model="base",
                    audio_key=f"{job_id}/{chunk.index}",
                    options=TranscriptionOptions(language="en"),
                    language_probability=None,
                ),
                recording.packed(chunk),
            )
            for chunk in recording.chunks
        ]

    def run(self, recordings: list[np.ndarray], *, pipelined: bool = False) -> dict[str, Any]:
        """Every recording as one job; chunk events interleaved across jobs as concurrent splits publish them,
        taken `batch_size` at a time as the transcribe agent takes them. `pipelined` splits the jobs one after
        another in a thread while the chunks already published are decoded, as split and transcribe agents do."""
        if pipelined:
            return self._pipelined(recordings)
        from concurrent.futures import ThreadPoolExecutor

        stages = {"split": 0.0, "first pass": 0.0, "recovery": 0.0, "voices": 0.0, "stitch": 0.0}
        embedding = ThreadPoolExecutor(1) if self.voices is not None and self.beside else None
        pending: list[Any] = []
        voice_windows = 0
        windows = {"first pass": 0, "recovery": 0}
        decode = self.decoder.decode
        first = [True]

        def timed_decode(batch: list[Any]) -> Any:
            stage = "first pass" if first[0] else "recovery"
            first[0] = False
            started = time.perf_counter()
            try:
                return decode(batch)
            finally:
                stages[stage] += time.perf_counter() - started
                windows[stage] += len(batch)

        started = time.perf_counter()
        jobs = [self.split(f"job{n}", audio) for n, audio in enumerate(recordings)]
        stages["split"] = time.perf_counter() - started
        queue = [job[i] for i in range(max(len(j) for j in jobs)) for job in jobs if i < len(job)]
        results: dict[str, list[Any]] = {f"job{n}": [] for n in range(len(jobs))}
        self.decoder.decode = timed_decode
        try:
            for start in range(0, len(queue), self.batch_size):
                batch = queue[start : start + self.batch_size]
                first[0] = True
                for loaded, result in zip(
                    batch, self.transcribing.transcribe_chunks(self.decoder, batch, self.recovery_options), strict=True
                ):
                    results[loaded.request.job_id].append(result)
                if embedding is not None:
                    pending.append(embedding.submit(self.embed_voices, batch))
                elif self.voices is not None:
                    started = time.perf_counter()
                    voice_windows += self.embed_voices(batch)
                    stages["voices"] += time.perf_counter() - started
            started = time.perf_counter()  # beside: what is left of the embedding once the last batch is decoded
            voice_windows += sum(f.result() for f in pending)
            stages["voices"] += time.perf_counter() - started
        finally:
            del self.decoder.decode
            if embedding is not None:
                embedding.shutdown()
        started = time.perf_counter()
        texts, recovered = self._stitch(results)
        stages["stitch"] = time.perf_counter() - started
        return {
            "texts": texts,
            "chunks": len(queue),
            "recovered": recovered,
            "stages": {k: round(v, 3) for k, v in stages.items()},
            "windows": {**windows, "voices": voice_windows},
        }

    def _pipelined(self, recordings: list[np.ndarray]) -> dict[str, Any]:
        import queue
        import threading

        published: queue.Queue[Any] = queue.Queue()

        def split_all() -> None:
            for n, audio in enumerate(recordings):
                for chunk in self.split(f"job{n}", audio):
                    published.put(chunk)
            published.put(None)

        splitter = threading.Thread(target=split_all)
        splitter.start()
        results: dict[str, list[Any]] = {f"job{n}": [] for n in range(len(recordings))}
        done, chunks = False, 0
        while not done:
            batch = [published.get()]
            while len(batch) < self.batch_size and not published.empty():
                batch.append(published.get())
            if batch[-1] is None:
                batch.pop()
                done = True
            if batch:
                chunks += len(batch)
                for loaded, result in zip(
                    batch, self.transcribing.transcribe_chunks(self.decoder, batch, self.recovery_options), strict=True
                ):
                    results[loaded.request.job_id].append(result)
        splitter.join()
        texts, recovered = self._stitch(results)
        return {"texts": texts, "chunks": chunks, "recovered": recovered}

    def _stitch(self, results: dict[str, list[Any]]) -> tuple[list[str], int]:
        """Each job's chunk results merged in order, as the stitch agent merges them; its text and recoveries."""
        texts, recovered = [], 0
        for job_id, chunk_results in results.items():
            state: Any = None
            segments: list[Any] = []
            for result in sorted(chunk_results, key=lambda r: r.index):
                step = self.stitching.stitch(state, result, lambda _i: None)
                state = step.state
                segments += step.segments
            assert state is not None and state.finished, f"{job_id} did not complete"
            assert [s.id for s in segments] == list(range(len(segments))), "segment ids are not contiguous"
            texts.append(" ".join(s.text.strip() for s in segments))
            recovered += state.recovered_stretches
        return texts, recovered
