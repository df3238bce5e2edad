"""One realtime session on the worker that owns it: its audio, its turns, and when each turn is decoded.

Audio arrives as PCM16 at the client's rate and is resampled to 16 kHz once. Silero VAD runs on each new 32 ms
frame (with a second of audio before it as context, from a fresh state: the session never carries VAD state across
minutes). While a turn is open it is decoded again every `interim_s`, whole, after up to `context_s` of the audio
before it (whose words, already final, are forced as the transcript's start) and with the session's earlier text
as the prompt; of the words after the turn's final ones, those two
consecutive decodes agree on become final and go out as a delta. When the turn ends it is decoded once more and
its text is its final words and what that decode heard after them. A turn longer than `max_turn_s` is cut after
its last final word.

Blocking: every method that decodes runs the model; call it from the live agent's thread.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from processors.audio import SAMPLE_RATE
from processors.batching import DecodeOptions, Window, WindowResult
from processors.speech import FRAME, Region, level_speech, speech_probabilities
from processors.turns import SpeechEdge, TurnDetector, after_committed, agreed_prefix
from schemas.live import LiveOptions, TurnDetection
from schemas.transcript import Word

VAD_CONTEXT_FRAMES = 32  # one second of audio before new frames, so each VAD pass starts warmed up
END_PAD_S = 0.4  # audio decoded after the last speech frame of a turn
EDGE_S = 0.5  # a word ending this close to the end of the audio decoded may still change
PAUSED_S = 0.25  # ... unless the speaker has been silent this long
KEEP_S = 2.0  # audio kept before an open turn could start, beyond the context (prefix padding, VAD context)

Decode = Callable[[Window], WindowResult]


@dataclass(frozen=True)
class LivePolicy:
    interim_s: float = 1.0
    """An open turn is decoded again after this much new audio."""
    first_interim_s: float = 0.5
    """The first decode of a turn comes after this much speech, and the second this much later: two decodes must
    agree before the first words go out. Until the turn has a final word, later decodes come this often too when
    the worker has nothing else to decode (`interim_due(spare=True)`; the live agent asks only while this is the
    one open turn)."""
    max_turn_s: float = 15.0
    """Longer turns are cut after their last final word."""
    prompt_chars: int = 200
    """Final words of the session given as the prompt of each decode (Whisper's prompt holds about 224 tokens)."""
    context_s: float = 5.0
    """Audio before the turn decoded with it, when the turn follows the last one closely (`context_gap_s`): a
    speaker's short turn alone is often misheard or taken for no speech, and with what they said just before it
    is heard. The context's own words are dropped."""
    interim_context: bool = True
    """Interim decodes hear the context too (False: only the final decode of a turn does)."""
    context_prefix: bool = True
    """The context starts at a word already final, and the final words it holds are forced as the start of the
    transcript (Whisper's prefix): only the turn's own words are decoded. Without it the context is decoded again
    and its words dropped by their times, which cut or leaked words at its edge. Offline, on the realtime
    benchmark's two recordings: 10.95 % and 14.94 % WER against 12.13 % and 15.19 % (turns within 2 s)."""
    context_gap_s: float = 2.0
    """A turn that starts longer than this after the last one ended is decoded alone. With the prefix, offline:
    10.95 % and 14.94 % WER for turns within 2 s (the same for every turn), 11.24 % and 18.99 % within 1 s; 7 s of
    context instead of 5 gave 10.36 % and 16.71 %, 10 s 11.83 % on the first. Without the prefix, context for every
    turn made first deltas 1 s later live (p50 2.4 s against 1.4 s): decodes with context are slower."""


@dataclass
class Turn:
    item_id: str
    start: int
    """Session sample where its audio begins (prefix padding included)."""
    final: list[Word] = field(default_factory=list)
    """Words that will not change, in session seconds."""
    pending: list[Word] = field(default_factory=list)
    """The last decode's words after the final ones, waiting for the next decode to agree."""
    decoded_to: int = 0
    """Session sample up to which the last decode heard."""
    decodes: int = 0
    speech_started: int = 0
    continues: bool = False
    """The turn goes on from an over-long one cut inside speech (not after a silence)."""

    @property
    def final_end(self) -> float:
        return self.final[-1].end if self.final else self.start / SAMPLE_RATE


@dataclass
class FinishedTurn:
    item_id: str
    words: list[Word]
    start: float
    end: float
    language: str | None
    tail_delta: str
    """Text of the words not yet sent as deltas."""
    avg_logprob: float
    no_speech_prob: float


class LiveSession:
    def __init__(self, session_id: str, options: LiveOptions, *, policy: LivePolicy, decode: Decode) -> None:
        self.session_id = session_id
        self.options = options
        self.policy = policy
        self._decode = decode
        self.detector = TurnDetector(options.turn_detection or TurnDetection(), at_frame=0)
        self.language = options.language
        self.next_seq = 0
        self.turn: Turn | None = None
        self.items = 0
        self.previous_item: str | None = None
        self.segments = 0
        self.recorded: list[npt.NDArray[np.int16]] = []
        self.started = time.monotonic()
        self.last_output = 0.0
        self.last_input = time.monotonic()
        self._resampler: object | None = None
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # session sample of _buffer[0]
        self._length = 0  # session samples received
        self._vad_frames = 0
        self._history: list[Word] = []  # final words of finished turns
        self._last_end = -1e9  # session seconds where the last turn ended

    # --- input ---

    @property
    def seconds(self) -> float:
        return self._length / SAMPLE_RATE

    def configure(self, options: LiveOptions) -> None:
        if options.rate != self.options.rate:
            self._resampler = None
        self.options = options
        if options.language:
            self.language = options.language
        if self.turn is None:
            self.detector = TurnDetector(options.turn_detection or TurnDetection(), at_frame=self._vad_frames)

    def append(self, pcm16_b64: str) -> list[SpeechEdge]:
        """Adds audio; returns where speech started or stopped in it (server VAD), in order."""
        raw = np.frombuffer(base64.b64decode(pcm16_b64, validate=True), dtype="<i2")
        samples = self._to_16k(raw)
        self.recorded.append((np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16))
        self._buffer = np.concatenate([self._buffer, samples])
        self._length += samples.size
        edges = self._run_vad()
        if self.turn is None and not self.detector.in_speech:
            keep = int((KEEP_S + self.policy.context_s) * SAMPLE_RATE)
            if self._buffer.size > 2 * keep:
                drop = self._buffer.size - keep
                self._buffer = self._buffer[drop:]
                self._buffer_start += drop
        return edges

    def _to_16k(self, raw: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
        samples = raw.astype(np.float32) / 32768.0
        if self.options.rate == SAMPLE_RATE or raw.size == 0:
            return samples
        import av  # deferred, as in processors.audio

        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(raw.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.options.rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]  # type: ignore[attr-defined]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)

    def _run_vad(self) -> list[SpeechEdge]:
        complete = self._length // FRAME
        if complete <= self._vad_frames:
            return []
        first = max(self._vad_frames - VAD_CONTEXT_FRAMES, -(-self._buffer_start // FRAME))
        audio = self._slice(first * FRAME, complete * FRAME)
        probs = speech_probabilities(audio)[self._vad_frames - first :]
        self._vad_frames = complete
        return self.detector.feed([float(p) for p in probs])

    def _slice(self, start: int, end: int) -> npt.NDArray[np.float32]:
        lo = max(start, self._buffer_start) - self._buffer_start
        return self._buffer[lo : max(lo, end - self._buffer_start)]

    # --- turns ---

    def open_turn(self, speech_at: int) -> Turn:
        padding = (self.options.turn_detection or TurnDetection()).prefix_padding_ms * 16
        start = max(speech_at - padding, self._buffer_start, 0)
        self.items += 1
        self.turn = Turn(
            item_id=f"item_{self.session_id[-12:]}_{self.items:04d}",
            start=start,
            decoded_to=start,
            speech_started=speech_at,
        )
        return self.turn

    def interim_due(self, *, spare: bool = False) -> bool:
        """Whether the open turn is due its next decode. `spare`: the worker has nothing else due, so a turn still
        without final words is decoded again at the shorter interval (its first words go out sooner)."""
        turn = self.turn
        if turn is None:
            return False
        if turn.decodes == 0:
            return self._length - turn.speech_started >= self.policy.first_interim_s * SAMPLE_RATE
        quick = turn.decodes == 1 or (spare and not turn.final)
        every = self.policy.first_interim_s if quick else self.policy.interim_s
        return self._length - turn.decoded_to >= every * SAMPLE_RATE

    def overdue(self) -> int:
        """Samples heard since the open turn was last decoded."""
        return self._length - self.turn.decoded_to if self.turn else 0

    def interim(self) -> list[Word]:
        """Decodes the open turn so far; returns the words that just became final."""
        turn = self.turn
        assert turn is not None
        end = self._length
        words, _result = self._decode_from(turn, end, final=False)
        turn.decoded_to = end
        turn.decodes += 1
        agreed = agreed_prefix([w.word for w in turn.pending], [w.word for w in words])
        # A last word at the edge of the audio heard so far may be cut short, and its punctuation ("country."
        # before "can do for you") is a guess: it waits for a decode that hears past it. Unless the speaker has
        # paused (server VAD): a word before a pause is whole (a lone "Um", "And" before a breath). Whisper
        # stretches the last word to the end of the audio, so its own times cannot tell.
        paused = end - self.detector.last_voiced >= PAUSED_S * SAMPLE_RATE
        if words and words[-1].end > end / SAMPLE_RATE - EDGE_S and not paused:
            agreed = min(agreed, len(words) - 1)
        newly = words[:agreed]
        turn.final.extend(newly)
        turn.pending = words[agreed:]
        return newly

    def too_long(self) -> bool:
        turn = self.turn
        return turn is not None and self._length - turn.start > self.policy.max_turn_s * SAMPLE_RATE

    def cut(self) -> FinishedTurn | None:
        """Ends an over-long turn after its last final word and opens the turn that goes on from there; None (and
        nothing changes) while the turn has no final word."""
        turn = self.turn
        if turn is None or not turn.final:
            return None
        finished = self._finished(turn, turn.final, turn.final_end, "", None)
        at = round(finished.end * SAMPLE_RATE)
        following = self.open_turn(at)
        following.start = following.speech_started = at
        following.continues = True
        # The words already heard after the cut wait for agreement as they did in the turn that was cut: the next
        # decode, on the usual schedule, can make them final (starting over would hold them back two decodes).
        following.pending = turn.pending
        following.decodes = turn.decodes
        following.decoded_to = turn.decoded_to
        return finished

    def finish(self, end: int | None = None) -> FinishedTurn:
        """Decodes what follows the turn's last final word, up to `end` (default: all audio received)."""
        turn = self.turn
        assert turn is not None
        end = min(self._length, end if end is not None else self._length)
        words, result = self._decode_from(turn, end, final=True)
        final = turn.final + words
        tail = "".join(w.word for w in words)
        if not turn.final:
            tail = tail.lstrip()
        self.turn = None
        return self._finished(turn, final, end / SAMPLE_RATE, tail, result)

    def clear(self) -> None:
        self.turn = None
        self.detector.reset()

    def _finished(
        self, turn: Turn, words: list[Word], end: float, tail: str, result: WindowResult | None
    ) -> FinishedTurn:
        self.previous_item = turn.item_id
        self._history.extend(words)
        self._last_end = end
        del self._history[: -self.policy.prompt_chars]  # words are at least a character each
        if result is not None and words and not self.language and result.language_probability >= 0.5:
            self.language = result.language  # detected once, on the first turn with words, then kept
        return FinishedTurn(
            item_id=turn.item_id,
            words=words,
            start=turn.start / SAMPLE_RATE,
            end=max(end, words[-1].end if words else 0.0),
            language=self.language or (result.language if result else None),
            tail_delta=tail,
            avg_logprob=result.avg_logprob if result else 0.0,
            no_speech_prob=result.no_speech_prob if result else 0.0,
        )

    def _decode_from(self, turn: Turn, end: int, *, final: bool) -> tuple[list[Word], WindowResult | None]:
        """The turn decoded from its start to `end`: the words after its final ones.

        Every decode hears the whole turn (at most `max_turn_s`): a window that starts at the last final word cuts
        into the next one, since word times are only good to a tenth of a second or so."""
        end = min(end + int(self._end_pad_s * SAMPLE_RATE), self._length)
        if end - turn.start < FRAME:
            return [], None
        close = turn.start / SAMPLE_RATE - self._last_end <= self.policy.context_gap_s
        close = close and (final or self.policy.interim_context)
        words, result = self._decode_window(turn, end, context=close, final=final)
        if close and final and not words:
            words, result = self._decode_window(turn, end, context=False, final=final)
        return words, result

    def _decode_window(
        self, turn: Turn, end: int, *, context: bool, final: bool
    ) -> tuple[list[Word], WindowResult | None]:
        reach = int(self.policy.context_s * SAMPLE_RATE) if context else 0
        begin = max(turn.start - reach, self._buffer_start)
        prefix = None
        if context and self.policy.context_prefix:
            # Every earlier word that starts before the turn, even one whose (approximate) end reaches into it.
            known = [w for w in self._history if begin / SAMPLE_RATE <= w.start < turn.start / SAMPLE_RATE]
            if known:
                earlier = [w.end for w in self._history if w.end <= known[0].start]
                lo = max(known[0].start - 0.3, earlier[-1] if earlier else 0.0)
                begin = max(int(lo * SAMPLE_RATE), self._buffer_start)
                prefix = "".join(w.word for w in known).strip()
            else:
                begin = max(turn.start, self._buffer_start)
        audio = self._slice(begin, end)
        levelled = level_speech(audio, [Region(0, audio.size)])
        # The prompt is what was said before the audio decoded (or before the prefix): nothing in it twice.
        if prefix is None:
            before = "".join(w.word for w in self._history if w.end <= begin / SAMPLE_RATE)
        else:
            before = "".join(w.word for w in self._history if w.start < known[0].start)
        prompt = before[-self.policy.prompt_chars :].strip() or None
        if self.options.prompt:
            prompt = f"{self.options.prompt.strip()} {prompt or ''}".strip()
        options = DecodeOptions(prompt=prompt, fallback=final, prefix=prefix)
        result = self._decode(Window(levelled, options=options, language=self.language))
        offset = begin / SAMPLE_RATE
        words = [
            Word(word=w.word, start=round(offset + w.start, 3), end=round(offset + w.end, 3), probability=w.probability)
            for w in result.words
        ]
        # The turn starts in silence (its prefix padding), so a word that ended before it belongs to the context.
        # Not its start: Whisper often puts the start of a word after a pause early, into the pause.
        opening = turn.start / SAMPLE_RATE
        words = [w.model_copy(update={"start": max(w.start, opening)}) for w in words if w.end > opening]
        # A turn that goes on from a cut may hear the last words before the cut again.
        settled = turn.final or (self._history[-5:] if turn.continues else [])
        skip = after_committed(
            [w.word for w in words], [w.end for w in words], [w.word for w in settled], turn.final_end
        )
        return words[skip:], result

    @property
    def _end_pad_s(self) -> float:
        # Silero ends speech a little early; the silence that ended the turn is there to take from.
        detection = self.options.turn_detection
        return min(END_PAD_S, detection.silence_duration_ms / 1000) if detection else END_PAD_S

    def wav(self) -> bytes:
        """The session's audio as received, at 16 kHz, as a WAV file."""
        import io
        import wave

        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(SAMPLE_RATE)
            for piece in self.recorded:
                writer.writeframes(piece.astype("<i2").tobytes())
        return out.getvalue()
