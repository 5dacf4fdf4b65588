"""``retrieval benchmark``: index test collections, run a grid of configurations, evaluate."""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

from ..analysis import DEFAULT_STEMMER, DEFAULT_STOPWORDS, STEMMERS, STOPLISTS, Analyzer
from ..benchmarking import (DEFAULT_MEASURES, PR_MEASURES, Configuration, benchmark_collection,
                            default_cache_dir, model_grid, report_dict, run_records)
from ..collections import COLLECTION_NAMES, FORMATS, load_collection
from ..errors import ParameterError
from ..evaluation.measures import parse_measures
from ..feedback import DEFAULT_FEEDBACK, DOC_WEIGHTS, FEEDBACK, make_feedback
from ..tuning import cross_validate
from ..smoothing import DEFAULT_MODEL, MODELS, model_name_for, with_length_prior
from ..twostage import TwoStageEM
from .search import lam_value
from ..trec import write_run
from .ranked import field_weights_arg
from ._common import (Progress, format_table, make_parser, number, positive_int, run,
                      warn_missing_judged)

DESCRIPTION = f"""\
Index each collection (cached), run all its queries under every configuration of the
grid, evaluate with trec_eval semantics (judged queries that retrieve nothing count 0),
print a table, and write the runs (TREC format), a JSON report and PNG plots.

collections: {', '.join(COLLECTION_NAMES)} (found under $RETRIEVAL_COLLECTIONS), an
ir_datasets id as irds:ID (irds:cranfield, irds:beir/scifact/test; read from
ir_datasets' local copy, never downloaded), or a path with --format
({', '.join(FORMATS)}).

Several values for a parameter make a grid, e.g. --mu 500 1000 2000.
"""


def build_parser():
    p = make_parser("benchmark", DESCRIPTION)
    p.add_argument("collections", nargs="+", metavar="COLLECTION")
    p.add_argument("--format", dest="collection_format", choices=FORMATS,
                   help="the format of COLLECTION paths (names need none)")
    p.add_argument("--model", choices=tuple(MODELS),
                   help=f"ranking model (default {DEFAULT_MODEL}; with --mu/--lam/--delta "
                        "and no --model: dirichlet, as before)")
    p.add_argument("--mu", type=number, nargs="+", help="Dirichlet / two-stage μ values")
    p.add_argument("--lam", type=lam_value, nargs="+",
                   help="Jelinek-Mercer / two-stage λ values; two-stage: 'auto' (λ per "
                        "query by EM)")
    p.add_argument("--delta", type=number, nargs="+",
                   help="absolute discount δ values; Dir+'s lower bound δ values")
    p.add_argument("--omega", type=number, nargs="+", help="spud ω values")
    p.add_argument("--mass", type=number, nargs="+",
                   help="spud background DCM mass values (default: estimated per index)")
    p.add_argument("--mu-scale", type=number, nargs="+",
                   help="dirichlet-avgdl: μ as multiples of the mean document length")
    p.add_argument("--length-prior", type=number, nargs="+", metavar="BETA",
                   help="document-length prior β·log|d| values (0: none)")
    p.add_argument("--feedback", nargs="+", choices=tuple(FEEDBACK),
                   default=None,
                   help="pseudo-relevance feedback methods to compare (each at its defaults "
                        f"unless --fb-* values are given); default {DEFAULT_FEEDBACK}, "
                        "none turns it off")
    p.add_argument("--fb-docs", type=positive_int, nargs="+", help="feedback documents values")
    p.add_argument("--fb-terms", type=positive_int, nargs="+", help="feedback terms values")
    p.add_argument("--fb-alpha", type=number, nargs="+",
                   help="mixture/divmin: feedback model weight α values")
    p.add_argument("--fb-lambda", type=number, nargs="+",
                   help="mixture/divmin: collection (noise) weight λ values")
    p.add_argument("--fb-iterations", type=positive_int, nargs="+",
                   help="mixture: EM iteration cap values")
    p.add_argument("--fb-tol", type=number, nargs="+",
                   help="mixture: EM relative log-likelihood tolerance values")
    p.add_argument("--fb-threshold", type=number, nargs="+",
                   help="mixture/divmin: minimum feedback term probability values")
    p.add_argument("--fb-orig-weight", type=number, nargs="+",
                   help="rm3: original query weight values")
    p.add_argument("--fb-mu", type=number, nargs="+",
                   help="rm3: Dirichlet μ of P(w|D) values (0 = maximum likelihood)")
    p.add_argument("--fb-doc-weights", choices=DOC_WEIGHTS, nargs="+",
                   help="rm3: document weights (likelihood, geometric, uniform)")
    p.add_argument("--fb-max-df", type=number, nargs="+",
                   help="rm3: document-frequency cut values (1: none)")
    p.add_argument("--field-weights", nargs="+", metavar="SPEC",
                   help="also rank by the mixture of field language models with these "
                        "weights (title=0.15,name=0,body=0.85 or 'default'; several to "
                        "compare); collections with titles: cranfield, cisi, cacm")
    p.add_argument("--cv", type=positive_int, metavar="FOLDS",
                   help="also report the FOLDS-fold cross-validated score of the grid's "
                        "best configuration (chosen on training queries) next to the "
                        "best-on-test score, for the first measure")
    p.add_argument("--cv-seed", type=int, default=0, help="fold assignment seed (0)")
    p.add_argument("--stopwords", choices=STOPLISTS, default=DEFAULT_STOPWORDS)
    p.add_argument("--stemmer", choices=STEMMERS, default=DEFAULT_STEMMER)
    p.add_argument("-k", type=positive_int, default=1000, help="results per query (1000)")
    p.add_argument("-m", "--measures", "--measure", dest="measures", action="extend",
                   nargs="+", default=None, metavar="MEASURE",
                   help="measures to report: several after one -m, -m repeated, or "
                        "comma-separated; trec_eval names or ir_measures syntax "
                        "(default: " + " ".join(DEFAULT_MEASURES) + ")")
    p.add_argument("-o", "--output", default="results/benchmark", metavar="DIR",
                   help="where runs, report.json and plots go (default results/benchmark)")
    p.add_argument("--cache", metavar="DIR",
                   help="index cache (default $RETRIEVAL_CACHE or ~/.cache/retrieval)")
    p.add_argument("--no-cache", action="store_true", help="always build the indexes")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--json", action="store_true", help="print the JSON report, not tables")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def configurations_from_args(args) -> list[Configuration]:
    values = {"mu": args.mu, "lam": args.lam, "delta": args.delta, "omega": args.omega,
              "mass": args.mass, "mu_scale": args.mu_scale}
    args.model = model_name_for(args.model, [k for k, v in values.items() if v])
    cls = MODELS[args.model]
    for name, given in values.items():
        if given and name not in cls.params:
            takes = " and ".join(f"--{p}" for p in cls.params)
            raise ParameterError(f"--{name.replace('_', '-')} does not apply to --model "
                                 f"{args.model}; "
                                 f"it takes {takes}")
    models = _models(args.model, values, args.length_prior)
    if not args.field_weights:
        return [Configuration(m, f) for f in feedback_grid(args) for m in models]
    # the field mixture ranks without feedback: --feedback defaults to none with it
    if args.feedback is None:
        args.feedback = ["none"]
    if any(f is not None for f in feedback_grid(args)):
        raise ParameterError("--field-weights does not combine with --feedback; leave one "
                             "of them out")
    if any(isinstance(m, TwoStageEM) for m in models):
        raise ParameterError("--lam auto does not combine with --field-weights; give λ "
                             "as a number")
    weights = [field_weights_arg(spec) for spec in args.field_weights]
    return [Configuration(m, None, w) for w in weights for m in models]


