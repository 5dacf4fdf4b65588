"""``retrieval evaluate``: trec_eval-exact evaluation of TREC runs, with significance tests."""

from __future__ import annotations

import math
import os
import sys

from ..errors import InputError, ParameterError
from ..evaluation import DEFAULT_MEASURES, MEASURE_HELP, Qrels, Run, evaluate, parse_measures
from ..evaluation.significance import compare
from ._common import dump_json, format_table, make_parser, number, positive_int, run

DESCRIPTION = f"""\
Evaluate TREC runs (qid Q0 docid rank score tag) against TREC qrels
(qid iteration docid relevance) with trec_eval's semantics: ranking by score (as
float32) then docid descending; relevant = judgment >= the level; averages over the
run's judged queries (-c: over all judged queries, missing ones counting 0).

measures (-m: several after one flag, repeated, or comma-separated; case-insensitive;
trec_eval's names and ir_measures' syntax, e.g. -m AP P@10 "P(rel=2)@10" nDCG@10):
  {MEASURE_HELP}
  default: {', '.join(DEFAULT_MEASURES)}

output:
  one run, no --format   trec_eval-like lines: measure<TAB>qid|all<TAB>value
                         (4 decimals; num_* are integers and their 'all' is a sum)
  several runs           a table measure x run; the first run is the baseline and
                         each other value is marked ▲/▼ (+/- when the output
                         cannot show them) when significantly
                         better/worse (paired test over the queries both runs
                         evaluated, Holm-corrected over the compared runs)
  --format tsv|json      every value at full precision (json: also p-values)
"""

_TESTS = ("t", "randomization", "both")
_TEST_LABEL = {"t": "paired t-test", "randomization": "paired randomization test"}


def build_parser():
    p = make_parser("evaluate", DESCRIPTION)
    p.add_argument("qrels", metavar="QRELS", help="TREC qrels file, or irds:ID for the "
                   "judgments of an ir_datasets dataset present locally")
    p.add_argument("runs", nargs="+", metavar="RUN", help="TREC run file(s); the first is "
                   "the baseline of the significance tests")
    p.add_argument("-m", "--measure", "--measures", dest="measure", action="extend",
                   nargs="+", default=None, metavar="MEASURE",
                   help="measure(s) to compute: several after one -m, -m repeated, or "
                        "comma-separated")
    p.add_argument("-q", "--by-query", action="store_true",
                   help="also print the value of every query")
    p.add_argument("--format", choices=("table", "tsv", "json"), default=None)
    p.add_argument("-c", "--complete", action="store_true",
                   help="average over every judged query; those missing from a run count "
                        "0 (trec_eval -c)")
    p.add_argument("-l", "--relevance-level", type=int, default=1, metavar="N",
                   help="minimum judgment that counts as relevant (default 1)")
    p.add_argument("--test", choices=_TESTS, default="t",
                   help="significance test for several runs (default t; 'both' marks a "
                        "difference only when both tests find it)")
    p.add_argument("--alpha", type=number, default=0.05,
                   help="significance level after Holm's correction (default 0.05)")
    p.add_argument("--permutations", type=positive_int, default=10_000,
                   help="random sign flips of the randomization test (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the randomization test")
    p.add_argument("--trec-names", action="store_true",
                   help="print trec_eval's measure names (map, P_10, ndcg_cut_10...)")
    return p


def main(argv=None) -> int:
    return run("evaluate", build_parser(), _body, argv)


