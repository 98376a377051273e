"""A fourth digit domain, registered the way a user would (:mod:`hw3lib.data.domains`): made by its own generator,
read by the loaders, and used by Problem 4's development protocol — each course pair S → T develops on S → X for
both other domains X and averages, without opening a file of T or any test split."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hw3lib.data import domains


@pytest.fixture
def toy_domain():
    """"toy": usps's digits inverted (black on white), smoke-sized, registered for one test and removed after."""
    from hw3lib.data import synth_digits

    def render(rng, label, split):
        return 255 - synth_digits._render_usps(rng, label, split)

    domain = domains.register(domains.Domain("toy", mode="L", native_size=28, render=render,
                                             sizes={s: (30, 10) for s in domains.DATA_SIZES}))
    yield domain
    domains.unregister("toy")


def test_a_registered_domain_shows_in_every_view_and_is_made_and_read(toy_domain, tmp_path):
    from hw3lib.data import load_digits
    from hw3lib.data.layout import DIGIT_DOMAINS, DIGIT_MODES, DIGIT_SIZES, FACE_SIZES, UDA_PAIRS
    from hw3lib.data.synth_digits import write_digits
    from hw3lib.eval.uda import COURSE_REPORT
    from hw3lib.train.uda import UDAConfig

    assert DIGIT_DOMAINS == ("usps", "mnistm", "svhn", "toy") and DIGIT_MODES["toy"] == "L"
    assert DIGIT_SIZES["smoke"]["toy"] == (30, 10) and set(domains.DATA_SIZES) == set(FACE_SIZES)
    # no course pair and no course-report number of its own: the course's three pairs stay
    assert UDA_PAIRS == (("usps", "mnistm"), ("mnistm", "svhn"), ("svhn", "usps"))
    assert set(COURSE_REPORT["dann"]) == {"usps_mnistm", "mnistm_svhn", "svhn_usps"}
    write_digits(tmp_path, {"toy": (20, 10)}, progress=False)
    write_digits(tmp_path, {"usps": (20, 10)}, progress=False)
    toy, usps = load_digits(tmp_path, "toy", "train"), load_digits(tmp_path, "usps", "train")
    assert toy.images.shape == (20, 3, 28, 28) and toy.domain == "toy"
    # the generator is the registered one: usps's streams inverted (a domain's own seed: its place in the registry)
    assert float(toy.images.float().mean()) > 128 > float(usps.images.float().mean())
    assert UDAConfig(source="toy", target="usps").source == "toy"
    with pytest.raises(ValueError, match="already registered"):
        domains.register(toy_domain)
    with pytest.raises(ValueError, match="unknown digit domain 'nope'; known: usps, mnistm, svhn, toy"):
        load_digits(tmp_path, "nope", "train")


