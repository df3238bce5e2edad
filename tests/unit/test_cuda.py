"""Finding and loading the NVIDIA wheels' CUDA 12 libraries for CTranslate2 (processors.cuda)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from processors.cuda import libraries, preload_cuda_libraries, wheel_library_dirs

REAL_LIBRARY = Path("/lib/x86_64-linux-gnu/libz.so.1")


def _tree(root: Path, files: dict[str, Path | None]) -> Path:
    for relative, source in files.items():
        path = root / "nvidia" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if source is None:
            path.write_bytes(b"not a library")
        else:
            shutil.copy(source, path)
    return root / "nvidia"


def test_only_the_libraries_ctranslate2_opens_are_found_package_by_package(tmp_path: Path) -> None:
    nvidia = _tree(
        tmp_path,
        {
            "cudnn/lib/libcudnn.so.9": None,
            "cudnn/lib/libcudnn_graph.so.9": None,
            "cublas/lib/libcublas.so.12": None,
            "cublas/lib/libcublasLt.so.12": None,
            "cublas/lib/libnvblas.so.12": None,
            "cublas/include/cublas.h": None,
            "nccl/lib/libnccl.so.2": None,
        },
    )
    folders = wheel_library_dirs([nvidia])
    assert [f.parent.name for f in folders] == ["cublas", "cudnn"]
    names = [p.name for p in libraries(folders)]
    assert names == ["libcublas.so.12", "libcublasLt.so.12", "libcudnn.so.9", "libcudnn_graph.so.9"]


@pytest.mark.skipif(not REAL_LIBRARY.exists(), reason="needs a shared library to load")
def test_what_loads_is_loaded_and_what_does_not_is_left_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nvidia = _tree(tmp_path, {"cublas/lib/libcublas.so.12": REAL_LIBRARY, "cudnn/lib/libcudnn.so.9": None})
    with caplog.at_level(logging.INFO, logger="processors.cuda"):
        loaded = preload_cuda_libraries([nvidia])
    assert loaded == ["libcublas.so.12"]
    assert "could not load libcudnn.so.9" in caplog.text


def test_without_the_wheels_nothing_is_loaded(tmp_path: Path) -> None:
    assert preload_cuda_libraries([tmp_path]) == []
