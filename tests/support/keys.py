"""API keys made the way a user makes them: `scribeflow keys …` on the API's database."""

from __future__ import annotations

import os
import subprocess
import sys

from api import ApiSettings
from tests.support.stack import REPO, create_key


def _env(settings: ApiSettings) -> dict[str, str]:
    env = {**os.environ, "SCRIBEFLOW_DATABASE_PATH": str(settings.database_path)}
    if settings.database_url:
        env["SCRIBEFLOW_DATABASE_URL"] = settings.database_url
    return env


def cli(settings: ApiSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack.cli", "keys", *args], cwd=REPO, env=_env(settings), capture_output=True, text=True
    )


def new_key(settings: ApiSettings, name: str, *options: str) -> str:
    return create_key(_env(settings), name, *options)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
