"""Shared test setup: lab tests need root; under CI a missing root fails instead of skipping."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    lab_items = [i for i in items if i.get_closest_marker("lab")]
    if not lab_items:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"{len(lab_items)} lab test(s) need root and CI=true forbids skipping them: run as root"
        )
    skip = pytest.mark.skip(reason="lab test: needs root (CAP_NET_ADMIN)")
    for item in lab_items:
        item.add_marker(skip)
