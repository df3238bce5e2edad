"""The README's configuration table and docker-compose.yml name real settings, and every setting is documented."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from api.settings import ApiSettings
from processors.settings import WorkerSettings
from stack.settings import StackSettings

REPO = Path(__file__).resolve().parents[2]
PREFIX = "SCRIBEFLOW_"


def _env_names(model: type[BaseModel], prefix: str = PREFIX) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


KNOWN = _env_names(ApiSettings) | _env_names(WorkerSettings) | _env_names(StackSettings)
CLIENT_SIDE = {"SCRIBEFLOW_API_KEY"}  # read by `scribeflow submit`, not a setting of any server process


def test_every_setting_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    missing = sorted(name for name in KNOWN if name not in readme and f"`__{name.rsplit('__', 1)[-1]}`" not in readme)
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_readme_names_only_real_settings() -> None:
    named = set(re.findall(r"SCRIBEFLOW_[A-Z0-9_]*[A-Z0-9]", (REPO / "README.md").read_text()))
    assert not named - KNOWN - CLIENT_SIDE


def test_compose_names_only_real_settings() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    named = {
        key
        for service in compose["services"].values()
        for key in (service.get("environment") or {})
        if key.startswith(PREFIX)
    }
    assert named and not named - KNOWN
    assert compose["services"]["worker"]["environment"]["SCRIBEFLOW_MODEL__NAME"] == "large-v3"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_compose_file_is_valid() -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        env={"S3_SECRET_KEY": "x", "POSTGRES_PASSWORD": "x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_launcher_starts_one_worker_per_core_on_cpu_and_keeps_what_is_set() -> None:
    from stack.settings import AUTO_WORKERS, worker_layout

    assert worker_layout(None, 0, "cpu", 2) == (2, 1), "one worker per core, one thread each"
    assert worker_layout(None, 0, "cpu", 1) == (1, 1)
    assert worker_layout(None, 0, "cpu", 16) == (AUTO_WORKERS, 16 // AUTO_WORKERS), "the cores shared out"
    assert worker_layout(None, 2, "cpu", 8) == (4, 2), "threads given: as many workers as they fill"
    assert worker_layout(None, 4, "cpu", 2) == (1, 4)
    assert worker_layout(None, 0, "cuda", 16) == (1, 0), "a GPU is shared by one worker's batches"
    assert worker_layout(None, 0, "auto", 16) == (1, 0)
    assert worker_layout(3, 0, "cpu", 2) == (3, 0), "workers given: as given"
    assert worker_layout(0, 0, "cpu", 2) == (0, 0), "no workers (an API-only stack)"
