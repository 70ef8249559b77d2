from __future__ import annotations

import pytest
from exchange_helpers import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()
