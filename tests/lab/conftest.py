"""Lab fixtures: each builds a real lab under its own name and always tears it down."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import new_lab_name

from draas.lab.lab import Lab, LabSettings


@pytest.fixture(scope="module")
def bare_lab() -> Iterator[Lab]:
    """The bare topology (no services), shared by a module's tests."""
    lab = Lab(new_lab_name())
    try:
        lab.up(LabSettings(delay_ms=10.0, services=False))
        yield lab
    finally:
        lab.down()


@pytest.fixture
def lab_name() -> str:
    """A fresh lab name, so a test never touches a lab it did not make."""
    return new_lab_name()


@pytest.fixture(scope="module")
def full_lab() -> Iterator[Lab]:
    """The whole hybrid deployment (every service), shared by a module's tests."""
    lab = Lab(new_lab_name())
    try:
        result = lab.up(LabSettings(scheme="hybrid"))
        lab.run.update(test_up_result=result)
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def dns_lab() -> Iterator[Lab]:
    """The DNS-scheme deployment (no frontends), for tests that work on the sites' data."""
    lab = Lab(new_lab_name())
    try:
        lab.up(LabSettings(scheme="dns"))
        yield lab
    finally:
        lab.down()
