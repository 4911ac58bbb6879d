"""The embedded platform the end-to-end tests run against: one per test module."""

from collections.abc import Iterator

import pytest

from shared.platform.embedded import EmbeddedPlatform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPlatform]:
    running = EmbeddedPlatform(tmp_path_factory.mktemp("platform"))
    running.start()
    yield running
    running.stop(storage_timeout=3.0)  # the data is thrown away: no need to wait for SeaweedFS's drain
