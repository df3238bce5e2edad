"""The S3 store against a real S3-compatible server (Ceph RGW) that the session starts."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from ingest import ObjectNotFound, S3ObjectStore, StorageError, StorageSettings

pytestmark = pytest.mark.s3


def _store(server: tuple[str, str, str], bucket: str = "scribeflow-test") -> S3ObjectStore:
    endpoint, access, secret = server
    return S3ObjectStore(
        StorageSettings(
            backend="s3",
            s3_endpoint=endpoint,
            s3_bucket=bucket,
            s3_access_key=SecretStr(access),
            s3_secret_key=SecretStr(secret),
        )
    )


def test_round_trip(s3_server: tuple[str, str, str], tmp_path: Path) -> None:
    store = _store(s3_server)
    store.check()  # creates the bucket on a fresh server
    store.check()
    payload = os.urandom(1 << 20)
    store.put("uploads/j1/audio", io.BytesIO(payload), length=len(payload), content_type="audio/flac")
    assert store.exists("uploads/j1/audio")
    target = tmp_path / "copy"
    assert store.download("uploads/j1/audio", target) == len(payload)
    assert target.read_bytes() == payload
    store.delete("uploads/j1/audio")
    assert not store.exists("uploads/j1/audio")
    with pytest.raises(ObjectNotFound):
        store.download("uploads/j1/audio", target)


def test_large_object_goes_multipart(s3_server: tuple[str, str, str], tmp_path: Path) -> None:
    store = _store(s3_server)
    store.check()
    payload = os.urandom(40 * (1 << 20))
    store.put("uploads/big/audio", io.BytesIO(payload), length=-1)  # unknown length: streamed in parts
    assert store.download("uploads/big/audio", tmp_path / "big") == len(payload)
    assert (tmp_path / "big").read_bytes() == payload


def test_wrong_credentials_are_a_storage_error(s3_server: tuple[str, str, str]) -> None:
    endpoint, access, _ = s3_server
    store = _store((endpoint, access, "not-the-secret"))
    with pytest.raises(StorageError):
        store.check()
