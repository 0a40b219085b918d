"""Fixtures of the analysis tests: the seeded defaults (categories, prompt v1, rules).

Transactional tests flush the database, data migrations included: seed again before each test.
"""
from __future__ import annotations

import importlib

import pytest
from django.apps import apps


@pytest.fixture(autouse=True)
def _defaults(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("django_db") is None:
        return
    request.getfixturevalue("db" if not _transactional(request) else "transactional_db")
    importlib.import_module("analysis.migrations.0002_defaults").seed(apps, None)


def _transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
