"""Session services: each is started by the first test that needs it and stopped at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import free_port

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
