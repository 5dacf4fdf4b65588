"""``retrieval search``: rank an index's documents for a query (or a file of queries)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys

import numpy as np

from ..errors import InputError, ParameterError
from ..feedback import DEFAULT_FEEDBACK, DOC_WEIGHTS, FEEDBACK, default_params, make_feedback
from ..index import Index
from ..records import Query
from ..results import columnar
from ..safeio import clamp_jobs, clip, read_input
from ..search import CANDIDATE_RULES, UNKNOWN_TERM_RULES, Searcher
from ..smoothing import (DEFAULT_MODEL, MODELS, SmoothingModel, make_model, model_name_for,
                         with_length_prior)
from ..snippets import make_snippet, snippet
from ..fields import DEFAULT_FIELD_WEIGHTS
from . import sharded
from ._common import dump_json, format_table, make_parser, number, positive_int, run

DESCRIPTION = """\
Rank documents by negative cross-entropy between the query model and each smoothed
document model, Σ_w p(w|q) log p(w|d), in nats (higher is better).

models and parameters (default: spud, chosen by leave-one-collection-out):
  dirichlet  --mu     (default 1000)
  jm         --lam    (default 0.5; the collection weight λ)
  ad         --delta  (default 0.7)
  two-stage  --mu --lam (defaults 1000, 0.5)
  dir+       --mu --delta (defaults 1000, 0.05; Dirichlet with Lv & Zhai's lower bound)
  spud       --omega --mass (default 0.8; the background DCM mass is estimated from
             the index unless --mass is given; Cummins et al.'s Pólya-urn model)
  dirichlet-avgdl  --mu-scale (default 1): Dirichlet with μ = scale × mean |d|
--mu auto estimates μ from the index by leave-one-out maximum likelihood.
--model two-stage --lam auto estimates λ for each query by EM (Zhai & Lafferty 2002)
and ranks each query with its own λ.
--length-prior BETA adds a document-length prior β·log|d| to any model's score.

pseudo-relevance feedback (--feedback; the query model is updated from the top
--fb-docs documents of a first pass, then the documents are ranked again):
  none       the query model unchanged
  mixture    model-based feedback, mixture model by EM (Zhai & Lafferty 2001)
             {mixture}
  divmin     model-based feedback, divergence minimisation (same paper)
             {divmin}
  rm3        relevance model interpolated with the query (Lavrenko & Croft 2001;
             the default: chosen by leave-one-collection-out)
             {rm3}
"""

_PARAM_FLAGS = {"mu": "--mu", "lam": "--lam", "delta": "--delta", "omega": "--omega",
                "mass": "--mass", "mu_scale": "--mu-scale"}
_FB_FLAGS = {"fb_docs": "--fb-docs", "fb_terms": "--fb-terms", "fb_alpha": "--fb-alpha",
             "fb_lambda": "--fb-lambda", "fb_iterations": "--fb-iterations",
             "fb_tol": "--fb-tol", "fb_threshold": "--fb-threshold",
             "fb_orig_weight": "--fb-orig-weight", "fb_mu": "--fb-mu",
             "fb_doc_weights": "--fb-doc-weights", "fb_max_df": "--fb-max-df"}


def _defaults_text(name: str) -> str:
    """The flags and default values of feedback method ``name``, wrapped for --help."""
    words = [f"{_FB_FLAGS[k]} {v:g}" if isinstance(v, float) else f"{_FB_FLAGS[k]} {v}"
             for k, v in default_params(name).items()]
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > 66:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    return "\n             ".join(lines + [line])


DESCRIPTION = DESCRIPTION.format(**{name: _defaults_text(name)
                                    for name in ("mixture", "divmin", "rm3")})
#: expanded query model terms shown by --explain in the table format
_EXPLAIN_TERMS = 20


def _number_or_auto(text: str):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") \
            from None


def mu_value(text: str):
    """``--mu``: a number, or ``auto`` (leave-one-out estimate)."""
    return _number_or_auto(text)


def lam_value(text: str):
    """``--lam``: a number, or ``auto`` (two-stage: λ per query by EM)."""
    return _number_or_auto(text)


def build_parser():
    p = make_parser("search", DESCRIPTION)
    p.add_argument("index", metavar="INDEX")
    p.add_argument("query", nargs="*", metavar="QUERY", help="query words")
    p.add_argument("--queries", metavar="FILE",
                   help="a TSV file of queries (qid<TAB>text per line) instead of QUERY")
    p.add_argument("-j", "--jobs", type=positive_int, default=1,
                   help="processes for a --queries batch (default 1)")
    p.add_argument("-k", type=positive_int, default=10, help="results per query (default 10)")
    p.add_argument("--model", choices=tuple(MODELS),
                   help=f"ranking model (default {DEFAULT_MODEL}; with --mu/--lam/--delta "
                        "and no --model: dirichlet, as before)")
    p.add_argument("--mu", type=mu_value,
                   help="Dirichlet prior μ, or 'auto' (leave-one-out estimate)")
    p.add_argument("--lam", type=lam_value,
                   help="Jelinek-Mercer / two-stage λ; two-stage: 'auto' estimates λ per "
                        "query by EM (Zhai & Lafferty 2002)")
    p.add_argument("--delta", type=number, help="absolute discount δ; Dir+'s lower bound δ")
    p.add_argument("--omega", type=number, help="spud: background weight ω (0.8)")
    p.add_argument("--mass", type=number,
                   help="spud: background DCM mass (default: estimated from the index)")
    p.add_argument("--mu-scale", type=number,
                   help="dirichlet-avgdl: μ as a multiple of the mean document length")
    p.add_argument("--length-prior", type=number, metavar="BETA",
                   help="add the document-length prior β·log|d| to any model (default: "
                        "none)")
    p.add_argument("--unknown-terms", choices=UNKNOWN_TERM_RULES, default="drop",
                   help="query terms absent from the index: drop them (default) or give "
                        "them p(w|C)=1/(2|C|) as Indri does")
    p.add_argument("--candidates", choices=CANDIDATE_RULES, default="matching",
                   help="score only documents with a query term (default) or all")
    fb = p.add_argument_group("feedback")
    fb.add_argument("--feedback", choices=tuple(FEEDBACK), default=None,
                    help=f"pseudo-relevance feedback method (default {DEFAULT_FEEDBACK}, "
                         "or none with --field-weights or --collapse; none turns it off)")
    fb.add_argument("--fb-docs", type=positive_int, help="feedback documents (defaults above)")
    fb.add_argument("--fb-terms", type=positive_int,
                    help="feedback terms kept")
    fb.add_argument("--fb-alpha", type=number,
                    help="mixture/divmin: weight α of the feedback model")
    fb.add_argument("--fb-lambda", type=number,
                    help="mixture/divmin: collection (noise) weight λ")
    fb.add_argument("--fb-iterations", type=positive_int,
                    help="mixture: EM iteration cap (50)")
    fb.add_argument("--fb-tol", type=number,
                    help="mixture: EM stops at this relative log-likelihood change (1e-6)")
    fb.add_argument("--fb-threshold", type=number,
                    help="mixture/divmin: drop feedback terms below this probability (0)")
    fb.add_argument("--fb-orig-weight", type=number,
                    help="rm3: weight of the original query")
    fb.add_argument("--fb-mu", type=number,
                    help="rm3: Dirichlet μ of P(w|D); 0 = maximum likelihood (0)")
    fb.add_argument("--fb-doc-weights", choices=DOC_WEIGHTS,
                    help="rm3: document weights P(Q|D), its per-term geometric mean, or "
                         "uniform")
    fb.add_argument("--fb-max-df", type=number,
                    help="rm3: ignore terms in more than this fraction of documents (1: none)")
    p.add_argument("--field-weights", metavar="SPEC",
                   help="rank by the mixture of field language models with these weights, "
                        "e.g. title=0.2,name=0.1,body=0.7, or 'default' "
                        f"({DEFAULT_FIELD_WEIGHTS.label()}); the index needs fields for "
                        "title/name weights")
    p.add_argument("--collapse", action="store_true",
                   help="show one of each group of documents with identical text, with "
                        "the number of copies it stands for")
    sharded.add_search_options(p)
    p.add_argument("--format", choices=("table", "json", "trec"), default="table")
    p.add_argument("--explain", action="store_true",
                   help="show each query term's contribution to each score (and the "
                        "expanded query model with --feedback)")
    p.add_argument("--no-snippets", action="store_true")
    p.add_argument("--tag", default="retrieval", help="run tag for --format trec")
    p.add_argument("--verbose", action="store_true",
                   help="say on stderr which search path ran (compiled numba kernels or "
                        "the numpy fallback)")
    return p


def model_from_args(args, index: Index | None = None):
    """The smoothing model of the flags; ``--mu auto`` needs ``index`` (without it a
    placeholder μ is used, to validate the other parameters early)."""
    params = {name: getattr(args, name) for name in _PARAM_FLAGS}
    args.model = model_name_for(args.model, [k for k, v in params.items() if v is not None])
    cls = MODELS[args.model]
    for name, value in params.items():
        if value is not None and name not in cls.params:
            takes = " and ".join(_PARAM_FLAGS[p] for p in cls.params)
            raise ParameterError(f"{_PARAM_FLAGS[name]} does not apply to --model "
                                 f"{args.model}; it takes {takes}")
    if params.get("mu") == "auto":
        from ..estimation import cached_mu_estimate   # only for --mu auto
        params["mu"] = cached_mu_estimate(index).mu if index is not None else 1000.0
    prior = getattr(args, "length_prior", None)
    if params.get("lam") == "auto":
        return _lambda_by_em(args.model, params, prior)
    return with_length_prior(make_model(args.model, index=index,
                                        **{k: v for k, v in params.items()
                                           if k in cls.params}), prior)


def _lambda_by_em(model: str, params: dict, prior):
    """``--model two-stage --lam auto``: :class:`retrieval.twostage.TwoStageEM`."""
    if model != "two-stage":
        raise ParameterError(f"--lam auto applies to --model two-stage (λ per query by "
                             f"EM), not --model {model}; give a number")
    if prior:
        raise ParameterError("--length-prior does not combine with --lam auto; leave one "
                             "of them out")
    from ..twostage import TwoStageEM
    return TwoStageEM(mu=params["mu"] if params.get("mu") is not None else 1000.0)


def feedback_from_args(args):
    """The feedback method of the flags; a flag of another method is an error."""
    params = {name: getattr(args, name, None) for name in _FB_FLAGS}
    if args.feedback is None:
        # the default feedback, except where the ranking takes none (the field mixture,
        # --collapse): there no feedback unless asked for
        plain = getattr(args, "field_weights", None) or getattr(args, "collapse", False)
        args.feedback = "none" if plain else DEFAULT_FEEDBACK
    cls = FEEDBACK[args.feedback]
    for name, value in params.items():
        if value is not None and name not in cls.params:
            if not cls.params:
                raise ParameterError(f"{_FB_FLAGS[name]} does not apply to --feedback "
                                     f"{args.feedback}; choose --feedback "
                                     f"{' or '.join(n for n in FEEDBACK if n != 'none')}")
            takes = ", ".join(_FB_FLAGS[p] for p in cls.params)
            raise ParameterError(f"{_FB_FLAGS[name]} does not apply to --feedback "
                                 f"{args.feedback}; it takes {takes}")
    try:
        return make_feedback(args.feedback,
                             **{k: v for k, v in params.items() if k in cls.params})
    except ParameterError as exc:  # name the flag, not the parameter
        message = str(exc)
        for name, flag in _FB_FLAGS.items():
            if message.startswith(name):
                message = flag + message[len(name):]
                break
        raise ParameterError(message) from None


def read_query_tsv(path: str) -> list[Query]:
    """The queries of a ``qid<TAB>text`` file (a regular file, size-capped: see
    :mod:`retrieval.safeio`). A file without queries is an error: nothing to search."""
    try:
        lines = read_input(path).decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=path) from None
    queries, seen = [], set()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        qid, sep, text = line.partition("\t")
        qid = qid.strip()
        if not sep or not qid:
            raise InputError("expected 'qid<TAB>query text'", path=path, line=lineno)
        if qid in seen:
            raise InputError(f"query id {qid!r} appears twice", path=path, line=lineno)
        seen.add(qid)
        queries.append(Query(qid, text.strip()))
    if not queries:
        raise InputError("no queries in the file (one 'qid<TAB>query text' per line); "
                         "nothing was searched", path=path)
    return queries


def _highlighter():
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return lambda word: f"\x1b[1;33m{word}\x1b[0m"
    return None


def _main(args) -> int:
    if args.queries and args.query:
        raise ParameterError("give either QUERY words or --queries FILE, not both")
    if not args.queries and not args.query:
        raise ParameterError("no query given; pass query words after INDEX or --queries FILE")
    if args.query and not any(word.strip() for word in args.query):
        raise ParameterError("the query is empty; pass query words after INDEX "
                             "(or --queries FILE)")
    model_from_args(args)  # parameter errors before the index is opened
    feedback = feedback_from_args(args)
    per_query = not isinstance(model_from_args(args), SmoothingModel)  # --lam auto
    if per_query and (sharded.is_sharded(args.index) or args.field_weights is not None
                      or args.collapse):
        raise ParameterError("--lam auto searches an unsharded index without "
                             "--field-weights/--collapse; give λ as a number")
    if sharded.is_sharded(args.index):
        return sharded.search_main(args, _queries_of(args), model_from_args(args), feedback)
    if args.scheduler or args.cluster:
        raise ParameterError(f"{args.index} is not a sharded index; --scheduler and "
                             f"--cluster search sharded indexes (retrieval index --shards N)")
    index = Index.open(args.index)
    model = model_from_args(args, index)
    queries = _queries_of(args)
    if args.field_weights is not None or args.collapse:
        from . import ranked   # the field mixture and --collapse only
        return ranked.main_ranked(args, index, model, feedback, queries)
    texts = [q.text for q in queries]
    if per_query:  # each query ranked by its own TwoStage(mu, λ̂_q)
        searchers = model.searchers(index, texts, unknown_terms=args.unknown_terms,
                                    candidates=args.candidates)
    else:
        searchers = [Searcher(index, model, unknown_terms=args.unknown_terms,
                              candidates=args.candidates)] * len(texts)
    searcher = searchers[0]
    jobs = clamp_jobs(args.jobs, work=len(queries))
    if jobs.clamped:
        print(jobs.note(), file=sys.stderr)
    args.jobs = jobs.jobs
    if args.format == "trec":  # no query models needed: the arrays go straight through
        if per_query:
            res = model.batch_search_arrays(index, texts, args.k, feedback=feedback,
                                            unknown_terms=args.unknown_terms,
                                            candidates=args.candidates)
        else:
            res = feedback.batch_search_arrays(searcher, texts, k=args.k, jobs=args.jobs)
        _write_trec(searcher, queries, res, args.tag)
        return 0
    if per_query:
        models = [feedback.expand(s, [t])[0] for s, t in zip(searchers, texts)]
        results = [columnar(s.batch_search_arrays([m], k=args.k), index, 1)[0]
                   for s, m in zip(searchers, models)]
    else:
        models = feedback.expand(searcher, texts)
        results = columnar(searcher.batch_search_arrays(models, k=args.k, jobs=args.jobs),
                           index, len(models))

    if args.format == "json":
        payload = []
        for q, qm, res, searcher in zip(queries, models, results, searchers):
            item = {"qid": q.qid, "query": q.text,
                    "model": searcher.model_.label() if per_query else model.label(),
                    "query_model": qm.as_dict(),
                    "results": [r._asdict() for r in res]}
            if not args.no_snippets:
                _add_snippets(index, searcher, q.text, item["results"])
            if feedback.name != "none":
                item["feedback"] = feedback.label()
                item["original_query_model"] = searcher.query_model(q.text).as_dict()
            if args.explain:
                item["explanations"] = [_explain_dict(searcher.explain(qm, r.docid))
                                        for r in res]
            payload.append(item)
        print(dump_json(payload if args.queries else payload[0]))
        return 0

    highlight = _highlighter()
    for q, qm, res, searcher in zip(queries, models, results, searchers):
        if args.queries:
            print(f"# {q.qid}: {q.text}")
        if per_query:
            print(f"# {searcher.model_.label()}")
        if args.explain and feedback.name != "none":
            _print_query_model(qm, feedback)
        if not res:
            print(_empty_message(searcher, q.text), file=sys.stderr)
            continue
        terms = set(searcher.query_model(q.text).terms)
        rows = []
        columns = shutil.get_terminal_size((120, 24)).columns
        room = max(40, columns - 25 - max(len(printable(r.docid)) for r in res))
        for r in res:
            row = [r.rank, f"{r.score:.4f}", printable(r.docid)]
            if not args.no_snippets:
                text = index.text(index.doc_number(r.docid))
                row.append("" if text is None else
                           make_snippet(text, terms, index.analyzer, highlight=highlight,
                                        max_length=room))
            rows.append(row)
        headers = ["rank", "score", "docid"] + ([] if args.no_snippets else ["snippet"])
        print(format_table(headers, rows, align="rrll"))
        if args.explain:
            for r in res:
                _print_explanation(searcher.explain(qm, r.docid))
    return 0


def _add_snippets(index, searcher, query: str, results: list[dict]) -> None:
    """Each result's snippet (``{"text", "matches"}``: the matched terms' character
    offsets in the text), when the index stores text."""
    terms = set(searcher.query_model(query).terms)
    for r in results:
        text = index.text(index.doc_number(r["docid"]))
        if text is not None:
            snip = snippet(text, terms, index.analyzer)
            r["snippet"] = {"text": snip.text, "matches": [list(m) for m in snip.matches]}


def _queries_of(args) -> list[Query]:
    if args.queries:
        return read_query_tsv(args.queries)
    return [Query("1", " ".join(args.query))]


def printable(text: str) -> str:
    """``text`` for a table: control characters (a newline in a file name...) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else
                   c.encode("unicode_escape").decode("ascii") for c in text)


