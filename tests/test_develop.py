"""Problem 4's development protocol: development tasks, candidates, no label of the course pair's target and no
test split read, recorded choices reused only on the same data and protocol, the hand-in and ``--choices``."""
from __future__ import annotations

import json
import shutil

import pytest

from hw3lib import methods
from hw3lib.train.uda import UDAConfig, develop

TINY = dict(steps=2, epochs=0, batch_size=8, evals=1)


def test_development_tasks_use_the_third_domain():
    assert develop.development_task("usps", "mnistm") == ("usps", "svhn")
    assert develop.development_task("mnistm", "svhn") == ("mnistm", "usps")
    assert develop.development_task("svhn", "usps") == ("svhn", "mnistm")


def test_candidates_move_one_knob_at_a_time_along_the_declared_grid():
    cands = develop.candidates(["dann", "mcc"])
    assert cands[0] == develop.Candidate("dann") and cands[1] == develop.Candidate("mcc")
    grid = methods.get("mcc").grid
    assert [c.overrides for c in cands[2:]] == [{k: v} for k, vs in grid.items() for v in vs
                                                 if v != getattr(methods.get("mcc").knobs(), k)]
    assert all(c.tag.startswith("-") for c in cands[2:]) and cands[0].tag == ""


def test_development_split_holds_out_labelled_train_images_apart_from_the_pool():
    import torch

    import synthetic
    from hw3lib.train.uda.runs import development_split

    ds = synthetic.digits("svhn", 50)
    pool, dev = development_split(ds, 1000)  # at most half
    assert len(dev) == 25 and len(pool) == 25 and not set(pool.names) & set(dev.names)
    again_pool, again_dev = development_split(ds, 1000)
    assert again_dev.names == dev.names and torch.equal(again_dev.labels, dev.labels)  # one fixed split
    assert len(development_split(ds, 10)[1]) == 10


def _without(data, *, domain: str, tmp_path):
    """A copy of the course-layout data with ``domain`` and every test split removed."""
    root = tmp_path / "data"
    shutil.copytree(data, root, ignore=shutil.ignore_patterns(".cache"))
    shutil.rmtree(root / "digits" / domain)
    for d in (root / "digits").iterdir():
        (d / "test.csv").unlink()
        shutil.rmtree(d / "test")
    return root


def test_developing_for_a_pair_reads_no_file_of_its_target_and_no_test_split(tiny_course_data, tmp_path):
    """usps → mnistm develops on usps → svhn: with mnistm's folder and every test split deleted, the protocol still
    trains each candidate and chooses."""
    data = _without(tiny_course_data, domain="mnistm", tmp_path=tmp_path)
    base = UDAConfig(**TINY, device="cpu")
    record = develop.develop(base, data, tmp_path / "runs", names=["dann", "mcc"], pairs=[("usps", "mnistm")],
                             holdout=10)
    entry = record["pairs"]["usps_mnistm"]
    assert entry["development_task"] == "usps_svhn"
    assert [s["label"] for s in entry["scores"]] == [c.label for c in develop.candidates(["dann", "mcc"])]
    assert entry["choice"]["members"] == [c.as_dict() for c in develop.handin(entry["scores"]).members]
    assert {m["method"] for m in entry["choice"]["members"]} == {"dann", "mcc"}
    runs = sorted(p.name for p in (tmp_path / "runs" / "dev").iterdir())
    assert runs[0] == "dann_usps_svhn_s0" and all("_usps_svhn_s0" in r for r in runs)


def test_recorded_choices_are_reused_only_on_the_same_data_and_protocol(tiny_course_data, tmp_path, monkeypatch):
    base = UDAConfig(**TINY, device="cpu")
    kw = dict(names=["dann"], pairs=[("svhn", "usps")], holdout=10)
    record, where = develop.choose(base, tiny_course_data, tmp_path / "a", **kw)
    assert where == "developed here" and (tmp_path / "a" / "choices.json").is_file()
    shipped = tmp_path / "recorded.json"
    shipped.write_text(json.dumps(record))
    trained = []
    monkeypatch.setattr(develop, "train_or_load", lambda *a, **k: trained.append(a) or pytest.fail("trained"))
    again, where = develop.choose(base, tiny_course_data, tmp_path / "b", recorded_files=[shipped], **kw)
    assert where == f"recorded in {shipped}" and again == record and not trained
    # Another protocol (a longer recipe) or other data: developed again, not loaded.
    assert not develop.recorded([shipped], tiny_course_data, develop.protocol(
        UDAConfig(**{**TINY, "steps": 3}), ["dann"], [0], 10), [("svhn", "usps")])
    other = tmp_path / "other"
    shutil.copytree(tiny_course_data, other, ignore=shutil.ignore_patterns(".cache"))
    csv = other / "digits" / "mnistm" / "train.csv"
    csv.write_text(csv.read_text().replace(",3\n", ",4\n", 1))  # one changed label of X
    assert not develop.recorded([shipped], other, develop.protocol(base, ["dann"], [0], 10), [("svhn", "usps")])


