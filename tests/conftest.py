"""Session services: each is started by the first test that needs it and stopped at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.ports import free_port

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from tests.support.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from stack.broker import KafkaBroker, ensure_broker_jars

    libs = ensure_broker_jars(CACHE / "kafka")
    data = tmp_path_factory.mktemp("kafka")
    with KafkaBroker(libs_dir=libs, data_dir=data, port=free_port(), log_file=data / "kafka.log") as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """(host:port, access key, secret key) of a throw-away Ceph RGW."""
    from tests.support.rgw import CephRgw, ensure_rgw_installed

    ensure_rgw_installed()
    access, secret = "scribeflow-test", "scribeflow-test-secret"
    with CephRgw(workdir=tmp_path_factory.mktemp("rgw"), port=free_port(), access_key=access, secret_key=secret) as rgw:
        yield rgw.endpoint.removeprefix("http://"), access, secret


@pytest.fixture(scope="session")
def model_cache() -> Path:
    return CACHE / "models"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run (Debian's package; `make test` installs it). Its folder is not
    under pytest's, which only root may enter: the server runs as the `postgres` user."""
    import shutil
    import tempfile

    from tests.support.postgres import PostgresServer

    workdir = Path(tempfile.mkdtemp(prefix="scribeflow-postgres-"))
    try:
        with PostgresServer(workdir) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The API's database, migrated and empty: an SQLite file, and a fresh database on the real PostgreSQL."""
    from api.database import open_database

    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        url: str | None = server.new_database()
    else:
        url = None
    engine = open_database(url, tmp_path / "jobs.sqlite3")
    yield engine
    engine.dispose()
