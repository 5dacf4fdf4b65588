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