def _record(data, choice: list[tuple[str, dict]]) -> dict:
    members = [{"method": m, "knobs": k, "label": develop.Candidate(m, tuple(k.items())).label} for m, k in choice]
    return {"version": develop.VERSION, "protocol": {}, "pairs": {"usps_mnistm": {
        "development_task": "usps_svhn", "data_id": develop.data_id(data, ("usps", "svhn")), "scores": [],
        "choice": {"label": develop.Choice.from_dict({"members": members}).label, "members": members}}}}


def test_handin_is_the_chosen_run_and_the_cli_applies_a_choice(tiny_course_data, tmp_path, capsys):
    from hw3lib import checkpoint
    from hw3lib.cli import main

    record = _record(tiny_course_data, [("mcc", {"temperature": 1.0})])
    base = UDAConfig(**TINY, device="cpu")
    handin = develop.handin_runs(record, base, tiny_course_data, tmp_path / "p4", seeds=[0])
    r = handin[("hand-in", "usps", "mnistm", 0)]
    assert r.config.method == "mcc" and r.config.knobs.temperature == 1.0
    assert r.run_dir == tmp_path / "p4" / "mcc_usps_mnistm_s0-temperature1"
    file = tmp_path / "choices.json"
    file.write_text(json.dumps(record))
    out = tmp_path / "cli"
    assert main(["train", "uda", "--choices", str(file), "--source", "usps", "--target", "mnistm", "--data",
                 str(tiny_course_data), "--out", str(out), "--steps", "2", "--batch-size", "8", "--evals", "1",
                 "--device", "cpu"]) == 0
    payload = checkpoint.load(out)
    assert payload["config"]["method"] == "mcc" and payload["config"]["knobs"]["temperature"] == 1.0
    assert payload["extra"]["choices"]["file"] == str(file.resolve())
    # A choice for another method than --method, or made on other data, is one error line.
    assert main(["train", "uda", "--choices", str(file), "--method", "dann", "--source", "usps", "--target",
                 "mnistm", "--data", str(tiny_course_data), "--out", str(tmp_path / "x"), "--device", "cpu"]) == 2
    assert "contradicts --choices" in capsys.readouterr().err
    record["pairs"]["usps_mnistm"]["data_id"] = "0" * 12
    file.write_text(json.dumps(record))
    assert main(["train", "uda", "--choices", str(file), "--source", "usps", "--target", "mnistm", "--data",
                 str(tiny_course_data), "--out", str(tmp_path / "y"), "--device", "cpu"]) == 2
    assert "made on other data" in capsys.readouterr().err


def test_an_ensemble_hand_in_averages_its_members_probabilities_everywhere(tiny_course_data, tmp_path, capsys):
    """An ensemble choice: the hand-in's accuracy is the mean-probability ensemble's, computed here by hand from
    its members; ``hw3 predict`` with the members' folders writes the same labels; ``--choices`` trains one member
    at a time."""
    import torch

    from hw3lib.cli import main
    from hw3lib.data import digits
    from hw3lib.eval.uda import predict_logits

    record = _record(tiny_course_data, [("dann", {}), ("mcc", {"temperature": 1.0})])
    base = UDAConfig(**TINY, device="cpu")
    existing = {("dann", "usps", "mnistm", 0): develop.train_or_load(
        base.for_method("dann", source="usps", target="mnistm"), tiny_course_data, tmp_path / "p3" / "dann")}
    r = develop.handin_runs(record, base, tiny_course_data, tmp_path / "p4", seeds=[0],
                            existing=existing)[("hand-in", "usps", "mnistm", 0)]
    assert [m.config.method for m in r.members] == ["dann", "mcc"] and r.members[0] is existing[
        ("dann", "usps", "mnistm", 0)]
    test = digits(tiny_course_data, "mnistm", "test")
    probs = sum(torch.softmax(predict_logits(m.classifier, test.images).float(), 1) for m in r.members) / 2
    by_hand = float((probs.argmax(1) == test.labels).double().mean() * 100)
    assert r.metrics["target_acc"] == pytest.approx(by_hand)
    assert r.metrics["member_acc"] == [m.metrics["target_acc"] for m in r.members]
    assert r.run_dirs == [m.run_dir for m in r.members]
    out = tmp_path / "pred.csv"
    assert main(["predict", "--ckpt", *map(str, r.run_dirs), "--images", str(tiny_course_data / "digits" / "mnistm"
                                                                              / "test"),
                 "--target", "mnistm", "--out", str(out), "--device", "cpu"]) == 0
    written = dict(line.split(",") for line in out.read_text().splitlines()[1:])
    assert [int(written[n]) for n in test.names] == probs.argmax(1).tolist()
    file = tmp_path / "choices.json"
    file.write_text(json.dumps(record))
    args = ["train", "uda", "--choices", str(file), "--source", "usps", "--target", "mnistm", "--data",
            str(tiny_course_data), "--steps", "2", "--batch-size", "8", "--evals", "1", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "m0")]) == 2
    assert "chose an ensemble of 2" in capsys.readouterr().err
    assert main([*args, "--member", "2", "--out", str(tmp_path / "m2")]) == 0
    from hw3lib import checkpoint
    assert checkpoint.load(tmp_path / "m2")["config"]["knobs"]["temperature"] == 1.0


