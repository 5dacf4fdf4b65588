"""PNG plots of benchmark results (matplotlib, imported only when plotting)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .benchmarking import PR_MEASURES, CollectionResult


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def precision_recall(result: CollectionResult, path: Path) -> Path:
    """Interpolated precision at the 11 recall levels, one line per configuration."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    recall = [i / 10 for i in range(11)]
    for c in result.results:
        ax.plot(recall, [c.mean[m] for m in PR_MEASURES], marker="o", ms=3,
                label=c.configuration.label)
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision")
    ax.set_title(f"{result.name}: precision-recall")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def measure_vs_parameter(results: list[CollectionResult], parameter: str, measure: str,
                         path: Path) -> Path:
    """``measure`` against one swept parameter; a line per collection (and per setting
    of the other parameters)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in results:
        lines = defaultdict(list)
        for c in r.results:
            params = c.configuration.params()
            if parameter not in params:
                continue
            others = tuple((k, v) for k, v in sorted(params.items())
                           if k not in (parameter, "model"))
            lines[others].append((params[parameter], c.mean[measure]))
        for others, points in lines.items():
            points.sort()
            suffix = "".join(f" {k}={v:g}" for k, v in others if isinstance(v, (int, float)))
            ax.plot([p for p, _ in points], [v for _, v in points], marker="o", ms=3,
                    label=r.name + suffix)
    ax.set_xlabel(parameter)
    ax.set_ylabel(measure)
    ax.set_title(f"{measure} against {parameter}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
