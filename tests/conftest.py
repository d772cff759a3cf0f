"""Session-scoped real servers, and fresh names for every test.

The broker, the database and the mail servers start once per session (starting them
costs seconds); each test gets its own topic prefix, database and mailbox users, so
tests never see each other's data.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devservers import DovecotServer, KafkaBroker, OAuthServer, SecantusServer, SmtpServer

pytest_plugins = ["tests.fixtures.pipeline", "tests.fixtures.api"]


def _need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.fail(f"{binary} is not installed: run `make deps` (make test does it)")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        yield broker


@pytest.fixture(scope="session")
def secantus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecantusServer]:
    with SecantusServer(tmp_path_factory.mktemp("secantus") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def oauth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    """An OAuth2 token and introspection endpoint; Dovecot and SMTP check tokens there."""
    with OAuthServer(tmp_path_factory.mktemp("oauth")) as server:
        yield server


@pytest.fixture(scope="session")
def dovecot(oauth: OAuthServer) -> Iterator[DovecotServer]:
    _need("dovecot")
    with DovecotServer(oauth2_introspection_url=oauth.introspection_url) as server:
        yield server


@pytest.fixture(scope="session")
def smtp(dovecot: DovecotServer) -> Iterator[SmtpServer]:
    with SmtpServer(dovecot) as server:
        yield server


@pytest.fixture
def unique() -> str:
    """A short name no other test uses."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
