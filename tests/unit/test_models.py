from pathlib import Path

import pytest

from processors.models import ModelNotAvailable, resolve_model


def test_bundled_base_is_assembled_once(tmp_path: Path) -> None:
    path = Path(resolve_model("base", tmp_path))
    model_bin = path / "model.bin"
    assert {"config.json", "tokenizer.json", "vocabulary.txt", "model.bin"} <= {p.name for p in path.iterdir()}
    assert model_bin.stat().st_size > 100_000_000
    mtime = model_bin.stat().st_mtime_ns
    assert resolve_model("base", tmp_path) == str(path)
    assert model_bin.stat().st_mtime_ns == mtime


def test_bundled_tiny_en_and_local_dirs(tmp_path: Path) -> None:
    tiny = Path(resolve_model("tiny.en", tmp_path))
    assert (tiny / "model.bin").is_file()
    assert resolve_model(str(tiny), tmp_path) == str(tiny)


def test_hub_names_pass_through_and_bad_paths_fail(tmp_path: Path) -> None:
    assert resolve_model("large-v3", tmp_path) == "large-v3"
    assert resolve_model("Systran/faster-whisper-large-v3", tmp_path) == "Systran/faster-whisper-large-v3"
    with pytest.raises(ModelNotAvailable):
        resolve_model(str(tmp_path / "missing"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailable):
        resolve_model(str(tmp_path / "empty"), tmp_path)
