"""One Prefect test harness (a temporary local API and database) for every flow test."""

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API for the session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