def _body(args) -> int:
    if not 0.0 < args.alpha < 1.0:
        raise ParameterError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.relevance_level < 0:
        raise ParameterError(f"--relevance-level must be >= 0, got {args.relevance_level}")
    measures = parse_measures(args.measure or list(DEFAULT_MEASURES))
    qrels = _read_qrels(args.qrels)
    labels = _labels(args.runs)
    evaluations = []
    for path, label in zip(args.runs, labels):
        run_ = Run.read(path, name=label)
        try:
            evaluations.append(evaluate(qrels, run_, measures,
                                        relevance_level=args.relevance_level,
                                        complete=args.complete))
        except InputError as exc:
            if exc.path is None:
                raise InputError(f"{exc.message} (qrels: {args.qrels})", path=path) from None
            raise
    tests = ("t", "randomization") if args.test == "both" else (args.test,)
    significance = _significance(evaluations, measures, tests, args)
    fmt = args.format or ("trec" if len(evaluations) == 1 else "table")
    out = sys.stdout
    if fmt == "trec":
        _print_trec(evaluations[0], args, out)
    elif fmt == "table":
        _print_table(evaluations, measures, significance, tests, args, out)
    elif fmt == "tsv":
        _print_tsv(evaluations, significance, tests, args, out)
    else:
        out.write(dump_json(_json(evaluations, significance, tests, args)) + "\n")
    return 0


def _read_qrels(source: str) -> Qrels:
    """A TREC qrels file, or ``irds:ID``: an ir_datasets dataset's judgments."""
    from ..collections.irds import IRDS_PREFIX, read_irds_qrels
    if source.lower().startswith(IRDS_PREFIX) and not os.path.exists(source):
        return Qrels.from_records(read_irds_qrels(source[len(IRDS_PREFIX):]))
    return Qrels.read(source)


def _labels(paths: list[str]) -> list[str]:
    """Run names: file names (paths when two files share a name); a repeat gets ``#n``."""
    base = [os.path.basename(p) or p for p in paths]
    if len(set(base)) < len(set(paths)):  # different files with the same name
        base = list(paths)
    seen: dict[str, int] = {}
    out = []
    for label in base:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def _significance(evaluations, measures, tests, args) -> dict:
    """{(measure name, test): [Comparison per non-baseline run]}"""
    out = {}
    if len(evaluations) < 2:
        return out
    for m in measures:
        if m.is_count:
            continue
        for test in tests:
            out[(m.name, test)] = compare(evaluations[0], evaluations[1:], m, test=test,
                                          permutations=args.permutations, seed=args.seed)
    return out


def _name(m, args) -> str:
    return m.trec_name if args.trec_names else m.name


def _value(m, value: float) -> str:
    if m.is_count:
        return str(int(round(value)))
    return f"{value:.4f}"


def _print_trec(ev, args, out) -> None:
    width = max(22, max(len(_name(m, args)) for m in ev.measures))
    lines = []
    if args.by_query:
        columns = [(m, ev.values(m).tolist()) for m in ev.measures]
        for i, qid in enumerate(ev.qids):
            for m, values in columns:
                lines.append(f"{_name(m, args):<{width}}\t{qid}\t{_value(m, values[i])}")
    for m in ev.measures:
        lines.append(f"{_name(m, args):<{width}}\tall\t{_value(m, ev.summary[m])}")
    out.write("\n".join(lines) + "\n")


def _markers(out) -> tuple[str, str]:
    encoding = getattr(out, "encoding", None) or "ascii"
    try:
        "\u25b2\u25bc".encode(encoding)
        return "\u25b2", "\u25bc"
    except (UnicodeEncodeError, LookupError):
        return "+", "-"


def _marker(significance, tests, m, index: int, alpha: float, up: str, down: str) -> str:
    comparisons = [significance.get((m.name, t)) for t in tests]
    if any(c is None for c in comparisons):
        return ""
    rows = [c[index] for c in comparisons]
    if not all(r.significant(alpha) for r in rows):
        return ""
    if all(r.difference > 0 for r in rows):
        return up
    if all(r.difference < 0 for r in rows):
        return down
    return ""


