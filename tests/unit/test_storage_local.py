import io
from pathlib import Path

import pytest

from ingest import LocalObjectStore, ObjectNotFound, StorageError


def test_put_download_delete(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    store.check()
    store.put("uploads/j/audio", io.BytesIO(b"abc" * 1000), length=3000)
    assert store.exists("uploads/j/audio")
    target = tmp_path / "copy"
    assert store.download("uploads/j/audio", target) == 3000
    assert target.read_bytes() == b"abc" * 1000
    store.put("uploads/j/audio", io.BytesIO(b"new"), length=3)  # overwrite: retried uploads are idempotent
    assert store.download("uploads/j/audio", target) == 3
    store.delete("uploads/j/audio")
    store.delete("uploads/j/audio")
    assert not store.exists("uploads/j/audio")
    with pytest.raises(ObjectNotFound):
        store.download("uploads/j/audio", target)
    assert not [p for p in (tmp_path / "objects").rglob(".upload-*")]


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../b", "", "a//b", "./a"])
def test_keys_cannot_escape_the_root(tmp_path: Path, key: str) -> None:
    store = LocalObjectStore(tmp_path)
    with pytest.raises(StorageError):
        store.put(key, io.BytesIO(b"x"), length=1)
