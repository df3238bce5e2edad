"""The same pipeline with the S3 store: uploads land in the bucket and the worker reads them from there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio

from tests.support.audio import shared
from tests.support.stack import RunningStack, start_stack, stop_stack

pytestmark = [pytest.mark.e2e, pytest.mark.s3]
BUCKET = "scribeflow-e2e"


@pytest.fixture(scope="module")
def s3_stack(s3_server: tuple[str, str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    endpoint, access, secret = s3_server
    env = {
        "SCRIBEFLOW_STORAGE__BACKEND": "s3",
        "SCRIBEFLOW_STORAGE__S3_ENDPOINT": endpoint,
        "SCRIBEFLOW_STORAGE__S3_BUCKET": BUCKET,
        "SCRIBEFLOW_STORAGE__S3_ACCESS_KEY": access,
        "SCRIBEFLOW_STORAGE__S3_SECRET_KEY": secret,
    }
    running = start_stack(tmp_path_factory.mktemp("s3-stack"), env=env)
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def test_upload_is_stored_in_the_bucket_and_transcribed(
    s3_stack: RunningStack, s3_server: tuple[str, str, str]
) -> None:
    response = s3_stack.submit(shared("jfk.flac"))
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = s3_stack.wait(job_id)
    assert job["status"] == "completed", job
    assert "ask not what your country" in job["result"]["text"].lower()

    endpoint, access, secret = s3_server
    client = Minio(endpoint, access_key=access, secret_key=secret, secure=False)
    stored = client.stat_object(BUCKET, f"uploads/{job_id}/audio")
    assert stored.size == shared("jfk.flac").stat().st_size
    assert not (s3_stack.data_dir / "objects").exists()  # nothing went to the local store


def test_reference_to_an_object_already_in_the_bucket(s3_stack: RunningStack, s3_server: tuple[str, str, str]) -> None:
    endpoint, access, secret = s3_server
    client = Minio(endpoint, access_key=access, secret_key=secret, secure=False)
    source: Path = shared("librispeech_dev-clean_1272-128104-0000.wav")
    client.fput_object(BUCKET, "incoming/quilter.wav", str(source))
    response = s3_stack.post("/v1/jobs", data={"audio_key": "incoming/quilter.wav"}, timeout=30)
    assert response.status_code == 202, response.text
    missing = s3_stack.post("/v1/jobs", data={"audio_key": "incoming/nope.wav"}, timeout=30)
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "audio_not_found"
    job = s3_stack.wait(response.json()["id"])
    assert job["status"] == "completed" and "quilter" in job["result"]["text"].lower()
