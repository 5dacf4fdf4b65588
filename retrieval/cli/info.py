"""``retrieval info``: an index's manifest and statistics."""

from __future__ import annotations

from ..index import Index
from ._common import dump_json, make_parser, run


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
                         "arrays": index.manifest.get("arrays", {})}))
        return 0
    print(f"index      {index.path}")
    print(f"format     {manifest['format']} v{manifest['format_version']} "
          f"(written by retrieval {manifest.get('package_version')}, {manifest.get('created')})")
    a = manifest["analyzer"]
    print(f"analyzer   tokenizer={a['tokenizer']} stopwords={a['stopwords']} "
          f"stemmer={a['stemmer']}")
    print(f"text       {'stored' if manifest.get('store_text') else 'not stored'}")
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