def _models(model: str, values: dict, priors) -> list:
    """The model grid, with ``--lam auto`` (two-stage: :class:`TwoStageEM` for each μ)
    and each ``--length-prior`` β."""
    lams = values.get("lam") or []
    auto = "auto" in lams
    if auto and model != "two-stage":
        raise ParameterError(f"--lam auto applies to --model two-stage (λ per query by EM), "
                             f"not --model {model}")
    values = {**values, "lam": [v for v in lams if v != "auto"] or None}
    models = model_grid(model, values) if not auto or values["lam"] else []
    if auto and priors and any(priors):
        raise ParameterError("--length-prior does not combine with --lam auto")
    models = [with_length_prior(m, b) for b in (priors or [None]) for m in models]
    return models + ([TwoStageEM(mu=mu) for mu in values.get("mu") or [1000.0]]
                     if auto else [])


#: feedback parameters with a benchmark flag (each takes several values)
FB_PARAMS = ("fb_docs", "fb_terms", "fb_alpha", "fb_lambda", "fb_iterations", "fb_tol",
             "fb_threshold", "fb_orig_weight", "fb_mu", "fb_doc_weights", "fb_max_df")


def feedback_grid(args) -> list:
    """Every feedback configuration of the flags: for each --feedback method, the
    product of the values of the flags it takes (a flag no chosen method takes is an
    error, as in ``search``)."""
    given = {p: getattr(args, p, None) for p in FB_PARAMS if getattr(args, p, None)}
    methods = list(dict.fromkeys(args.feedback or [DEFAULT_FEEDBACK]))
    for name in given:
        if not any(name in FEEDBACK[m].params for m in methods):
            flag = "--" + name.replace("_", "-")
            users = [m for m in FEEDBACK if name in FEEDBACK[m].params]
            raise ParameterError(f"{flag} does not apply to --feedback "
                                 f"{' '.join(methods)}; it is a parameter of "
                                 f"{' and '.join(users)}")
    feedbacks: list = []
    for name in methods:
        if name == "none":
            feedbacks.append(None)
            continue
        names = [p for p in FEEDBACK[name].params if p in given]
        for combo in itertools.product(*(given[p] for p in names)):
            feedbacks.append(make_feedback(name, **dict(zip(names, combo))))
    return feedbacks


