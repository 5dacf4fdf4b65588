from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.paths import SAMPLE_CORPUS, collections_root


@pytest.fixture(scope="session")
def collections_dir() -> Path:
    """The shared test collections; the test is skipped (with the reason) when absent."""
    root = collections_root()
    if not (root / "README.md").is_file():
        pytest.skip(f"shared test collections not found at {root} "
                    f"(set RETRIEVAL_COLLECTIONS to the folder holding cranfield/, cisi/, ...)")
    return root


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped sample corpus (corpora/sample)."""
    if not (SAMPLE_CORPUS / "docs").is_dir():
        pytest.fail(f"the shipped sample corpus is missing at {SAMPLE_CORPUS}")
    return SAMPLE_CORPUS


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch usable from hypothesis tests (undone at the end of the module)."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
