"""The code's defaults are the choices recorded by scripts/choose_defaults.py."""

from __future__ import annotations

import json

import pytest

from retrieval.cli.search import build_parser as search_parser
from retrieval.feedback import DEFAULT_FEEDBACK, default_params
from retrieval.paths import REPO_ROOT
from retrieval.smoothing import (DEFAULT_MODEL, DEFAULT_PARAMS, MODELS, default_model,
                                 make_model, model_name_for)

RECORD = json.loads((REPO_ROOT / "results" / "defaults" / "defaults.json").read_text())


def parse_label(label: str) -> tuple[str, dict]:
    """``name(k=v,...)`` → (name, {k: number})."""
    name, args = label[:-1].split("(", 1)
    params = {}
    for part in filter(None, args.split(",")):
        key, value = part.split("=")
        try:
            params[key] = float(value)
        except ValueError:
            params[key] = value
    return name, params


def test_default_model_is_the_recorded_choice():
    name, params = parse_label(RECORD["shipped"]["model"])
    assert (DEFAULT_MODEL, DEFAULT_PARAMS) == (name, params)
    assert default_model() == make_model(name, **params)
    # the shipped family had the best mean held-out MAP of all families
    best = max(RECORD["models"], key=lambda f: RECORD["models"][f]["mean_held_out"])
    assert RECORD["shipped"]["model_family"] == best
    assert MODELS[DEFAULT_MODEL].name == DEFAULT_MODEL


def test_cli_default_model_and_the_compatibility_rule():
    args = search_parser().parse_args(["idx", "q"])
    assert model_name_for(args.model, []) == DEFAULT_MODEL
    assert model_name_for(None, ["mu"]) == "dirichlet"      # --mu alone: Dirichlet, as before
    assert model_name_for(None, ["omega"]) == DEFAULT_MODEL
    assert model_name_for("jm", ["lam"]) == "jm"


def test_default_feedback_is_the_recorded_choice():
    from retrieval.cli.search import feedback_from_args
    args = search_parser().parse_args(["idx", "q"])
    assert DEFAULT_FEEDBACK == RECORD["shipped"]["feedback"]
    assert feedback_from_args(args).name == RECORD["shipped"]["feedback"]


@pytest.mark.parametrize("method", ["rm3", "mixture", "divmin"])
def test_feedback_defaults_are_the_recorded_choices(method):
    name, chosen = parse_label(RECORD["shipped"][f"{method}_defaults"])
    assert name == method
    defaults = default_params(method)
    assert {k: defaults[k] for k in chosen} == pytest.approx(chosen)


def test_default_feedback_never_below_no_feedback_when_held_out():
    """The issue's target, as measured: shipped feedback is ≥ none on every held-out
    collection (or feedback is off by default)."""
    shipped = RECORD["shipped"]["feedback"]
    if shipped == "none":
        return
    folds = RECORD["feedback"][shipped]["folds"]
    assert all(f["held_out_map"] >= f["no_feedback_map"] for f in folds.values())


def test_protocol_rows_for_two_stage_em_and_the_length_prior():
    """Two-stage with λ per query by EM and the length-prior families are measured by the
    protocol; a prior ships only from a +prior family that won held out."""
    families = RECORD["models"]
    assert {"two-stage-em", "spud+prior", "dirichlet+prior", "jm+prior"} <= set(families)
    assert all(f["chosen"].endswith(",lam=auto)")
               for f in families["two-stage-em"]["folds"].values())
    if "prior=" in RECORD["shipped"]["model"]:
        assert RECORD["shipped"]["model_family"].endswith("+prior")
    assert "prior" not in DEFAULT_PARAMS
