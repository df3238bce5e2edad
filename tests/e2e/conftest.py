from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import RunningStack, start_stack, stop_stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`scribeflow up` as a user runs it; stopping it cleanly with SIGTERM is itself checked."""
    running = start_stack(
        tmp_path_factory.mktemp("stack"),
        env={"SCRIBEFLOW_MAX_UPLOAD_BYTES": str(8 << 20), "SCRIBEFLOW_REVIEW_SHARE": "1"},
    )
    yield running
    code = stop_stack(running)
    assert code == 0, running.log_tail()
