from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.llm_server import llm_server
from tests.support.stack import RunningStack, start_stack, stop_stack


@pytest.fixture(scope="package")
def language_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama.cpp's server with Gemma 3 270M: the chat endpoint of the stack's post-processing steps."""
    with llm_server(tmp_path_factory.mktemp("llm") / "server.log") as base_url:
        yield base_url


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, language_model: str) -> Iterator[RunningStack]:
    """`scribeflow up` as a user runs it; stopping it cleanly with SIGTERM is itself checked."""
    running = start_stack(
        tmp_path_factory.mktemp("stack"),
        env={
            "SCRIBEFLOW_MAX_UPLOAD_BYTES": str(8 << 20),
            "SCRIBEFLOW_REVIEW_SHARE": "1",
            "SCRIBEFLOW_LLM__BASE_URL": language_model,
            "SCRIBEFLOW_LLM__MODEL": "gemma-3-270m",
        },
    )
    yield running
    code = stop_stack(running)
    assert code == 0, running.log_tail()