def test_a_paused_run_resumed_ends_as_if_trained_in_one_go(tiny_course_data, tmp_path):
    """Successive halving pauses a run at a rung and may resume it: the same weights, history and metrics."""
    import torch

    from hw3lib.train.uda.runs import advance, progress

    cfg = UDAConfig(method="mcc", steps=6, epochs=0, batch_size=8, evals=3, device="cpu", holdout=10,
                    source="usps", target="svhn")
    at = advance(cfg, tiny_course_data, tmp_path / "paused", 2)
    assert (at.step, at.finished) == (2, False) and at.history["eval_step"] == [2]
    assert progress(cfg, tiny_course_data, tmp_path / "paused").step == 2
    assert advance(cfg, tiny_course_data, tmp_path / "paused", 2).step == 2  # already there: read, not trained
    resumed = develop.train_or_load(cfg, tiny_course_data, tmp_path / "paused")
    whole = develop.train_or_load(cfg, tiny_course_data, tmp_path / "whole")
    assert resumed.history == whole.history and resumed.metrics == whole.metrics
    for a, b in zip(resumed.models["dann"].state_dict().values(), whole.models["dann"].state_dict().values()):
        assert torch.equal(a, b)


def test_the_handin_is_the_best_methods_each_at_its_best_candidate():
    """The hand-in rule on score entries alone: methods ranked by their best candidate (ties: the earlier
    candidate), the HANDIN_METHODS best, each at that candidate's knobs; one method alone is a single run."""
    def entry(method, acc, **knobs):
        return {"method": method, "knobs": knobs, "accuracy": acc}

    scores = [entry("dann", 40.0), entry("cdan", 55.0), entry("cdan", 61.0, entropy=False), entry("mcc", 61.0),
              entry("mcc", 70.0, temperature=1.0), entry("adamatch", 80.0), entry("adamatch", 12.0, tau=0.7),
              entry("selfens", 39.0)]
    chosen = develop.handin(scores)
    assert develop.HANDIN_METHODS == 4 and chosen.is_ensemble
    assert [(c.method, c.overrides) for c in chosen.members] == [
        ("adamatch", {}), ("mcc", {"temperature": 1.0}), ("cdan", {"entropy": False}), ("dann", {})]
    assert chosen.label.startswith("Ensemble of 4: AdaMatch")
    alone = develop.handin([entry("mcc", 3.0), entry("mcc", 9.0, temperature=1.0)])
    assert not alone.is_ensemble and alone.members[0].overrides == {"temperature": 1.0}


