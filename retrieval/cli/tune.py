"""``retrieval tune``: choose parameters by k-fold cross-validation over queries."""

from __future__ import annotations

import itertools
from pathlib import Path

from ..analysis import DEFAULT_STEMMER, DEFAULT_STOPWORDS, STEMMERS, STOPLISTS, Analyzer
from ..collections import COLLECTION_NAMES, FORMATS, load_collection
from ..errors import ParameterError
from ..estimation import cached_mu_estimate
from ..evaluation import Qrels, Run, evaluate
from ..evaluation.measures import parse_measure
from ..feedback import FEEDBACK, make_feedback
from ..search import Searcher
from ..smoothing import DEFAULT_MODEL, MODELS, model_name_for, make_model, with_length_prior
from ..twostage import TwoStageEM
from ..tuning import cross_validate
from ._common import (dump_json, format_table, make_parser, positive_int, run,
                      warn_missing_judged)

DESCRIPTION = f"""\
Run every configuration of a parameter grid on a test collection, then choose the
parameters by k-fold cross-validation over its judged queries: for each fold the
configuration with the best mean on the other folds is evaluated on the held-out fold.
Prints every configuration's mean, the cross-validated score next to the best-on-test
score (the best configuration chosen by looking at all queries: optimistic), and the
configuration chosen on each fold.

collections: {', '.join(COLLECTION_NAMES)}, an ir_datasets id as irds:ID (irds:cranfield;
read from ir_datasets' local copy, never downloaded), or a path with --format
({', '.join(FORMATS)}).

grid: --grid NAME=V1,V2,... (repeatable); NAME is a parameter of --model (mu, lam,
delta, omega, mass, mu_scale; mu may be 'auto'; two-stage's lam may be 'auto': λ per
query by EM), length_prior (the document-length prior β·log|d|, any model) or of
--feedback (fb_docs, fb_terms, fb_alpha, fb_lambda,
fb_iterations, fb_tol, fb_threshold, fb_orig_weight, fb_mu, fb_doc_weights, fb_max_df).
Configurations are the Cartesian product, in the order given; equal training means are
won by the configuration listed first, so list the default value first.

example: retrieval tune cranfield --model dirichlet --grid mu=1000,500,2000 \\
             --feedback rm3 --grid fb_terms=10,20 --folds 5 --measure AP
"""

_INT_PARAMS = {"fb_docs", "fb_terms", "fb_iterations"}
_STR_PARAMS = {"fb_doc_weights"}


def build_parser():
    p = make_parser("tune", DESCRIPTION)
    p.add_argument("collection", metavar="COLLECTION")
    p.add_argument("--format", dest="collection_format", choices=FORMATS,
                   help="the format of a COLLECTION path (names need none)")
    p.add_argument("--model", choices=tuple(MODELS),
                   help=f"ranking model (default {DEFAULT_MODEL}; with --mu/--lam/--delta "
                        "and no --model: dirichlet, as before)")
    p.add_argument("--feedback", choices=tuple(FEEDBACK), default="none")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                   help="values to try for one parameter (repeat for more parameters)")
    p.add_argument("--folds", type=positive_int, default=5, help="folds (default 5)")
    p.add_argument("-m", "--measure", default="AP",
                   help="measure to optimise, trec_eval name or ir_measures syntax (default AP)")
    p.add_argument("--seed", type=int, default=0, help="fold assignment seed (default 0)")
    p.add_argument("-k", type=positive_int, default=1000, help="results per query (1000)")
    p.add_argument("--stopwords", choices=STOPLISTS, default=DEFAULT_STOPWORDS)
    p.add_argument("--stemmer", choices=STEMMERS, default=DEFAULT_STEMMER)
    p.add_argument("--cache", metavar="DIR",
                   help="index cache (default $RETRIEVAL_CACHE or ~/.cache/retrieval)")
    p.add_argument("--no-cache", action="store_true", help="always build the index")
    p.add_argument("--json", action="store_true", help="print a JSON report, not tables")
    return p


def _parse_value(name: str, text: str):
    text = text.strip()
    if not text:
        raise ParameterError(f"--grid {name}: empty value; write e.g. {name}=1,2,3")
    if name in ("mu", "lam") and text.lower() == "auto":
        return "auto"
    if name in _STR_PARAMS:
        return text
    try:
        value = float(text)
    except ValueError:
        expect = "a number or 'auto'" if name in ("mu", "lam") else "a number"
        raise ParameterError(f"--grid {name}: expected {expect}, got {text!r}") from None
    if name in _INT_PARAMS:
        if value != int(value):
            raise ParameterError(f"--grid {name}: expected a whole number, got {text!r}")
        return int(value)
    return value


def parse_grid(specs: list[str], model: str, feedback: str) -> tuple[dict, dict]:
    """``--grid`` specs → ({model param: values}, {feedback param: values})."""
    model_params = MODELS[model].params + ("length_prior",)
    fb_params = FEEDBACK[feedback].params
    model_grid: dict[str, list] = {}
    fb_grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ParameterError(f"--grid {spec!r}: write NAME=V1,V2,... e.g. mu=500,1000")
        if name in model_params:
            target = model_grid
        elif name in fb_params:
            target = fb_grid
        else:
            takes = ", ".join(MODELS[model].params + fb_params + ("length_prior",))
            raise ParameterError(f"--grid {name} does not apply to --model {model}"
                                 + (f" --feedback {feedback}" if feedback != "none" else "")
                                 + f"; it takes {takes}")
        if name in target:
            raise ParameterError(f"--grid {name} is given twice; list all its values in "
                                 f"one --grid {name}=V1,V2")
        parsed = [_parse_value(name, v) for v in values.split(",")]
        if name == "lam" and "auto" in parsed and model != "two-stage":
            raise ParameterError(f"--grid lam=auto applies to --model two-stage (λ per "
                                 f"query by EM), not --model {model}")
        if len(set(parsed)) != len(parsed):
            raise ParameterError(f"--grid {name}: a value is repeated; list each once")
        target[name] = parsed
    return model_grid, fb_grid


