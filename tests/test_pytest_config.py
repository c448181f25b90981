"""The suite's own strictness (pyproject's [tool.pytest.ini_options]): a warning raised in a
test is an error, and an xfail that passes fails the run."""

from __future__ import annotations

import warnings

import pytest


def test_a_warning_is_an_error() -> None:
    with pytest.raises(DeprecationWarning, match="fix it at its source"):
        warnings.warn("fix it at its source", DeprecationWarning, stacklevel=1)


def test_an_xfail_that_passes_fails(request: pytest.FixtureRequest) -> None:
    assert request.config.getini("xfail_strict") is True