def test_successive_halving_stops_the_worst_at_a_rung_and_hands_in_the_best_methods(tiny_course_data, tmp_path):
    """Six candidates of three methods, checkpoints scored at steps 2, 4, 6: the best half go on at step 2, the
    rest keep a paused checkpoint; the hand-in is the ensemble of the methods' best candidates, scored on the
    held-out split as the mean of its members' probabilities, each at its validator's pick so far (a stopped member:
    the paused checkpoint's pick), recomputed here by hand."""
    import torch

    from hw3lib import checkpoint
    from hw3lib.train.uda.runs import load_models, mean_probabilities, target_sets

    base = UDAConfig(steps=6, epochs=0, batch_size=8, evals=3, device="cpu")
    names = ["dann", "mcc", "adamatch"]
    cands = develop.candidates(names)
    assert len(cands) == 6
    record = develop.develop(base, tiny_course_data, tmp_path / "runs", names=names, pairs=[("usps", "mnistm")],
                             holdout=10)
    entry = record["pairs"]["usps_mnistm"]
    assert entry["rung_steps"] == [2, 4]
    stopped = [s for s in entry["scores"] if s["stopped_at"]]
    went_on = [s for s in entry["scores"] if not s["stopped_at"]]
    assert len(went_on) == develop.kept(6, develop.RUNGS[0][1]) == 3 and {s["stopped_at"] for s in stopped} == {2}
    assert min(s["rungs"][0] for s in went_on) >= max(s["rungs"][0] for s in stopped)
    folders = {c.label: develop.run_folder(tmp_path / "runs", develop.candidate_config(
        base, c, "usps", "svhn", 0, holdout=10), c) for c in cands}
    payloads = {s["label"]: checkpoint.load(folders[s["label"]]) for s in entry["scores"]}
    for s in entry["scores"]:
        assert (payloads[s["label"]]["finished"], payloads[s["label"]]["step"]) == (
            (False, 2) if s["stopped_at"] else (True, 6))
    # The choice: each method's best candidate, best first; its score from the members' weights by hand.
    choice = entry["choice"]
    best = {}
    for s in sorted(entry["scores"], key=lambda s: -s["accuracy"]):
        best.setdefault(s["method"], s["label"])
    assert [m["label"] for m in choice["members"]] == list(best.values())
    assert entry["ensembles"] == [choice]
    held = target_sets(develop.candidate_config(base, cands[0], "usps", "svhn", 0, holdout=10), tiny_course_data)[1]
    classifiers = []
    for m in choice["members"]:
        payload = payloads[m["label"]]
        models, cfg = load_models(payload)
        clf = cfg.spec.classifier(models, cfg)
        if not payload["finished"]:  # stopped at its rung: the validator's pick so far
            clf.load_state_dict(payload["extra"]["selected"]["classifier"])
        alone = (mean_probabilities([clf], held.images).argmax(1) == held.labels).double().mean()
        assert float(alone) * 100 == pytest.approx(next(s["accuracy"] for s in entry["scores"]
                                                        if s["label"] == m["label"]))  # what its score read
        classifiers.append(clf)
    probs = mean_probabilities(classifiers, held.images)
    assert choice["accuracy"] == pytest.approx(round(float((probs.argmax(1) == held.labels).double().mean()) * 100, 2))
    # Exhaustive (no halving): every candidate finishes; a recorded halving choice is not this protocol's.
    assert develop.protocol(base, names, [0], 10, halve=False) != record["protocol"]
    del torch


def test_the_develop_command_runs_the_profiles_protocol_then_reuses_it(tiny_course_data, tmp_path, capsys):
    """``hw3 develop --profile P``: P4's recipe and candidates from the profile, the choices written beside the runs;
    run again, the recorded choices are loaded, nothing trains."""
    from hw3lib.cli import main

    profile = tmp_path / "tiny.yaml"
    profile.write_text(f"data_size: null\nruns_root: {tmp_path / 'runs'}\nfigures_dir: {tmp_path / 'figures'}\n"
                       "notebooks:\n  p4_uda:\n    steps: 2\n    batch_size: 8\n    evals: 1\n    methods: [mcc]\n"
                       "    dev_grid: false\n    dev_holdout: 10\n")
    args = ["develop", "--profile", str(profile), "--data", str(tiny_course_data), "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    file = tmp_path / "runs" / "p4_uda" / "choices.json"
    record = json.loads(file.read_text())
    assert set(record["pairs"]) == {"usps_mnistm", "mnistm_svhn", "svhn_usps"}
    assert [c["method"] for c in record["protocol"]["candidates"]] == ["dann", "mcc"]
    assert "usps → mnistm: development task usps → svhn" in out and out.count("← chosen") == 3
    assert f"choices developed here; written to {file}" in out
    assert main(args) == 0
    assert f"choices recorded in {file}" in capsys.readouterr().out


def test_the_shipped_choices_fit_the_quick_profiles_protocol(tmp_path):
    """The quick report on the embedded data loads ``report/choices/quick-embedded.json``; a grid, a method or a
    recipe changed without re-recording it would make every such report re-develop (96 runs) instead."""
    from hw3lib.project import recorded_choices
    from hw3lib.report.build import plan_report
    from hw3lib.problems import p4_uda
    from hw3lib.report.develop import development_params

    plan = plan_report("quick", tmp_path / "report", "cpu", only="p4")
    p = development_params(plan, tmp_path / "data")
    args = p4_uda.protocol_args(p)
    proto = json.loads(json.dumps(develop.protocol(p4_uda.base_config(p), args["names"], args["seeds"],
                                                   args["holdout"], args["knobs"], args["grid"], args["halve"])))
    shipped = [json.loads(f.read_text()) for f in recorded_choices()]
    assert any(r["protocol"] == proto for r in shipped), "re-make report/choices/ with hw3 develop --profile quick"