def test_each_course_pair_develops_on_both_other_domains_and_averages(toy_domain, tiny_course_data, tmp_path,
                                                                      capsys, monkeypatch):
    """``hw3 develop`` with four domains: usps → mnistm develops on usps → svhn and usps → toy, and so on; each
    candidate's and ensemble's score is the mean of its tasks' scores; the choice is the best of them. Every test
    split is deleted first; each pair's development asks the loaders for train splits of S and its Xs only, and
    usps → mnistm's choice is made again, identical, with mnistm's folder gone."""
    from hw3lib.cli import main
    from hw3lib.data import data_id, loaders
    from hw3lib.data.synth_digits import write_digits
    from hw3lib.report.build import plan_report
    from hw3lib.report.develop import development_setup
    from hw3lib.train.uda import develop

    data = tmp_path / "data"
    shutil.copytree(tiny_course_data, data, ignore=shutil.ignore_patterns(".cache"))
    write_digits(data, {"toy": toy_domain.sizes["smoke"]}, progress=False)
    for d in (data / "digits").iterdir():
        (d / "test.csv").unlink()
        shutil.rmtree(d / "test")
    read: dict[str, set] = {}  # course pair -> the (domain, split)s the loaders were asked for while developing it
    pair = ["(none yet)"]
    tasks_of, cached, load = develop.development_tasks, loaders._cached_digits, loaders.load_digits_with_info

    def tasks_spy(src, tgt):  # develop() asks for a pair's tasks first, then develops them
        pair[:] = [f"{src}_{tgt}"]
        return tasks_of(src, tgt)

    monkeypatch.setattr(develop, "development_tasks", tasks_spy)
    monkeypatch.setattr(loaders, "_cached_digits", lambda root, domain, split, stamp: read.setdefault(
        pair[0], set()).add((domain, split)) or cached(root, domain, split, stamp))
    monkeypatch.setattr(loaders, "load_digits_with_info", lambda root, domain, split: read.setdefault(
        pair[0], set()).add((domain, split)) or load(root, domain, split))
    profile = tmp_path / "tiny.yaml"
    profile.write_text(f"data_size: null\nruns_root: {tmp_path / 'runs'}\nfigures_dir: {tmp_path / 'figures'}\n"
                       "notebooks:\n  p4_uda:\n    steps: 2\n    batch_size: 8\n    evals: 1\n    methods: [mcc]\n"
                       "    dev_grid: false\n    dev_holdout: 10\n    dev_seeds: [0]\n")  # 2 candidates x 6 tasks x 1 seed
    assert main(["develop", "--profile", str(profile), "--data", str(data), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "runs" / "p4_uda" / "choices.json").read_text())
    assert list(record["pairs"]) == ["usps_mnistm", "mnistm_svhn", "svhn_usps"]
    for key, entry in record["pairs"].items():
        src, tgt = key.split("_")
        xs = [x for x in ("usps", "mnistm", "svhn", "toy") if x not in (src, tgt)]
        tasks = [f"{src}_{x}" for x in xs]
        assert read[key] == {(d, "train") for d in (src, *xs)}
        assert entry["development_tasks"] == tasks and list(entry["tasks"]) == tasks
        assert [entry["tasks"][t]["development_task"] for t in tasks] == tasks
        assert f"{src} → {tgt}: development tasks {src} → {xs[0]}, {src} → {xs[1]}" in out
        assert entry["data_id"] == data_id(data, (src, *xs))
        for i, sc in enumerate(entry["scores"]):  # two candidates: no halving, both finish on both tasks
            assert sc["tasks"] == {t: entry["tasks"][t]["scores"][i]["accuracy"] for t in tasks}
            assert sc["accuracy"] == round(float(np.mean(list(sc["tasks"].values()))), 2)
        # The hand-in: both methods' ensemble, best mean first; on each task the members of that task's own hand-in
        # (perhaps in another order: the same mean probability), its score the mean of the tasks'.
        (ens,) = entry["ensembles"]
        ranked = sorted(entry["scores"], key=lambda sc: -sc["accuracy"])
        assert [m["method"] for m in ens["members"]] == [sc["method"] for sc in ranked] and entry["choice"] == ens
        for t in tasks:
            (own,) = entry["tasks"][t]["ensembles"]
            assert {m["method"] for m in own["members"]} == {"dann", "mcc"} and ens["tasks"][t] == own["accuracy"]
        assert ens["accuracy"] == round(float(np.mean(list(ens["tasks"].values()))), 2)
    # No file of T is needed: with mnistm's folder gone, usps → mnistm's choice is made again (from its runs).
    plan = plan_report(str(profile), "report", "cpu", (), only="p4")
    base, names, p = development_setup(plan, data)
    shutil.rmtree(data / "digits" / "mnistm")
    again = develop.develop(base, data, p["run_dir"], names=names, pairs=[("usps", "mnistm")], seeds=p["dev_seeds"],
                            holdout=p["dev_holdout"], knobs=p["knobs"] or {}, grid=p["dev_grid"],
                            halve=p["dev_halving"])
    assert again["pairs"]["usps_mnistm"] == record["pairs"]["usps_mnistm"]


@pytest.mark.slow
def test_averaging_with_successive_halving_reads_stopped_members_at_their_rung(toy_domain, tiny_course_data, tmp_path):
    """Six candidates, halving on each task on its own: a candidate stopped on one task keeps that rung's score there
    (and its step, per task); the hand-in is :func:`~hw3lib.train.uda.develop.handin` of the mean scores, and its
    ensemble's score is the mean of its held-out scores on the two tasks, each member at its validator's pick."""
    from hw3lib.data.synth_digits import write_digits
    from hw3lib.train.uda import UDAConfig, develop

    data = tmp_path / "data"
    shutil.copytree(tiny_course_data, data, ignore=shutil.ignore_patterns(".cache"))
    write_digits(data, {"toy": toy_domain.sizes["smoke"]}, progress=False)
    shutil.rmtree(data / "digits" / "mnistm")
    base = UDAConfig(steps=6, epochs=0, batch_size=8, evals=3, device="cpu")
    names = ["dann", "mcc", "adamatch"]
    record = develop.develop(base, data, tmp_path / "runs", names=names, pairs=[("usps", "mnistm")], holdout=10)
    entry = record["pairs"]["usps_mnistm"]
    tasks = ["usps_svhn", "usps_toy"]
    assert entry["development_task"] == "usps_svhn+toy" and entry["development_tasks"] == tasks
    assert all(entry["tasks"][t]["rung_steps"] == [2, 4] for t in tasks)
    for i, sc in enumerate(entry["scores"]):
        own = {t: entry["tasks"][t]["scores"][i] for t in tasks}
        assert sc["tasks"] == {t: own[t]["accuracy"] for t in tasks}
        assert sc.get("stopped_at", {}) == {t: own[t]["stopped_at"] for t in tasks if own[t]["stopped_at"]}
    assert any(sc.get("stopped_at") for sc in entry["scores"])
    chosen = develop.handin(entry["scores"])
    assert develop.Choice.from_dict(entry["choice"]) == chosen and chosen.is_ensemble
    cands = develop.candidates(names)
    for t in tasks:
        s, x = t.split("_")
        one = develop.task(base, tmp_path / "runs", s, x, cands=cands, seeds=[0], holdout=10, knobs={}, n_source=30,
                           n_x=30)
        assert entry["choice"]["tasks"][t] == develop._scored(chosen, one, data)["accuracy"]
    assert entry["choice"]["accuracy"] == round(float(np.mean(list(entry["choice"]["tasks"].values()))), 2)
