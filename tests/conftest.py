"""Shared fixtures: an isolated home, settings, and a store on SQLite or PostgreSQL.

Which database a test gets: a test that uses ``database_url`` (through ``settings`` or
``store``) runs on SQLite, except

- tests marked ``both_databases`` (storage and durability: the store, leases, import records,
  migrations, crashes, concurrency), which run once on SQLite and once on PostgreSQL;
- tests marked ``postgres``, which run on PostgreSQL only.

A whole module is marked with ``pytestmark = pytest.mark.both_databases``.

With several test processes (``pytest -n N``, as ``make test`` runs them) each test goes to
whichever process is free, except the tests of the modules in ``IN_ORDER_MODULES``, which run
one after the other in one process (their steps build on one shared state). Tests marked
``slow`` are started first, so that the last minutes are not spent waiting for one of them.
Services started once (``mail_server``, session-scoped) are started once per process. Each
process starts servers on loopback ports of its own share (``pytest_configure``).

The services the integration tests and the contract suite share are here: Dovecot with its
identity provider (``mail_server``, once per process), the sandbox tenant of the OAuth tests
(``certificate``, ``idp``) and the Graph emulator on it (``emulator``; for one test
``graph``: no faults, counts at zero), once per module, which may change the tenant's users
and apps; a webhook receiver (``receiver``) for one test.

Migrations run once per test process: the ``store`` fixture starts from a copy of a migrated
SQLite file, or, on PostgreSQL, from a fresh schema given the statements the migrations ran
once (``settings`` alone gives an empty database, for the tests of migrations themselves).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store.db import create_db_engine, migrate
from mailintake.store.repo import Store
from sandbox import ports
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.dovecot import mail_server
from tests.support.http_receiver import WebhookReceiver, webhook_receiver
from tests.support.oauth import Certificate, build_idp, make_certificate
from tests.support.services import service_missing

__all__ = ["mail_server"]  # a fixture

POSTGRES_URL = os.environ.get(
    "MAILINTAKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Modules whose tests are steps of one story on a shared module-scoped state.
IN_ORDER_MODULES = frozenset({"tests/e2e/test_web_admin.py"})


def pytest_configure(config: pytest.Config) -> None:
    """Each test process hands out loopback ports from its own share of the range
    (sandbox.ports), so that two processes never start servers on the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker.startswith("gw") and worker[2:].isdigit() and int(worker[2:]) < workers:
        ports.use_share(int(worker[2:]), workers)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The databases a test runs on (see the module's docstring)."""
    if "database_url" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        if "database_url" in str(mark.args[0]).replace(" ", "").split(","):
            return  # the test chose its databases itself
    if metafunc.definition.get_closest_marker("both_databases"):
        databases = ["sqlite", "postgresql"]
    elif metafunc.definition.get_closest_marker("postgres"):
        databases = ["postgresql"]
    else:
        databases = ["sqlite"]
    metafunc.parametrize("database_url", databases, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first, those of modules with fewest of them (the longest: a worker
    fleet's half minute) before a long series (the crash tests); within a module, the cases
    of its test functions taken in turn (the first case of each, then the second…), modules
    and functions otherwise in their order. The test processes take tests in this order, and
    the cases of one function are alike: the ten of a webhook that hangs all wait, and run
    side by side they left both cores idle; in turn, they run beside cases that work.

    Property tests (hypothesis) run without coverage's tracer, like the tests marked
    ``no_cover`` (pytest-cov): they run the same lines hundreds of times, which the tracer
    makes twice as slow, and a line that only they reach shows as missed in the report, so
    that another test is written for it."""
    seen: dict[tuple[str, str], int] = {}  # cases of each module's function so far
    turn: dict[str, int] = {}  # a test's case number within its function
    place: dict[str, int] = {}  # a module's rank
    slow: dict[str, int] = {}  # a module's slow tests: few are long ones, many a series
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.no_cover)
        module = item.nodeid.split("::", 1)[0]
        place.setdefault(module, len(place))
        function = (module, getattr(item, "originalname", item.name))
        turn[item.nodeid] = 0 if module in IN_ORDER_MODULES else seen.get(function, 0)
        seen[function] = seen.get(function, 0) + 1
        if item.get_closest_marker("slow") is not None:
            slow[module] = slow.get(module, 0) + 1

    def order(item: pytest.Item) -> tuple[bool, int, int, int]:
        module = item.nodeid.split("::", 1)[0]
        first = item.get_closest_marker("slow") is not None
        return not first, slow[module] if first else 0, place[module], turn[item.nodeid]

    items.sort(key=order)  # stable: functions keep their order within a turn


@pytest.hookimpl(optionalhook=True)  # no such hook without xdist (compile-tests.sh)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's scheduling by scope, where a test is its own scope unless its module is
    one of ``IN_ORDER_MODULES``. (``--dist loadgroup`` would read ``xdist_group`` marks, but
    cannot rename the tests it groups under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in IN_ORDER_MODULES else nodeid

    return Scheduling(config, log)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    for name in ("MAILINTAKE_HOME", "MAILINTAKE_DATABASE_URL", "MAILINTAKE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAILINTAKE_HOME", str(home))
    return home


def _schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        service_missing(f"PostgreSQL at {POSTGRES_URL}: {exc.orig}")
    try:
        yield _schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, home: Path) -> str:
    """SQLite in the home, or PostgreSQL in a schema of its own (see pytest_generate_tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{home / 'mailintake.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAILINTAKE_DATABASE_URL", database_url)
    return Settings(home=home, database_url=database_url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest revision, once per test process."""
    path = tmp_path_factory.mktemp("template") / "mailintake.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        migrate(engine)
    finally:
        engine.dispose()  # the last connection checkpoints the write-ahead log into the file
    return path


Statement = tuple[str, Any, bool]  # SQL, parameters, executemany


@pytest.fixture(scope="session")
def postgres_template() -> list[Statement]:
    """The statements the migrations run on an empty PostgreSQL schema, recorded once per
    test process (in a schema dropped afterwards) to be run again in each test's schema."""
    schema = f"template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        service_missing(f"PostgreSQL at {POSTGRES_URL}: {exc.orig}")
    recorded: list[Statement] = []
    engine = create_db_engine(_schema_url(schema))

    def record(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        recorded.append((statement, parameters, many))

    try:
        event.listen(engine, "before_cursor_execute", record)
        migrate(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    assert all(schema not in statement for statement, _, _ in recorded), "schema named in SQL"
    return recorded


def _replay(url: str, statements: list[Statement]) -> None:
    engine: Engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cursor = conn.connection.cursor()
            for statement, parameters, many in statements:
                if many:
                    cursor.executemany(statement, parameters)
                else:
                    cursor.execute(statement, parameters)
    finally:
        engine.dispose()


@pytest.fixture
def store(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The settings' database at the newest revision (from the process's template) and open."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    elif url.get_backend_name() == "postgresql":
        _replay(settings.resolved_database_url, request.getfixturevalue("postgres_template"))
    store = open_store(settings)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """The certificate of the tenant's certificate application (CERT_APP)."""
    return make_certificate(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def idp(certificate: Certificate) -> Iterator[IdentityProvider]:
    """The sandbox tenant of tests.support.oauth, serving on a loopback port."""
    provider = build_idp(certificate)
    with provider.serve():
        yield provider


@pytest.fixture(scope="module")
def emulator(idp: IdentityProvider) -> Iterator[GraphEmulator]:
    """The Graph emulator on the module's tenant, serving (``graph``: for one test)."""
    server = GraphEmulator(idp)
    with server.serve():
        yield server


@pytest.fixture
def graph(emulator: GraphEmulator) -> Iterator[GraphEmulator]:
    """The module's Graph emulator with no faults set and its counts at zero."""
    emulator.faults.reset()
    emulator.reset_stats()
    yield emulator
    emulator.faults.reset()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver that refuses the first two tries of each message (503)."""
    with webhook_receiver() as started:
        yield started
