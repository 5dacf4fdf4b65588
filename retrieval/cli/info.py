"""``retrieval info``: an index's manifest and statistics."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from ..index import Index
from ._common import dump_json, make_parser, run


def kernel_status() -> dict:
    """Whether the compiled (numba) search kernels can run here, without importing numba
    (a ~0.5 s import): ``{"numba": version or None, "disabled": RETRIEVAL_KERNELS=0,
    "available": bool}``."""
    version = None
    if importlib.util.find_spec("numba") is not None:
        try:
            version = importlib.metadata.version("numba")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown version"
    disabled = os.environ.get("RETRIEVAL_KERNELS", "1").strip() == "0"
    return {"numba": version, "disabled": disabled,
            "available": version is not None and not disabled}


def search_path_used() -> str:
    """Which path the searches of this process ran: ``"compiled"`` when the numba
    kernels were loaded (a searcher uses them once loaded), else ``"numpy"``."""
    from ..search import kernels_loaded
    return "compiled" if kernels_loaded() else "numpy"


def search_path_text(num_docs: int) -> str:
    """One line saying which search path an index of ``num_docs`` documents gets."""
    status = kernel_status()
    if status["disabled"]:
        return "numpy paths (compiled kernels disabled by RETRIEVAL_KERNELS=0)"
    if not status["available"]:
        return ("numpy paths (numba is not installed; pip install numba for the compiled "
                "kernels, about 4x faster)")
    from ..search import DEFAULT_THRESHOLDS
    auto_docs = DEFAULT_THRESHOLDS.kernel_min_docs
    where = (f"used at once ({num_docs:,} documents >= {auto_docs:,})"
             if num_docs >= auto_docs else
             f"numpy paths first ({num_docs:,} documents < {auto_docs:,}), "
             f"compiled after {DEFAULT_THRESHOLDS.kernel_batch_min_postings:,} postings "
             "searched by one searcher")
    return f"compiled numba kernels available (numba {status['numba']}): {where}"


def build_parser():
    p = make_parser("info", "Print an index's manifest and statistics.")
    p.add_argument("index", metavar="INDEX")
    p.add_argument("--format", choices=("table", "json"), default="table")
    return p


def _main(args) -> int:
    index = Index.open(args.index)
    manifest = {k: v for k, v in index.manifest.items() if k != "arrays"}
    stats = index.statistics()
    if args.format == "json":
        print(dump_json({"manifest": manifest, "statistics": stats,
                         "arrays": index.manifest.get("arrays", {}),
                         "search_path": {**kernel_status(),
                                         "text": search_path_text(index.num_docs)}}))
        return 0
    print(f"index      {index.path}")
    print(f"format     {manifest['format']} v{manifest['format_version']} "
          f"(written by retrieval {manifest.get('package_version')}, {manifest.get('created')})")
    a = manifest["analyzer"]
    print(f"analyzer   tokenizer={a['tokenizer']} stopwords={a['stopwords']} "
          f"stemmer={a['stemmer']}")
    print(f"text       {'stored' if manifest.get('store_text') else 'not stored'}")
    print(f"search     {search_path_text(index.num_docs)}")
    for src in manifest.get("sources", []):
        print(f"source     {src}")
    for key, value in stats.items():
        label = key.replace("_", " ")
        shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        print(f"{label:<24} {shown}")
    skipped = manifest.get("read_stats", {}).get("skipped", {})
    if skipped:
        print("skipped files            " + ", ".join(f"{n} {r}" for r, n in skipped.items()))
    return 0


def main(argv=None) -> int:
    return run("info", build_parser(), _main, argv)
