"""``hw3 report --plan``: the run list built from the profiles, step counts from the data's sizes, and the
measured step time. (The smoke report test checks that the plan lists exactly the runs a report trains.)"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hw3lib import methods
from hw3lib.problems import p3_dann, p4_uda
from hw3lib.train.uda import develop
from hw3lib.report import build as report_build
from hw3lib.report import plan as planning


def _runs(profile: str, tmp_path, counts_size: str | None = None, only=None, overrides=()):
    plan = report_build.plan_report(profile, tmp_path / "report", "cpu", overrides, only=only,
                                    runs_root=tmp_path / "runs")
    params = report_build.notebook_parameters(plan, tmp_path / "no-data")
    counts = planning.data_counts({}, counts_size)
    return planning.planned_runs(plan.notebooks, params, counts)


def test_quick_plan_lists_every_run_with_its_steps(tmp_path):
    runs = _runs("quick", tmp_path, "quick")
    by_problem = {p: [r for r in runs if r.problem == p] for p in ("p1_vae", "p2_gan", "p3_dann", "p4_uda")}
    shared = methods.improved(shared_recipe=True)  # the registry's methods on the shared recipe, + GTA's 3 runs
    p4 = p4_uda.Params.defaults()  # the notebook's defaults (tests/test_problems.py keeps them equal)
    assert develop.compared(shared, p4["compare"]) is None  # the k best: known once the development runs are done
    compared = develop.compared(shared, p4["compare"], {"pairs": {"a_b": {"scores": [
        {"method": m, "accuracy": float(i)} for i, m in enumerate(shared)]}}})
    assert compared == shared[-p4["compare"]:]  # the best on the development tasks ...
    assert 0 < len(compared) < len(shared)  # the quick budget compares some on the course pairs ...
    # ... and weighs all on the development tasks. No data yet, so no recorded development choice fits it: the plan
    # lists the development runs too.
    dev = [r for r in by_problem["p4_uda"] if r.run_dir is not None and r.run_dir.parent.name == "dev"]
    n_cands = len(develop.candidates(["dann", *shared]))
    assert len(dev) == 3 * n_cands * len(p4["dev_seeds"])
    assert {r.seed for r in dev} == set(p4["dev_seeds"])
    assert {r.method for r in dev} == {"dann", *shared}
    # Successive halving: every development run trains to the first rung (the first of 5 scored checkpoints) ...
    assert all((r.until, r.steps, r.note) == (80, 80, "rung 1 of 2") for r in dev)
    # ... and the plan counts what the later rungs add: the best 6 to step 160, the best 3 to the end.
    later = [r for r in by_problem["p4_uda"] if r.later and r.note != "compared once development is done"]
    k_best = [r for r in by_problem["p4_uda"] if r.later and r not in later]
    assert len(k_best) == 3 * p4["compare"] and all(r.steps == 400 for r in k_best)
    keep = [develop.kept(n_cands, share) for _, share in develop.RUNGS]
    assert sorted(r.steps for r in later) == sorted(3 * len(p4["dev_seeds"]) * (keep[0] * [80] + keep[1] * [240]))
    assert all(r.run_dir is None and r.status.startswith("later (steps ") for r in later)
    halved = sum(r.steps * r.batch for r in dev + later)
    assert halved / (len(dev) * 400 * 64) == pytest.approx((n_cands * 80 + keep[0] * 80 + keep[1] * 240)
                                                           / (n_cands * 400))
    course = {r.method for r in by_problem["p4_uda"] if not r.later and r.run_dir.parent.name != "dev"}
    assert course == {"gta"}
    # the attribute classifier is trained by Problem 1 (its sample metrics) and reused by Problem 2: listed once
    assert [len(v) for v in by_problem.values()] == [2, 1, 9, len(k_best) + 3 + len(dev) + len(later)]
    assert [r.method for r in by_problem["p1_vae"]] == ["vae", "face-attr"]
    assert {r.pair for r in dev} == {"usps → svhn", "mnistm → usps", "svhn → mnistm"}
    assert all(r.config.holdout == 1000 for r in dev)
    assert all(r.status.startswith("to train") for r in runs if not r.later)  # nothing under the empty runs folder
    dann = next(r for r in runs if r.method == "dann" and r.pair == "usps → mnistm")
    assert (dann.steps, dann.batch, dann.run_dir) == (400, 64, tmp_path / "runs" / "p3_dann" / "dann_usps_mnistm_s0")
    gta = {r.run_dir.name: r for r in runs if r.method == "gta"}
    assert set(gta) == {"gta_usps_mnistm_s0", "gta_mnistm_svhn_s0_gray", "gta_svhn_usps_s0"}
    assert gta["gta_usps_mnistm_s0"].steps == 250 + 400  # GTA steps + the warm start
    vae = by_problem["p1_vae"][0]
    assert vae.steps == 3 * math.ceil(4000 / 32)  # 3 epochs over the quick data's 4000 faces at batch 32


def test_full_plan_uses_the_course_sizes_and_three_seeds(tmp_path):
    runs = _runs("full", tmp_path, None, only="p3,p4")
    assert len([r for r in runs if r.problem == "p3_dann"]) == 27
    course = [r for r in runs if r.problem == "p4_uda" and not r.later and r.run_dir.parent.name != "dev"]
    assert len([r for r in course if r.method != "gta"]) == 9 * len(methods.improved(shared_recipe=True))
    assert len([r for r in runs if r.method == "gta"]) == 12  # 3 pairs × 3 seeds + colour for the gray pair
    dann = next(r for r in runs if r.method == "dann" and r.pair == "usps → mnistm" and r.seed == 2)
    assert dann.steps == math.ceil(20 * 60000 / 128)  # 20 epochs over the larger domain (MNIST-M's 60000)


def test_plan_without_p3_trains_its_baselines_in_p4(tmp_path):
    runs = _runs("quick", tmp_path, "quick", only="p4")
    assert {r.run_dir.parent.name for r in runs if r.method in p3_dann.methods_trained() and not r.later
            and r.run_dir.parent.name != "dev"} == {"p3_dann"}


def test_step_seconds_and_table(tmp_path):
    runs = [r for r in _runs("smoke", tmp_path, "smoke", only="p3") if r.method == "dann"][:1]
    run = dataclasses.replace(runs[0], config=dataclasses.replace(runs[0].config, batch_size=8))
    s = planning.step_seconds(run, torch.device("cpu"), target_s=0.05)
    assert 0 < s < 5
    table = planning.plan_table([run], {run.bench_key: s})
    assert table["estimate_s"].iloc[0] == pytest.approx(run.steps * s)
    text = planning.format_plan(table, "header")
    assert "p3_dann: 1 runs, 0 finished, 1 to train" in text and "total training" in text


def test_compare_is_a_subset_of_the_candidates_in_their_order():
    record = {"pairs": {"a_b": {"scores": [{"method": "cdan", "accuracy": 50.0}, {"method": "mcc", "accuracy": 70.0},
                                           {"method": "adamatch", "accuracy": 60.0}]},
                        "c_d": {"scores": [{"method": "cdan", "accuracy": 90.0}, {"method": "mcc", "accuracy": 10.0},
                                           {"method": "adamatch", "accuracy": 61.0}, {"method": "mcc", "accuracy": 20.0}]}}}
    # the k best by their best candidate's development score, mean over the tasks (cdan 70, mcc 45, adamatch 60.5)
    assert develop.compared(["cdan", "mcc", "adamatch"], 2, record) == ["cdan", "adamatch"]
    assert develop.compared(["cdan", "mcc", "adamatch"], 2) is None
    assert develop.compared(["cdan", "mcc", "adamatch"], ["adamatch", "mcc"]) == ["mcc", "adamatch"]
    assert develop.compared(["cdan", "mcc"], []) == ["cdan", "mcc"]  # empty: every candidate
    assert develop.compared(["mcc"], ["selfens"]) == []                # never a method that is not a candidate


def test_problem_2_alone_plans_the_vae_it_compares_with(tmp_path):
    runs = _runs("quick", tmp_path, "quick", only="p2")
    assert [r.method for r in runs] == ["gan", "face-attr", "vae"]
    vae = runs[-1]
    assert vae.run_dir == tmp_path / "runs" / "p1_vae" and vae.steps == 3 * math.ceil(4000 / 32)
    assert [r.method for r in _runs("quick", tmp_path, "quick", only="p1,p2")] == ["vae", "face-attr", "gan"]