def _product(grid: dict) -> list[dict]:
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*grid.values())]


def _label(params: dict) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items()) or "defaults"


def _main(args) -> int:
    measure = parse_measure(args.measure).name
    named = {spec.partition("=")[0].strip().replace("-", "_") for spec in args.grid}
    args.model = model_name_for(args.model, named & {p for m in MODELS.values()
                                                     for p in m.params})
    model_grid, fb_grid = parse_grid(args.grid, args.model, args.feedback)
    if args.seed < 0:
        raise ParameterError(f"--seed must be a whole number >= 0, got {args.seed}")
    if args.folds < 2:
        raise ParameterError(f"--folds must be at least 2, got {args.folds}")
    # validate every configuration before any work
    configs = []
    for mp in _product(model_grid):
        check = {k: (1000.0 if k == "mu" and v == "auto" else 0.5 if v == "auto" else v)
                 for k, v in mp.items()}
        with_length_prior(make_model(args.model, **{k: v for k, v in check.items()
                                                    if k != "length_prior"}),
                          check.get("length_prior"))
        if mp.get("lam") == "auto" and mp.get("length_prior"):
            raise ParameterError("--grid length_prior does not combine with lam=auto")
        for fp in _product(fb_grid):
            feedback = make_feedback(args.feedback, **fp)
            configs.append((mp, fp, feedback))
    if args.collection_format:
        collection = load_collection(Path(args.collection), format=args.collection_format)
    else:
        collection = load_collection(args.collection)
    warn_missing_judged("tune", collection)
    from ..benchmarking import cached_index, default_cache_dir
    cache = None if args.no_cache else Path(args.cache) if args.cache else default_cache_dir()
    index, _, _ = cached_index(collection, Analyzer(args.stopwords, args.stemmer), cache)
    qrels = Qrels.from_records(collection.qrels)
    queries = list(collection.queries)
    texts = [q.text for q in queries]
    table: dict[str, dict[str, float]] = {}
    labels = []
    for mp, fp, feedback in configs:
        params = dict(mp)
        prior = params.pop("length_prior", None)
        if params.get("mu") == "auto":
            params["mu"] = cached_mu_estimate(index).mu
        if params.get("lam") == "auto":  # a model per query: TwoStage(mu, λ̂_q)
            model = TwoStageEM(mu=params.get("mu", 1000.0))
            res = model.batch_search_arrays(index, texts, args.k, feedback=feedback)
        else:
            model = with_length_prior(make_model(args.model, index=index, **params), prior)
            res = feedback.batch_search_arrays(Searcher(index, model), texts, args.k)
        run_ = Run.from_arrays([queries[i].qid for i in res.query_index.tolist()],
                               index.docids.many(res.doc_numbers), res.scores)
        ev = evaluate(qrels, run_, [measure], complete=True)
        label = _label({**mp, **fp})
        labels.append((label, model.label(), feedback.label()))
        table[label] = {q: float(v) for q, v in ev.per_query[measure].items()}
    cv = cross_validate(table, args.folds, args.seed)

    if args.json:
        print(dump_json({
            "collection": collection.name, "model": args.model, "feedback": args.feedback,
            "measure": measure, "folds": cv.n_folds, "seed": cv.seed,
            "queries": len(cv.per_query),
            "configurations": [{"label": lab, "model": ml, "feedback": fl,
                                "mean": cv.config_means[lab]} for lab, ml, fl in labels],
            "cross_validated": cv.mean, "best_on_test": cv.best_mean,
            "best_on_test_label": cv.best_label,
            "fold_choices": [{"fold": f.fold, "label": f.label, "train_mean": f.train_mean,
                              "test_mean": f.test_mean, "queries": len(f.test_qids)}
                             for f in cv.folds],
            "per_query_cross_validated": cv.per_query,
        }))
        return 0
    fixed = f"--model {args.model}" + (f" --feedback {args.feedback}"
                                        if args.feedback != "none" else "")
    print(f"{collection.name}: {fixed}, {len(cv.per_query)} judged queries, "
          f"{cv.n_folds} folds (seed {cv.seed}), measure {measure}\n")
    rows = [(lab, cv.config_means[lab], "*" if lab == cv.best_label else "")
            for lab, _, _ in labels]
    print(format_table(("configuration", measure, "best"), rows, align="lrl"))
    print()
    print(format_table(
        ("score", measure, "how chosen"),
        [("cross-validated", cv.mean, "on the training folds, evaluated on held-out"),
         ("best on test", cv.best_mean, f"{cv.best_label} (looks at the test queries)"),
         ("gap", cv.best_mean - cv.mean, "optimism of tuning on the test queries")],
        align="lrl"))
    print()
    print(format_table(("fold", "queries", "chosen", f"train {measure}", f"test {measure}"),
                       [(f.fold + 1, len(f.test_qids), f.label, f.train_mean, f.test_mean)
                        for f in cv.folds], align="rrlrr"))
    return 0


def main(argv=None) -> int:
    return run("tune", build_parser(), _main, argv)
