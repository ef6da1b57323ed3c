"""Root conftest: loads the real-server fixtures (tests/servers/, see docs/testing.md).

``tests/`` has no ``__init__.py``; pytest's default ``prepend`` import mode puts this folder on
``sys.path`` before importing this file, which makes the ``servers`` package importable both
from here and from any test module. Keep this file small: fixtures belong in plugins.
"""

from __future__ import annotations

import gc

import pytest

pytest_plugins = ["servers.fixtures"]


# CPython 3.11 before 3.11.8 (gh-106905) keeps one AST recursion counter per interpreter; a
# garbage collection that runs finalizers in the middle of pytest's assertion rewriting (every
# import, when PYTHONDONTWRITEBYTECODE is set) can trip "SystemError: AST constructor recursion
# depth mismatch". Integration tests leave cycles with finalizers (clients, event loops), so
# collect them at a quiet moment instead. Freezing what exists after collection (modules,
# classes) keeps each of those collections to a few milliseconds.
def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if item.get_closest_marker("integration") is not None:
        gc.collect()


def pytest_sessionfinish(session: pytest.Session) -> None:
    gc.collect()
