"""Object storage for audio: a local directory or an S3-compatible bucket, behind one interface.

Errors: `ObjectNotFound` when a key does not exist, `StorageError` for everything else the backend reports.
Both backends are blocking; async callers run them in a thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from ingest.config import StorageSettings


class StorageError(Exception):
    """The store could not complete an operation."""


class InvalidKey(StorageError):
    """The key could never name an object (absolute, `..`, not normalised)."""


class ObjectNotFound(StorageError):
    """The key does not exist in the store."""


def validate_key(key: str) -> str:
    """Keys are relative POSIX paths without `..`, so a key can never escape its bucket or root."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or key != str(path):
        raise InvalidKey(f"invalid object key {key!r}")
    return key


class ObjectStore(Protocol):
    def put(self, key: str, data: BinaryIO, *, length: int, content_type: str | None = None) -> None:
        """Store `length` bytes from `data` under `key`, replacing what was there (idempotent)."""

    def download(self, key: str, destination: Path) -> int:
        """Write the object to `destination`; returns its size. Raises `ObjectNotFound`."""

    def delete(self, key: str) -> None:
        """Remove the key; a missing key is not an error."""

    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise `StorageError` unless the store is reachable and writable."""


class LocalObjectStore:
    """Objects as files under `root`; writes go to a temporary file first so readers never see half an object."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def put(self, key: str, data: BinaryIO, *, length: int, content_type: str | None = None) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)
            os.replace(tmp, target)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise StorageError(f"cannot write {key}: {e}") from e

    def download(self, key: str, destination: Path) -> int:
        source = self._path(key)
        try:
            shutil.copyfile(source, destination)
        except FileNotFoundError as e:
            raise ObjectNotFound(key) from e
        except OSError as e:
            raise StorageError(f"cannot read {key}: {e}") from e
        return destination.stat().st_size

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create {self.root}: {e}") from e
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


class S3ObjectStore:
    """Objects in one bucket of an S3-compatible server, through the `minio` SDK."""

    def __init__(self, settings: StorageSettings) -> None:
        from minio import Minio  # deferred: the SDK builds an HTTP pool on construction

        self.bucket = settings.s3_bucket
        self._client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    def put(self, key: str, data: BinaryIO, *, length: int, content_type: str | None = None) -> None:
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError  # an unreachable server: retries exhausted

        try:
            self._client.put_object(
                self.bucket,
                validate_key(key),
                data,
                length=length,
                content_type=content_type or "application/octet-stream",
                part_size=16 * 1024 * 1024 if length < 0 else 0,
            )
        except (MinioException, OSError, HTTPError) as e:
            raise StorageError(f"cannot write {key}: {e}") from e

    def download(self, key: str, destination: Path) -> int:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError  # an unreachable server: retries exhausted

        try:
            self._client.fget_object(self.bucket, validate_key(key), str(destination))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                raise ObjectNotFound(key) from e
            raise StorageError(f"cannot read {key}: {e}") from e
        except (MinioException, OSError, HTTPError) as e:
            raise StorageError(f"cannot read {key}: {e}") from e
        return destination.stat().st_size

    def delete(self, key: str) -> None:
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError  # an unreachable server: retries exhausted

        try:
            self._client.remove_object(self.bucket, validate_key(key))
        except (MinioException, OSError, HTTPError) as e:
            raise StorageError(f"cannot delete {key}: {e}") from e

    def exists(self, key: str) -> bool:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError  # an unreachable server: retries exhausted

        try:
            self._client.stat_object(self.bucket, validate_key(key))
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                return False
            raise StorageError(f"cannot stat {key}: {e}") from e
        except (MinioException, OSError, HTTPError) as e:
            raise StorageError(f"cannot stat {key}: {e}") from e
        return True

    def check(self) -> None:
        """Also creates the bucket on first use, so a fresh server needs no manual step."""
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError  # an unreachable server: retries exhausted

        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except (MinioException, OSError, HTTPError) as e:
            raise StorageError(f"bucket {self.bucket} unavailable: {e}") from e


def open_store(settings: StorageSettings) -> ObjectStore:
    if settings.backend == "s3":
        return S3ObjectStore(settings)
    return LocalObjectStore(settings.local_root)
