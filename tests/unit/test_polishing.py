"""The language-model steps: the model's output aligned back to the words, a guard that rejects changed words,
paragraphs over whole segments, and a job that completes whatever the endpoint does."""

from __future__ import annotations

import asyncio
import re

from processors.llm import ChatClient
from processors.polishing import NOT_CONFIGURED, PARAGRAPHS_PROMPT, PUNCTUATION_PROMPT, SUMMARY_PROMPT, polish
from processors.rewriting import align, output_words, paragraph_starts, respelled
from schemas import PostStep, Segment, Word
from tests.support.chat_server import chat_server
from tests.support.ports import free_port

SAID = ["so my fellow americans ask not", "what your country can do for you", "ask what you can do"]


def _segments(with_words: bool = True) -> list[Segment]:
    out, at = [], 0.0
    for n, line in enumerate(SAID):
        words = []
        for token in line.split():
            words.append(Word(word=" " + token, start=at, end=at + 0.4, probability=0.9))
            at += 0.5
        text = "".join(w.word for w in words)
        out.append(
            Segment(
                id=n,
                start=words[0].start,
                end=words[-1].end,
                text=text,
                avg_logprob=-0.2,
                no_speech_prob=0.0,
                words=words if with_words else [],
            )
        )
    return out


def test_output_is_aligned_to_the_words_and_only_spelling_is_taken() -> None:
    words = [" so", " my", " fellow", " americans"]
    output = output_words("So, my fellow Americans —\n\nthank you")
    assert [w.text for w in output] == ["So,", "my", "fellow", "Americans—", "thank", "you"]
    alignment = align(words, output)
    assert alignment.pairs == {0: 0, 1: 1, 2: 2, 3: 3} and alignment.agreement == 4 / 6
    assert respelled(words, output, alignment) == [" So,", " my", " fellow", " Americans—"]
    assert paragraph_starts([*words, " thank"], output, align([*words, " thank"], output)) == {4}


def _punctuated(system: str, user: str) -> str:
    if system == PUNCTUATION_PROMPT:
        return re.sub(r"\byou\b", "you.", user.capitalize().replace("americans", "Americans,")) + "."
    if system == PARAGRAPHS_PROMPT:
        return user.replace("what your", "\n\nwhat your")
    assert system == SUMMARY_PROMPT
    return "Americans are asked what they can do for their country."


def _run(base_url: str | None, steps: list[PostStep], segments: list[Segment] | None = None):  # type: ignore[no-untyped-def]
    llm = ChatClient(base_url=base_url, model="test", timeout_s=5) if base_url else None
    return asyncio.run(polish(segments or _segments(), steps, llm, 0.03))


def test_punctuation_paragraphs_and_summary_keep_every_word_and_time() -> None:
    with chat_server(_punctuated) as url:
        segments, report = _run(url, list(PostStep))
    assert [o.status for o in report.steps] == ["done", "done", "done"], report
    assert report.steps[0].agreement == 1.0
    assert report.summary == "Americans are asked what they can do for their country."
    assert segments[0].text == " So my fellow Americans, ask not" and segments[1].words[-1].word == " you."
    originals = _segments()
    for new, old in zip(segments, originals, strict=True):
        assert [(w.start, w.end) for w in new.words] == [(w.start, w.end) for w in old.words]
        assert [re.sub(r"\W", "", w.word.lower()) for w in new.words] == [w.word.strip() for w in old.words]
    assert [s.paragraph for s in segments] == [0, 1, 1]


def test_a_model_that_changes_words_is_rejected_and_the_text_kept() -> None:
    def rewrites(system: str, user: str) -> str:
        return user.replace("fellow americans", "dear citizens") if system == PUNCTUATION_PROMPT else user

    with chat_server(rewrites) as url:
        segments, report = _run(url, [PostStep.PUNCTUATION])
    [outcome] = report.steps
    assert outcome.status == "rejected" and outcome.agreement == 0.8889
    assert "changed 11.1 % of the words (limit 3 %)" in (outcome.reason or ""), outcome
    assert [s.text for s in segments] == [s.text for s in _segments()]


def test_without_timed_words_the_segment_text_is_respelled() -> None:
    with chat_server(_punctuated) as url:
        segments, report = _run(url, [PostStep.PUNCTUATION], _segments(with_words=False))
    assert report.steps[0].status == "done" and segments[0].text == " So my fellow Americans, ask not"


def test_an_endpoint_that_is_down_or_failing_skips_the_step_with_the_reason() -> None:
    segments, report = _run(f"http://127.0.0.1:{free_port()}/v1", [PostStep.PUNCTUATION, PostStep.SUMMARY])
    assert [o.status for o in report.steps] == ["skipped", "skipped"]
    assert "could not be reached" in (report.steps[0].reason or "") and report.summary is None
    assert [s.text for s in segments] == [s.text for s in _segments()]
    with chat_server(_punctuated, status=503) as url:
        _, report = _run(url, [PostStep.SUMMARY])
    assert report.steps[0].status == "skipped" and "HTTP 503" in (report.steps[0].reason or "")
    _, report = _run(None, [PostStep.PARAGRAPHS])
    assert report.steps[0].status == "skipped" and report.steps[0].reason == NOT_CONFIGURED


def test_a_summary_about_something_else_is_rejected() -> None:
    with chat_server(lambda system, user: "The Roman Empire had many different empires and rulers.") as url:
        _, report = _run(url, [PostStep.SUMMARY])
    [outcome] = report.steps
    assert outcome.status == "rejected" and report.summary is None
    assert "not about what was said" in (outcome.reason or "") and outcome.agreement == 0.0


def test_a_new_speaker_starts_a_paragraph() -> None:
    segments = [s.model_copy(update={"speaker": who}) for s, who in zip(_segments(), ["A", "A", "B"], strict=True)]
    with chat_server(lambda system, user: user) as url:  # the model starts no paragraph of its own
        numbered, report = _run(url, [PostStep.PARAGRAPHS], segments)
    assert report.steps[0].status == "done" and [s.paragraph for s in numbered] == [0, 0, 1]