def _load(args, name):
    if args.collection_format:
        return load_collection(Path(name), format=args.collection_format)
    return load_collection(name)


def _main(args) -> int:
    measures = [m.name for m in parse_measures(args.measures or list(DEFAULT_MEASURES))]
    configs = configurations_from_args(args)
    analyzer = Analyzer(args.stopwords, args.stemmer)
    cache = None if args.no_cache else Path(args.cache) if args.cache else default_cache_dir()
    out = Path(args.output)
    eval_measures = list(dict.fromkeys(measures + list(PR_MEASURES)))
    collections = [_load(args, name) for name in args.collections]
    for coll in collections:
        warn_missing_judged("benchmark", coll)
    started = time.perf_counter()
    results = []
    total = len(collections) * len(configs)
    with Progress(total, "benchmark", enabled=None if not args.quiet else False) as bar:
        for coll in collections:
            results.append(benchmark_collection(
                coll, configs, analyzer=analyzer, k=args.k, measures=eval_measures,
                cache_dir=cache, on_config=lambda _r: bar.update(1)))
    elapsed = time.perf_counter() - started

    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        folder = out / "runs" / r.name
        folder.mkdir(parents=True, exist_ok=True)
        for c in r.results:
            with open(folder / f"{_file_label(c.configuration.label)}.trec", "w",
                      encoding="utf-8") as fh:
                write_run(fh, run_records(c.run), tag=_file_label(c.configuration.label))
    report = report_dict(results, analyzer=analyzer, k=args.k, measures=measures,
                         extra={"command": "retrieval benchmark " + " ".join(sys.argv[2:])
                                if sys.argv[1:2] == ["benchmark"] else None,
                                "seconds": elapsed})
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    cv = {}
    if args.cv:
        if len(configs) < 2:
            raise ParameterError("--cv needs a grid of at least two configurations")
        for r in results:
            table = {c.configuration.label: c.per_query[measures[0]] for c in r.results}
            cv[r.name] = cross_validate(table, folds=args.cv, seed=args.cv_seed)
        report["cross_validation"] = {
            name: {"measure": measures[0], "folds": res.n_folds, "seed": res.seed,
                   "mean": res.mean, "best_on_test": res.best_mean,
                   "best_label": res.best_label,
                   "fold_choices": [f.label for f in res.folds]}
            for name, res in cv.items()}
        (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False)
                                         + "\n", encoding="utf-8")
    plots = [] if args.no_plots else _plots(results, configs, measures, out)

    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return 0
    rows = []
    for r in results:
        for c in r.results:
            qps = len(c.run.qids) / c.search_seconds if c.search_seconds > 0 else float("inf")
            rows.append([r.name, c.configuration.label] + [c.mean[m] for m in measures]
                        + [f"{qps:,.0f}"])
    print(format_table(["collection", "configuration"] + measures + ["queries/s"], rows,
                       align="ll" + "r" * (len(measures) + 1)))
    if cv:
        print()
        print(format_table(
            ["collection", f"CV {measures[0]} ({args.cv} folds)", "best on test",
             "best configuration", "chosen per fold"],
            [[name, res.mean, res.best_mean, res.best_label,
              ", ".join(sorted({f.label for f in res.folds}))] for name, res in cv.items()],
            align="lrrll"))
    print(f"\nanalyzer: stopwords={args.stopwords} stemmer={args.stemmer}; k={args.k}; "
          f"judged queries missing from a run count 0; {elapsed:.1f} s")
    for r in results:
        how = "cached" if r.index_cached else "built"
        print(f"index {r.name}: {r.stats['documents']:,} documents, {how} in "
              f"{r.index_seconds:.2f} s")
    print(f"wrote {out / 'report.json'}, {len(configs) * len(results)} runs under "
          f"{out / 'runs'}" + (f", {len(plots)} plots under {out / 'plots'}" if plots else ""))
    return 0


def _file_label(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.=" else "_" for ch in label).strip("_")


def _plots(results, configs, measures, out: Path) -> list[Path]:
    try:
        from .. import plots
        import matplotlib  # noqa: F401
    except ImportError:
        print("note: plots skipped (matplotlib is not installed; pip install "
              "'retrieval[plots]')", file=sys.stderr)
        return []
    folder = out / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    written = [plots.precision_recall(r, folder / f"pr-{r.name}.png") for r in results]
    swept = sorted({name for name in configs[0].model.params
                    if len({c.model.get_params()[name] for c in configs}) > 1})
    headline = measures[0]
    for name in swept:
        written.append(plots.measure_vs_parameter(
            results, name, headline, folder / f"{_file_label(headline)}-vs-{name}.png"))
    return written


def main(argv=None) -> int:
    return run("benchmark", build_parser(), _main, argv)
