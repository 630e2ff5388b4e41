"""Shared fixtures: a real Mosquitto broker with mutual TLS, PKI, data dirs, leak checks."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from rig.broker import MosquittoBroker, RigPki
from rig.postgres import PostgresCluster, PostgresError, find_pg_binary

# CI profile: deterministic (derandomised, printed seeds via --hypothesis-seed), more examples.
settings.register_profile(
    "ci",
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session")
def rig_pki(tmp_path_factory: pytest.TempPathFactory) -> RigPki:
    """A region CA with a broker certificate; ``rig_pki.client(name)`` issues client certs."""
    return RigPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def broker(rig_pki: RigPki, tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running Mosquitto (TLS 1.3, client certs, ACL) on a free port; can stop/restart.

    Fails loudly (never skips) when mosquitto is missing: `make test` installs it.
    """
    instance = MosquittoBroker(rig_pki, tmp_path / "broker")
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


#: Database numbers within this worker's cluster (names stay under PostgreSQL's 63 bytes).
_DATABASES = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster (Debian's ``postgresql``) on a unix socket, for the tests.

    Fails loudly under CI (``CI=true``: `make test` installs it); skips with the install hint
    on a developer machine without it.
    """
    try:
        find_pg_binary("initdb")
    except PostgresError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    # fsync off: these tests kill processes, not the power (the benchmarks keep it on).
    with PostgresCluster(durable=False) as cluster:
        yield cluster


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster, request: pytest.FixtureRequest) -> str:
    """A fresh database of the session's cluster, as a ``postgresql://`` URL."""
    slug = "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:40]
    return postgres_cluster.create_database(f"t{next(_DATABASES)}_{slug}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh data directory for a hub or a receiver."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves asyncio tasks running on its event loop."""
    yield
    current = asyncio.current_task()
    # Give tasks cancelled at the end of the test one loop turn to finish.
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leaked:
        task.cancel()
    assert not leaked, f"leaked tasks: {[t.get_name() for t in leaked]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every coroutine test gets the leaked-task check."""
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.add_marker(pytest.mark.usefixtures("_no_leaked_tasks"))
