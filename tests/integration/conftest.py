"""Fixtures shared by the integration tests of one kind of service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.s3server import S3Server, running_s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A moto S3 server on loopback with an empty bucket, for the module's tests."""
    with running_s3_server() as server:
        yield server


@pytest.fixture()
def sent(services: Any) -> Iterator[list[int]]:
    """The task instance ids dispatched while the test runs (nothing reaches a broker)."""
    ids: list[int] = []
    real = services.runs.dispatch
    services.set_dispatch(ids.extend)
    yield ids
    services.set_dispatch(real)
