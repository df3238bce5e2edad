"""The live agent's step: realtime sessions' input in, what the client must hear out.

Sessions live in this worker's memory, on the worker that owns their partition of the live input topic. Input for
a session this worker does not hold (its owner died, the partition moved here) gets one fatal `session_lost`: the
open turn's audio is gone, and a client told so reconnects instead of waiting on silence. Every completed turn with
words is also a segment of the session's job, sent at once; when the client leaves, the session's audio is stored
beside the job and the job completes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import TypeAdapter

from ingest.storage import ObjectStore, StorageError
from processors.batching import Window, WindowResult
from processors.engine import Transcriber
from processors.live_session import FinishedTurn, LivePolicy, LiveSession
from processors.transport import Emitter, Source, parse
from schemas import JobStatus, JobStatusChanged, Segment, SegmentTranscribed
from schemas.live import (
    LiveAccepted,
    LiveAlive,
    LiveAudio,
    LiveClear,
    LiveCleared,
    LiveClose,
    LiveCommit,
    LiveCommitted,
    LiveCompleted,
    LiveConfigured,
    LiveDelta,
    LiveEnded,
    LiveEvent,
    LiveFailed,
    LiveInput,
    LiveOpened,
    LiveSpeechStarted,
    LiveSpeechStopped,
    live_audio_key,
)

log = logging.getLogger(__name__)

_INPUT: TypeAdapter[LiveInput] = TypeAdapter(LiveInput)
LOST_WINDOW_S = 60.0  # input older than this for an unknown session is stale history, not a client waiting
ALIVE_EVERY_S = 2.0
IDLE_S = 30.0  # the API sends a keepalive every few seconds: a session silent this long has no API left


@dataclass(frozen=True)
class LiveResources:
    store: ObjectStore
    transcriber: Transcriber
    worker: str
    max_sessions: int = 4
    policy: LivePolicy = field(default_factory=LivePolicy)


@dataclass
class _Limits:
    max_seconds: float
    opened: float


class LiveEngine:
    def __init__(self, resources: LiveResources, emitter: Emitter) -> None:
        self.resources = resources
        self.emitter = emitter
        self.sessions: dict[str, LiveSession] = {}
        self._limits: dict[str, _Limits] = {}
        self._ended: dict[str, float] = {}
        self._out: list[LiveEvent] = []

    async def handle(self, inputs: Sequence[tuple[bytes | None, Source]]) -> None:
        now = time.monotonic()
        for session in [s for s in self.sessions.values() if now - s.last_input > IDLE_S]:
            log.warning("live session %s had no input for %.0f s; closing it", session.session_id, IDLE_S)
            await self._close(session, failure=None)
        for raw, source in inputs:
            event = await parse(raw, source, _INPUT, self.emitter, name="live input")
            if event is not None:
                await self._apply(event)
                await self._flush()
        # One interim decode per batch of input, the most overdue first: the runner reads input again in between,
        # so a turn that just ended (its final decode, what a client waits for) never queues behind several
        # sessions' interim decodes. When only one turn is open, time nobody's decode is due goes to it while it
        # waits for its first words; with more, such decodes delay everyone's next ones (4 sessions: turns
        # completed at a median of 2.4 and 4.6 s after speech, against 2.0 and 2.6 s without them).
        sessions = list(self.sessions.values())
        due = [s for s in sessions if s.interim_due()]
        if not due and sum(1 for s in sessions if s.turn is not None) == 1:
            due = [s for s in sessions if s.interim_due(spare=True)]
        if due:
            await self._interim(max(due, key=lambda s: s.overdue()))
            await self._flush()
        await self._alive()

    async def _flush(self) -> None:
        out, self._out = self._out, []
        if out:
            now = time.monotonic()
            for event in out:
                session = self.sessions.get(event.job_id)
                if session is not None:
                    session.last_output = now
            await self.emitter.live(out)

    def _say(self, event: LiveEvent) -> None:
        self._out.append(event)

    async def _apply(self, event: LiveInput) -> None:
        sid = event.job_id
        if isinstance(event, LiveOpened):
            await self._open(event)
            return
        session = self.sessions.get(sid)
        if session is not None:
            session.last_input = time.monotonic()
        if session is None:
            age = (datetime.now(UTC) - event.occurred_at).total_seconds()
            if sid not in self._ended and age < LOST_WINDOW_S and not isinstance(event, LiveClose):
                self._ended[sid] = time.monotonic()
                self._say(
                    LiveFailed(
                        job_id=sid,
                        code="session_lost",
                        message="the worker that held this session stopped and its open turn was lost; reconnect",
                        fatal=True,
                    )
                )
            return
        if isinstance(event, LiveConfigured):
            session.configure(event.options)
        elif isinstance(event, LiveAudio):
            await self._audio(session, event)
        elif isinstance(event, LiveCommit):
            await self._commit(session, event.client_event_id)
        elif isinstance(event, LiveClear):
            session.clear()
            self._say(LiveCleared(job_id=sid))
        elif isinstance(event, LiveClose):
            await self._close(session, failure=None)

    async def _open(self, event: LiveOpened) -> None:
        sid = event.job_id
        if sid in self.sessions or sid in self._ended:
            return  # redelivered
        if len(self.sessions) >= self.resources.max_sessions:
            self._ended[sid] = time.monotonic()
            self._say(
                LiveFailed(
                    job_id=sid,
                    code="server_busy",
                    message=f"this worker holds its maximum of {self.resources.max_sessions} live sessions",
                    fatal=True,
                )
            )
            return
        session = LiveSession(sid, event.options, policy=self.resources.policy, decode=self._decode)
        self.sessions[sid] = session
        self._limits[sid] = _Limits(max_seconds=event.max_seconds, opened=time.monotonic())
        self._say(LiveAccepted(job_id=sid, worker=self.resources.worker))
        await self.emitter.status(
            JobStatusChanged(job_id=sid, status=JobStatus.PROCESSING, model=self.resources.transcriber.model_name)
        )
        log.info("live session %s opened (%d held)", sid, len(self.sessions))

    def _decode(self, window: Window) -> WindowResult:
        return self.resources.transcriber.live_decoder.decode([window])[0]

    async def _audio(self, session: LiveSession, event: LiveAudio) -> None:
        if event.seq < session.next_seq:
            return  # redelivered
        session.next_seq = event.seq + 1
        vad = session.options.turn_detection is not None
        try:
            edges = session.append(event.pcm16)
        except ValueError as e:
            self._say(LiveFailed(job_id=session.session_id, code="invalid_audio", message=f"audio is not base64: {e}"))
            return
        for edge in edges:
            if edge.started and session.turn is None:
                turn = session.open_turn(edge.sample)
                if vad:
                    self._say(
                        LiveSpeechStarted(
                            job_id=session.session_id, item_id=turn.item_id, audio_start_ms=turn.start // 16
                        )
                    )
            elif not edge.started and vad and session.turn is not None:
                turn = session.turn
                self._say(
                    LiveSpeechStopped(job_id=session.session_id, item_id=turn.item_id, audio_end_ms=edge.sample // 16)
                )
                self._say(
                    LiveCommitted(
                        job_id=session.session_id, item_id=turn.item_id, previous_item_id=session.previous_item
                    )
                )
                await self._flush()
                await self._complete(session, await asyncio.to_thread(session.finish, edge.sample))
        if session.too_long():
            finished = session.cut()
            if finished is not None:
                if vad:
                    end_ms = int(finished.end * 1000)
                    self._say(
                        LiveSpeechStopped(job_id=session.session_id, item_id=finished.item_id, audio_end_ms=end_ms)
                    )
                self._say(LiveCommitted(job_id=session.session_id, item_id=finished.item_id, previous_item_id=None))
                await self._complete(session, finished)
                following = session.turn
                if vad and following is not None:
                    self._say(
                        LiveSpeechStarted(
                            job_id=session.session_id, item_id=following.item_id, audio_start_ms=following.start // 16
                        )
                    )
        limits = self._limits[session.session_id]
        if session.seconds > limits.max_seconds or time.monotonic() - limits.opened > limits.max_seconds * 1.5:
            failure = LiveFailed(
                job_id=session.session_id,
                code="session_expired",
                message=f"the session reached its maximum length of {limits.max_seconds:.0f} s",
                fatal=True,
            )
            await self._close(session, failure=failure)

    async def _commit(self, session: LiveSession, client_event_id: str | None) -> None:
        sid = session.session_id
        turn = session.turn
        if turn is None:
            self._say(
                LiveFailed(
                    job_id=sid,
                    code="input_audio_buffer_commit_empty",
                    message="there is no speech in the input audio buffer to commit",
                    client_event_id=client_event_id,
                )
            )
            return
        self._say(LiveCommitted(job_id=sid, item_id=turn.item_id, previous_item_id=session.previous_item))
        await self._flush()
        session.detector.reset()
        await self._complete(session, await asyncio.to_thread(session.finish))

    async def _interim(self, session: LiveSession) -> None:
        turn = session.turn
        assert turn is not None
        had_words = bool(turn.final)
        newly = await asyncio.to_thread(session.interim)
        if newly:
            text = "".join(w.word for w in newly)
            self._say(
                LiveDelta(job_id=session.session_id, item_id=turn.item_id, delta=text if had_words else text.lstrip())
            )

    async def _complete(self, session: LiveSession, finished: FinishedTurn) -> None:
        sid = session.session_id
        text = "".join(w.word for w in finished.words).strip()
        segment_id = None
        if finished.words:
            segment_id = session.segments
            session.segments += 1
            segment = Segment(
                id=segment_id,
                start=round(finished.start, 3),
                end=round(finished.end, 3),
                text=text,
                avg_logprob=finished.avg_logprob,
                no_speech_prob=finished.no_speech_prob,
                words=finished.words,
            )
            await self.emitter.segments([SegmentTranscribed(job_id=sid, segment=segment, language=finished.language)])
        if finished.tail_delta:
            self._say(LiveDelta(job_id=sid, item_id=finished.item_id, delta=finished.tail_delta))
        self._say(
            LiveCompleted(
                job_id=sid,
                item_id=finished.item_id,
                segment_id=segment_id,
                transcript=text,
                start=round(finished.start, 3),
                end=round(finished.end, 3),
                language=finished.language,
                words=finished.words,
            )
        )
        await self._flush()

    async def _close(self, session: LiveSession, *, failure: LiveFailed | None) -> None:
        sid = session.session_id
        if session.turn is not None:
            await self._complete(session, await asyncio.to_thread(session.finish))
        if failure is not None:
            self._say(failure)
        del self.sessions[sid]
        self._limits.pop(sid, None)
        self._ended[sid] = time.monotonic()
        await self._store(session)
        await self.emitter.status(
            JobStatusChanged(
                job_id=sid,
                status=JobStatus.COMPLETED,
                progress=1.0,
                model=self.resources.transcriber.model_name,
                language=session.language,
                duration=round(session.seconds, 3),
                segment_count=session.segments,
            )
        )
        self._say(LiveEnded(job_id=sid, segment_count=session.segments))
        await self._flush()
        log.info("live session %s ended: %.1f s, %d segments", sid, session.seconds, session.segments)
        cutoff = time.monotonic() - 3600
        self._ended = {k: v for k, v in self._ended.items() if v > cutoff}

    async def _store(self, session: LiveSession) -> None:
        data = session.wav()
        try:
            await asyncio.to_thread(
                self.resources.store.put,
                live_audio_key(session.session_id),
                io.BytesIO(data),
                length=len(data),
                content_type="audio/wav",
            )
        except StorageError as e:  # the transcript matters more than the recording: complete without it
            log.warning("could not store the audio of live session %s: %s", session.session_id, e)

    async def _alive(self) -> None:
        now = time.monotonic()
        for sid, session in self.sessions.items():
            if now - session.last_output >= ALIVE_EVERY_S:
                self._say(LiveAlive(job_id=sid))
        await self._flush()