_SPACE = re.compile(r"\s")


def _write_trec(searcher: Searcher, queries: list[Query], res, tag: str) -> None:
    """Print a TREC run ``qid Q0 docid rank score tag`` (scores as ``repr``: the shortest
    text that reads back to the same float64). Ids that would break the columns are
    refused before anything is printed (each distinct document checked once)."""
    for what, value in [("run tag (--tag)", tag)] + [("query id", q.qid) for q in queries]:
        if not value or _SPACE.search(value):
            raise InputError(f"{what} '{printable(value)}' cannot be written in TREC format "
                             f"(it must be one word without white space); use --format json")
    res = columnar(res, searcher.index, len(queries))
    for docid in res.docids.take(np.unique(res.doc_numbers, return_index=True)[1]).tolist():
        if _SPACE.search(docid):
            raise InputError(f"document id '{printable(docid)}' contains white space and "
                             f"cannot be written in TREC format; use --format json (or "
                             f"rename the file and index again)")
    ids, scores = res.docids.tolist(), res.scores.tolist()
    bounds = res.ptr.tolist()
    out = sys.stdout
    for j, q in enumerate(queries):
        s, e = bounds[j], bounds[j + 1]
        if s == e:
            print(f"{q.qid}: {_empty_message(searcher, q.text)}", file=sys.stderr)
            continue
        head = f"{q.qid} Q0 "
        out.write("".join([f"{head}{ids[i]} {i - s + 1} {scores[i]!r} {tag}\n"
                           for i in range(s, e)]))


