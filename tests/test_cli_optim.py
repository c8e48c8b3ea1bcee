"""The command line on runs with an optimizer state: ``demo --optimizer`` and the bench's update-rule
section (i), in fast mode on tiny problems. Timings are reported but never asserted."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

import dve_teach as dt
from dve_teach.cli import main
from dve_teach.cli.bench import format_bench
from dve_teach.cli.demo import (METHODS, OPTIMIZER_METHODS, OPTIMIZERS, RECIPES, make_problem, methods_for,
                                run_demo)
from dve_teach.cli.optimizers import RULES, format_optimizers, run_optimizers, section_methods

FAST_ENV = {**os.environ, "DVE_TEACH_FAST": "1", "OMP_NUM_THREADS": "1"}


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dve_teach", *args], capture_output=True, text=True,
                          env=FAST_ENV, timeout=timeout)


def _finite(v) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def test_methods_for_each_rule():
    assert methods_for(dt.optim.SGD()) == METHODS
    assert methods_for(dt.optim.SGD(weight_decay=0.01)) == METHODS
    adam = methods_for(dt.optim.Adam())
    assert adam == methods_for(dt.optim.AdamW()) == OPTIMIZER_METHODS
    assert "sgd_influence" not in adam and "unrolled" in adam
    assert {"dve_fisher_sgd_proxy", "dve_ggn_sgd_proxy", "dve_fisher_frozen", "dve_ggn_frozen",
            "tracin", "grad_dot", "influence_function"} <= set(adam)
    momentum = methods_for(dt.optim.SGD(momentum=0.9))
    assert momentum == tuple(m for m in OPTIMIZER_METHODS if not m.endswith("_frozen"))


def test_make_problem_trains_each_rule_with_its_recipe():
    for name in OPTIMIZERS:
        prob = make_problem("moons", epochs=1, optimizer=name, n_train=24, n_test=6)
        assert prob.optimizer == name and prob.lr == RECIPES["moons"]["lrs"][name]
        rule = prob.traj.optimizer
        assert rule.plain_sgd == (name == "sgd")
        assert rule.name == {"sgd": "sgd", "momentum": "sgd", "adam": "adam", "adamw": "adamw"}[name]
        again = prob.train_again()   # the same rule, so the same run
        assert again.optimizer == rule
        assert (again.final - prob.traj.final).abs().max() == 0
    assert make_problem("moons", epochs=1, optimizer="adam", lr=0.5, n_train=24, n_test=6).lr == 0.5
    with pytest.raises(ValueError, match="choose one of.*momentum"):
        make_problem("moons", optimizer="rmsprop")
    with pytest.raises(ValueError, match="lr must be a positive"):
        make_problem("moons", optimizer="adam", lr=-1.0)


@pytest.fixture(scope="module")
def adam_demo():
    return run_cli("demo", "--dataset", "moons", "--optimizer", "adam", "--points", "8", "--epochs", "2", "--json")


def test_demo_adam_json_has_the_optimizer_methods(adam_demo):
    r = adam_demo
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["optimizer"] == "adam" and out["lr"] == RECIPES["moons"]["lrs"]["adam"]
    assert list(out["methods"]) == list(OPTIMIZER_METHODS)
    for name, row in out["methods"].items():
        assert "error" not in row, f"{name}: {row.get('error')}"
        for key in ("spearman", "pearson", "sign_agreement", "seconds"):
            assert _finite(row[key]), (name, key, row[key])
        assert -1 <= row["spearman"] <= 1 and 0 <= row["sign_agreement"] <= 1
    # Rows of estimate and truth are the same points: a mix-up would destroy this correlation
    # (the unrolled sweep is the exact first order; this run is small and smooth).
    assert out["methods"]["unrolled"]["pearson"] > 0.9


def test_demo_momentum_table_names_the_rule(capsys):
    assert main(["demo", "--dataset", "moons", "--optimizer", "momentum", "--points", "4", "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "SGD momentum 0.9 steps" in text and "lr=0.04" in text
    for name in methods_for(dt.optim.SGD(momentum=0.9)):
        assert f"\n{name} " in text
    assert "sgd_influence" not in text and "frozen" not in text


def test_demo_default_is_plain_sgd():
    res = run_demo("moons", points=4, epochs=1)
    assert [r["method"] for r in res.rows] == list(METHODS)
    assert res.info["optimizer"] == "sgd" and " SGD steps " in res.format_table()


def test_unknown_optimizer_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--optimizer", "bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--optimizer" in err and "invalid choice: 'bogus'" in err
    for name in OPTIMIZERS:
        assert name in err


@pytest.mark.parametrize("args", [["--seeds", "a"], ["--seeds", "-1"], ["--seeds", "0,0"], ["--seeds", ""],
                                  ["--section", "nope"]])
def test_bench_bad_seeds_or_section_are_refused(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert ("--seeds" in err and "0,1,2" in err) or ("--section" in err and "optimizers" in err)


TINY = dict(points=4, n_train=40, n_test=10, sizes=(64, 4, 10), epochs=1)


@pytest.fixture(scope="module")
def section():
    return run_optimizers([0, 1], "cpu", rules=("sgd", "momentum", "adam"), **TINY)


def test_bench_optimizer_section_structure(section):
    s = section
    assert s["seeds"] == [0, 1] and [run["seed"] for run in s["runs"]] == [0, 1]
    assert list(s["rules"]) == ["sgd", "momentum", "adam"]
    assert s["problem"]["points"] == 4 and s["problem"]["n_train"] == 40 and s["problem"]["sizes"] == [64, 4, 10]
    for run in s["runs"]:
        assert list(run["rules"]) == ["sgd", "momentum", "adam"]
        for rule, r in run["rules"].items():
            assert list(r["methods"]) == list(section_methods(rule))
            assert _finite(r["test_loss_start"]) and _finite(r["test_loss"]) and r["exact_loo_seconds"] > 0
            for name, m in r["methods"].items():
                assert "error" not in m, (rule, name, m.get("error"))
                assert m["seconds"] > 0
                for key in ("spearman_mean_loss", "spearman_per_test"):
                    assert _finite(m[key]) and -1 <= m[key] <= 1, (rule, name, key, m[key])
                assert ("fit_seconds" in m) == (name != "unrolled")
        assert set(run["ratios"]) == {"momentum", "adam"}
        for ratio in run["ratios"].values():
            assert ratio["fit_fisher"] > 0 and ratio["exact_loo"] > 0
    json.dumps(s, allow_nan=False)   # strict JSON


def test_section_methods_per_rule():
    assert set(section_methods("sgd")) == {"unrolled", "dve_fisher", "dve_ggn", "dve_sampled_fisher"}
    assert set(section_methods("momentum")) == set(section_methods("sgd")) | {"dve_fisher_sgd_proxy",
                                                                                 "dve_ggn_sgd_proxy"}
    for rule in ("adam", "adamw"):
        assert set(section_methods(rule)) == set(section_methods("momentum")) | {"dve_fisher_frozen",
                                                                                 "dve_ggn_frozen"}
    assert set(RULES) == set(OPTIMIZERS)


def test_bench_optimizer_section_text(section):
    text = "\n".join(format_optimizers(section))
    assert "(i) update rules" in text and "seed 0: mean" in text and "seed 1: mean" in text
    for rule in ("sgd", "momentum", "adam"):
        assert f"    {rule} " in text
    assert "dve_fisher_frozen" in text and "ratios to the SGD run" in text and "targets (worst seed)" in text
    # format_bench prints a report that holds only this section
    report = {"device": "cpu", "cuda_name": None, "torch": "x", "threads": 1, "cpu_count": 1, "fast": True,
              "optimizers": section}
    assert "(i) update rules" in format_bench(report) and "(a) exact LOO" not in format_bench(report)


def test_bench_optimizer_section_without_sgd_has_no_ratios():
    s = run_optimizers([3], "cpu", rules=("momentum",), **TINY)
    assert s["runs"][0]["ratios"] == {} and list(s["runs"][0]["rules"]) == ["momentum"]
    assert "ratios" not in "\n".join(format_optimizers(s))
    with pytest.raises(ValueError, match="rules must be names from"):
        run_optimizers([0], "cpu", rules=("rmsprop",), **TINY)
    with pytest.raises(ValueError, match="at least one seed"):
        run_optimizers([], "cpu", **TINY)


def test_bench_section_optimizers_from_the_command_line():
    r = run_cli("bench", "--section", "optimizers", "--seeds", "0", "--json", "--quiet", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["sections"] == ["optimizers"] and "exact_loo" not in out and "fit" not in out
    assert list(out["optimizers"]["rules"]) == list(RULES) and out["optimizers"]["seeds"] == [0]
