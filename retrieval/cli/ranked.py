"""``retrieval search --field-weights`` and ``--collapse``: ranking by the field mixture
(:class:`~retrieval.search.fields.FieldSearcher`) and/or with identical documents
collapsed (:func:`~retrieval.duplicates.collapsed_search`), in the three output formats.

Formats with ``--collapse``: ``table`` shows ``docid (+N copies)``; ``json`` gives each
result ``copies`` (how many other documents have its text) and ``duplicates`` (their
ids); ``trec`` lists the representative of each group only, ranks renumbered 1, 2, ...
(the TREC run format has no place for a note; a run to evaluate against judgments of
every copy should be made without ``--collapse``).
"""

from __future__ import annotations

import re
import shutil
import sys

from ..duplicates import DuplicateGroups, collapsed_search
from ..errors import InputError, ParameterError
from ..fields import DEFAULT_FIELD_WEIGHTS, FieldWeights
from ..search import Searcher
from ..search.fields import FieldSearcher
from ..snippets import make_snippet
from ._common import dump_json, format_table

_SPACE = re.compile(r"\s")


def field_weights_arg(spec: str) -> FieldWeights:
    """``--field-weights``: ``default`` or ``name=weight`` pairs."""
    return DEFAULT_FIELD_WEIGHTS if spec.strip() == "default" else FieldWeights.parse(spec)


def make_searcher(args, index, model):
    if args.field_weights is None:
        return Searcher(index, model, unknown_terms=args.unknown_terms,
                        candidates=args.candidates)
    for flag, value, default in (("--unknown-terms", args.unknown_terms, "drop"),
                                 ("--candidates", args.candidates, "matching")):
        if value != default:
            raise ParameterError(f"{flag} {value} does not apply with --field-weights (the "
                                 f"field mixture drops unknown terms and scores matching "
                                 f"documents); leave {flag} out")
    return FieldSearcher(index, model, field_weights_arg(args.field_weights))


def main_ranked(args, index, model, feedback, queries) -> int:
    if feedback.name != "none" or args.explain:
        raise ParameterError("--feedback and --explain do not combine with --field-weights "
                             "or --collapse; leave one of them out")
    searcher = make_searcher(args, index, model)
    groups = DuplicateGroups(index) if args.collapse else None
    results = [collapsed_search(searcher, q.text, args.k, groups) if groups is not None
               else searcher.search(q.text, args.k) for q in queries]
    label = model.label() if model is not None else searcher.model_.label()
    if args.format == "json":
        payload = [{"qid": q.qid, "query": q.text, "model": label,
                    **({"field_weights": searcher.weights_._asdict()}
                       if isinstance(searcher, FieldSearcher) else {}),
                    "results": [_as_json(r) for r in res]}
                   for q, res in zip(queries, results)]
        print(dump_json(payload if args.queries else payload[0]))
    elif args.format == "trec":
        _write_trec(queries, results, args.tag)
    else:
        _write_table(args, index, searcher, queries, results)
    return 0


def _as_json(r) -> dict:
    out = r._asdict()
    if "duplicates" in out:
        out["duplicates"] = list(out["duplicates"])
    return out


def _write_trec(queries, results, tag: str) -> None:
    for what, value in [("run tag (--tag)", tag)] + [("query id", q.qid) for q in queries]:
        if not value or _SPACE.search(value):
            raise InputError(f"{what} {value!r} cannot be written in TREC format (it must "
                             f"be one word without white space); use --format json")
    for res in results:
        for r in res:
            if _SPACE.search(r.docid):
                raise InputError(f"document id {r.docid!r} contains white space and cannot "
                                 f"be written in TREC format; use --format json")
    for q, res in zip(queries, results):
        if not res:
            print(f"{q.qid}: no results", file=sys.stderr)
        sys.stdout.write("".join(f"{q.qid} Q0 {r.docid} {r.rank} {r.score!r} {tag}\n"
                                 for r in res))


def _write_table(args, index, searcher, queries, results) -> None:
    columns = shutil.get_terminal_size((120, 24)).columns
    for q, res in zip(queries, results):
        if args.queries:
            print(f"# {q.qid}: {q.text}")
        if not res:
            print("no results: none of the query terms occur in the index's weighted "
                  "fields" if isinstance(searcher, FieldSearcher) else "no results",
                  file=sys.stderr)
            continue
        terms = set(searcher.query_model(q.text).terms)
        names = [r.docid + (f" (+{r.copies} {'copy' if r.copies == 1 else 'copies'})"
                            if getattr(r, "copies", 0) else "") for r in res]
        room = max(40, columns - 25 - max(len(n) for n in names))
        rows = []
        for r, name in zip(res, names):
            row = [r.rank, f"{r.score:.4f}", name.encode("unicode_escape").decode("ascii")
                   if not name.isprintable() else name]
            if not args.no_snippets:
                text = index.text(index.doc_number(r.docid))
                row.append("" if text is None else
                           make_snippet(text, terms, index.analyzer, max_length=room))
            rows.append(row)
        headers = ["rank", "score", "docid"] + ([] if args.no_snippets else ["snippet"])
        print(format_table(headers, rows, align="rrll"))