def _print_query_model(qm, feedback) -> None:
    items = sorted(qm.as_dict().items(), key=lambda kv: (-kv[1], kv[0]))
    shown = items[:_EXPLAIN_TERMS]
    more = len(items) - len(shown)
    print(f"expanded query model ({feedback.label()}): {len(items)} terms, "
          f"total weight {qm.mass:.4f}" + (f"; top {len(shown)}:" if more else ":"))
    print(format_table(("term", "p(w|q)"), [(t, f"{w:.4f}") for t, w in shown],
                       align="lr"))
    print()


def _explain_dict(e) -> dict:
    return {"docid": e.docid, "score": e.score, "document_length": e.document_length,
            "distinct_terms": e.distinct_terms, "log_alpha": e.log_alpha,
            "terms": [t._asdict() for t in e.terms]}


def _print_explanation(e) -> None:
    print(f"\n{e.docid}: score {e.score:.6f} = Σ p(w|q)·log p(w|d)   "
          f"|d|={e.document_length} |d|_u={e.distinct_terms} log α_d={e.log_alpha:.6f}")
    rows = [(t.term, f"{t.query_weight:.4f}", t.count, f"{t.p_collection:.3e}",
             f"{t.p_document:.3e}", f"{t.contribution:.6f}") for t in e.terms]
    print(format_table(("term", "p(w|q)", "c(w,d)", "p(w|C)", "p(w|d)", "contribution"),
                       rows, align="lrrrrr"))


def _empty_message(searcher: Searcher, text: str) -> str:
    analyzer = searcher.index.analyzer
    terms = analyzer.analyze(text)
    if not terms:
        return (f"no results: the query {clip(text)!r} has no terms left after analysis "
                f"(only stop words or no letters/digits)")
    missing = sorted({t for t in terms if searcher.index.term_id(t) < 0})
    if len(missing) == len(set(terms)):
        shown = ", ".join(clip(t) for t in missing[:_MISSING_SHOWN])
        if len(missing) > _MISSING_SHOWN:
            shown += f", … ({len(missing):,} terms)"
        return f"no results: none of the query terms occur in the index ({shown})"
    return "no results"


#: unknown terms named in a "no results" message (each clipped to 60 characters)
_MISSING_SHOWN = 10


def _main_verbose(args) -> int:
    code = _main(args)
    if args.verbose:
        from .info import kernel_status, search_path_used
        used = search_path_used()
        status = kernel_status()
        print("search path: " + ("compiled numba kernels" if used == "compiled" else
              "numpy paths" + ("" if status["available"] else " (numba not installed)")),
              file=sys.stderr)
    return code


def main(argv=None) -> int:
    return run("search", build_parser(), _main_verbose, argv)