def _print_table(evaluations, measures, significance, tests, args, out) -> None:
    up, down = _markers(out)
    if args.by_query:
        for ev in evaluations:
            headers = ["qid"] + [_name(m, args) for m in ev.measures]
            columns = [ev.values(m).tolist() for m in ev.measures]
            rows = [[qid] + [_value(m, col[i]) for m, col in zip(ev.measures, columns)]
                    for i, qid in enumerate(ev.qids)]
            rows.append(["all"] + [_value(m, ev.summary[m]) for m in ev.measures])
            out.write(f"{ev.run_name}\n")
            out.write(format_table(headers, rows, align="l" + "r" * len(ev.measures)) + "\n\n")
    headers = ["measure"] + [ev.run_name for ev in evaluations]
    rows = []
    for m in measures:
        row = [_name(m, args), _value(m, evaluations[0].summary[m])]
        for i, ev in enumerate(evaluations[1:]):
            mark = _marker(significance, tests, m, i, args.alpha, up, down)
            row.append(_value(m, ev.summary[m]) + (" " + mark if mark else "  "))
        rows.append(row)
    out.write(format_table(headers, rows, align="l" + "r" * len(evaluations)) + "\n")
    queries = ", ".join(f"{ev.run_name}: {len(ev.qids)}" for ev in evaluations)
    out.write(f"queries evaluated - {queries}"
              f"{' (complete: judged queries missing from a run count 0)' if args.complete else ''}\n")
    if len(evaluations) > 1:
        test = " and ".join(_TEST_LABEL[t] for t in tests)
        out.write(f"{up}/{down}: better/worse than {evaluations[0].run_name} by {test}"
                  f"{' (both)' if len(tests) > 1 else ''} over the queries both runs evaluated, "
                  f"Holm-corrected over {len(evaluations) - 1} run(s), p < {args.alpha:g}\n")


def _full(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(value)


def _print_tsv(evaluations, significance, tests, args, out) -> None:
    several = len(evaluations) > 1
    header = ["run", "measure", "qid", "value"]
    if several:
        for t in tests:
            header += [f"p_{t}", f"p_{t}_holm"]
    lines = ["\t".join(header)]
    for index, ev in enumerate(evaluations):
        for m in ev.measures:
            name = _name(m, args)
            if args.by_query:
                for qid, v in zip(ev.qids, ev.values(m).tolist()):
                    lines.append("\t".join([ev.run_name, name, qid, _full(v)]
                                           + ["", ""] * len(tests) * several))
            extra = []
            if several:
                for t in tests:
                    comps = significance.get((m.name, t))
                    if comps is None or index == 0:
                        extra += ["", ""]
                    else:
                        c = comps[index - 1]
                        extra += [_full(c.p_value), _full(c.p_holm)]
            lines.append("\t".join([ev.run_name, name, "all", _full(ev.summary[m])] + extra))
    out.write("\n".join(lines) + "\n")


def _json(evaluations, significance, tests, args) -> dict:
    runs = []
    for index, ev in enumerate(evaluations):
        entry = {
            "name": ev.run_name, "path": args.runs[index], "num_queries": len(ev.qids),
            "summary": {_name(m, args): ev.summary[m] for m in ev.measures},
            "mean": {_name(m, args): ev.mean[m] for m in ev.measures},
        }
        if args.by_query:
            entry["per_query"] = {_name(m, args): dict(ev.per_query[m]) for m in ev.measures}
        if index > 0 and significance:
            sig = {}
            for m in ev.measures:
                if m.is_count:
                    continue
                item = {}
                for t in tests:
                    c = significance[(m.name, t)][index - 1]
                    item[t] = {"queries": c.queries, "baseline_mean": c.baseline_mean,
                               "mean": c.mean, "difference": c.difference,
                               "p_value": c.p_value, "p_holm": c.p_holm,
                               "significant": c.significant(args.alpha)}
                sig[_name(m, args)] = item
            entry["significance_vs_baseline"] = sig
        runs.append(entry)
    return {
        "qrels": args.qrels, "relevance_level": args.relevance_level,
        "complete": args.complete, "alpha": args.alpha, "tests": list(tests),
        "baseline": evaluations[0].run_name, "runs": runs,
    }
