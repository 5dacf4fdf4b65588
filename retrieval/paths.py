"""Where the package finds things outside itself."""

from __future__ import annotations

import os
from pathlib import Path

#: the checkout this package lives in (``retrieval/`` is directly below it)
REPO_ROOT = Path(__file__).resolve().parent.parent

#: the corpus the project writes and ships itself
SAMPLE_CORPUS = REPO_ROOT / "corpora" / "sample"


def collections_root() -> Path:
    """The folder holding the shared test collections.

    ``$RETRIEVAL_COLLECTIONS`` when set; otherwise ``../shared/collections`` beside
    the checkout (``REPO_ROOT.parent / "shared" / "collections"``).
    """
    env = os.environ.get("RETRIEVAL_COLLECTIONS")
    if env:
        return Path(env).expanduser()
    return REPO_ROOT.parent / "shared" / "collections"


def cache_dir() -> Path:
    """The package's cache folder: ``$RETRIEVAL_CACHE`` when set, else
    ``$XDG_CACHE_HOME/retrieval`` (``~/.cache/retrieval``).

    The one cache location: benchmark indexes (``indexes/``) and pruning bounds
    (``bounds/``) live below it. Nothing is created here; writers make their subfolder.
    """
    env = os.environ.get("RETRIEVAL_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "retrieval"
