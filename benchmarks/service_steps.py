"""The split, transcribe and stitch agents' steps in one process, without Kafka or the object store.

For benchmarks on a machine that has only numpy, CTranslate2, faster-whisper and pydantic (a lent GPU machine): the
agents' own functions are called, in the order the agents call them, with the settings given.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


class Service:
    """The split, transcribe and stitch agents' steps, in one process, on recordings given as samples."""

    def __init__(self, model: Any, meta: dict[str, Any], batch_size: int) -> None:
        from benchmarks.standalone import processors_module

        self.batching = processors_module("batching")
        self.speech = processors_module("speech")
        self.planning = processors_module("planning")
        self.transcribing = processors_module("transcribing")
        self.stitching = processors_module("stitching")
        self.recovery = processors_module("recovery")
        self.chunking = meta["chunking"]
        self.recovery_options = self.recovery.RecoveryOptions(
            enabled=meta["recovery"]["enabled"],
            min_stretch_s=meta["recovery"]["min_stretch_s"],
            rounds=meta["recovery"]["rounds"],
        )
        self.decoder = self.batching.BatchDecoder(model, beam_size=5, batch_size=batch_size)
        self.batch_size = batch_size

    def split(self, job_id: str, audio: np.ndarray) -> list[Any]:
        from schemas.chunks import ChunkRequested, TimeSpan
        from schemas.transcript import TranscriptionOptions

        c = self.chunking
        speech = self.speech.find_speech(
            audio, self.speech.SpeechOptions(max_region_s=c["target_s"], recheck_gap_s=c["recheck_gap_s"])
        )
        if c["level_dbfs"] is not None:
            audio = self.speech.level_speech(audio, speech, target_dbfs=c["level_dbfs"])
        plan = self.planning.plan_chunks(
            speech,
            audio.size,
            target=int(c["target_s"] * SAMPLE_RATE),
            overlap=int(c["overlap_s"] * SAMPLE_RATE),
            join_gap=int(c["join_gap_s"] * SAMPLE_RATE),
        )
        loaded = []
        for chunk in plan:
            request = ChunkRequested(
                job_id=job_id,
                index=chunk.index,
                count=len(plan),
                owned=TimeSpan(start=chunk.owned[0] / SAMPLE_RATE, end=chunk.owned[1] / SAMPLE_RATE),
                overlap_s=c["overlap_s"],
                cut_in_speech=chunk.cut_in_speech,
                model="base",
                audio_key=f"{job_id}/{chunk.index}",
                spans=[TimeSpan(start=s / SAMPLE_RATE, end=e / SAMPLE_RATE) for s, e in chunk.spans],
                options=TranscriptionOptions(language="en"),
                duration=round(audio.size / SAMPLE_RATE, 3),
            )
            packed = np.concatenate([audio[s:e] for s, e in chunk.spans]).astype(np.float32)
            loaded.append(self.transcribing.LoadedChunk(request, packed))
        return loaded

    def run(self, recordings: list[np.ndarray], *, pipelined: bool = False) -> dict[str, Any]:
        """Every recording as one job; chunk events interleaved across jobs as concurrent splits publish them,
        taken `batch_size` at a time as the transcribe agent takes them. `pipelined` splits the jobs one after
        another in a thread while the chunks already published are decoded, as split and transcribe agents do."""
        if pipelined:
            return self._pipelined(recordings)
        stages = {"split": 0.0, "first pass": 0.0, "recovery": 0.0, "stitch": 0.0}
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
        finally:
            del self.decoder.decode
        started = time.perf_counter()
        texts, recovered = self._stitch(results)
        stages["stitch"] = time.perf_counter() - started
        return {
            "texts": texts,
            "chunks": len(queue),
            "recovered": recovered,
            "stages": {k: round(v, 3) for k, v in stages.items()},
            "windows": windows,
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
