"""CUDA 12 libraries for CTranslate2 on a GPU worker.

CTranslate2's wheels are built against CUDA 12: at its first GPU call it opens `libcublas.so.12` and
`libcublasLt.so.12`, and cuDNN 9, by name. A GPU worker's image rarely has them where the dynamic loader looks: the
`gpu` extra installs NVIDIA's CUDA 12 wheels (`nvidia-cublas-cu12`, `nvidia-cudnn-cu12`) under
`site-packages/nvidia/*/lib`, which is on no search path, and a host image may carry another CUDA (an H100 image
measured for this project had CUDA 13 only, and the first encode failed with "Library libcublas.so.12 is not found
or cannot be loaded"). Loading the wheels' libraries by path, into the global namespace, before the model is built
makes CTranslate2's later lookups by name find them: the loader matches a library already loaded by its soname.

Libraries found elsewhere (`LD_LIBRARY_PATH`, a CUDA 12 base image) still work: nothing is loaded when the wheels
are absent, and a library that fails to load here is left to CTranslate2's own lookup.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGES = ("cuda_runtime", "cublas", "cudnn")
"""Folders of the `nvidia` namespace package, in dependency order (cuBLAS needs the runtime; cuDNN needs cuBLAS)."""
MAJOR = {"cuda_runtime": ".so.12", "cublas": ".so.12", "cudnn": ".so.9"}
NAMES = ("libcudart", "libcublas", "libcudnn")
"""What CTranslate2 opens; not NVBLAS (in the cuBLAS wheel), which would take over BLAS calls if loaded globally."""


def wheel_library_dirs(roots: Iterable[Path] | None = None) -> list[Path]:
    """`nvidia/<package>/lib` folders of the installed NVIDIA wheels, in `PACKAGES` order."""
    if roots is None:
        spec = importlib.util.find_spec("nvidia")
        roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    out = []
    for package in PACKAGES:
        for root in roots:
            folder = root / package / "lib"
            if folder.is_dir():
                out.append(folder)
    return out


def libraries(folders: Sequence[Path]) -> list[Path]:
    """The CUDA 12 / cuDNN 9 shared libraries in `folders`, folder by folder (the order within one is left to the
    loader's retries)."""
    found = []
    for folder in folders:
        suffix = MAJOR.get(folder.parent.name, ".so")
        found += sorted(p for p in folder.iterdir() if p.name.endswith(suffix) and p.name.startswith(NAMES))
    return found


def preload_cuda_libraries(roots: Iterable[Path] | None = None) -> list[str]:
    """Load the NVIDIA wheels' libraries globally; returns the names loaded. Libraries that need one loaded later
    (cuDNN's parts depend on each other) are retried until a pass loads nothing new."""
    pending = libraries(wheel_library_dirs(roots))
    loaded: list[str] = []
    errors: dict[str, str] = {}
    while pending:
        left = []
        for path in pending:
            try:
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            except OSError as e:
                errors[path.name] = str(e)
                left.append(path)
            else:
                loaded.append(path.name)
        if len(left) == len(pending):
            break
        pending = left
    if loaded:
        log.info("loaded CUDA libraries from the NVIDIA wheels: %s", ", ".join(loaded))
    for path in pending:
        log.warning("could not load %s (CTranslate2 will look for it itself): %s", path.name, errors[path.name])
    return loaded
