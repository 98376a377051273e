"""Problem 3/4 command line: ``hw3 train uda``, ``hw3 predict`` (course hw3_p3.sh interface) and ``hw3 eval``."""
from __future__ import annotations

import re
import shutil

import pytest
import torch

from hw3lib import checkpoint
from hw3lib.cli import main
from hw3lib.data.loaders import load_digits
from hw3lib.data.transforms import resize
from hw3lib.eval.uda import accuracy, predict_logits
from hw3lib.train.uda import load_models


@pytest.fixture(scope="module")
def trained(tiny_course_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("uda_cli") / "dann_usps_mnistm_s0"
    rc = main(["train", "uda", "--method", "dann", "--source", "usps", "--target", "mnistm",
               "--data", str(tiny_course_data), "--out", str(run), "--steps", "3", "--batch-size", "8",
               "--device", "cpu"])
    assert rc == 0
    return tiny_course_data, run


def _acc(capsys) -> float:
    out = capsys.readouterr().out
    return float(re.search(r"accuracy ([0-9.]+)%", out).group(1))


def test_predict_eval_round_trip_matches_library(trained, tmp_path, capsys):
    data, run = trained
    pred = tmp_path / "pred.csv"
    images = data / "digits" / "mnistm" / "test"
    assert main(["predict", "--ckpt", str(run), "--images", str(images), "--target", "mnistm",
                 "--out", str(pred), "--device", "cpu"]) == 0
    lines = pred.read_text().splitlines()
    names = sorted(p.name for p in images.glob("*.png"))
    assert lines[0] == "image_name,label" and [ln.split(",")[0] for ln in lines[1:]] == names
    capsys.readouterr()
    assert main(["eval", str(pred), str(data / "digits" / "mnistm" / "test.csv")]) == 0
    cli_acc = _acc(capsys)
    nets, config = load_models(run)
    lib_acc = accuracy(config.spec.classifier(nets, config), load_digits(data, "mnistm", "test"))
    assert cli_acc == pytest.approx(lib_acc, abs=0.006)


def test_predict_picks_run_by_target_from_parent_folder(trained, tmp_path, capsys):
    data, run = trained
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--ckpt", str(run.parent), "--images", str(data / "digits" / "mnistm" / "test"),
                 "--target", "mnistm", "--out", str(pred), "--device", "cpu"]) == 0
    assert main(["predict", "--ckpt", str(run.parent), "--images", str(data / "digits" / "svhn" / "test"),
                 "--target", "svhn", "--out", str(pred)]) == 2
    assert main(["predict", "--ckpt", str(run), "--images", str(data / "digits" / "svhn" / "test"),
                 "--target", "svhn", "--out", str(pred)]) == 2
    assert "hw3: error:" in capsys.readouterr().err


def test_eval_errors(tmp_path, capsys):
    gt = tmp_path / "gt.csv"
    gt.write_text("image_name,label\na.png,1\nb.png,2\n")
    cases = {"missing": "image_name,label\na.png,1\n", "extra": "image_name,label\na.png,1\nb.png,2\nc.png,3\n",
             "duplicate": "image_name,label\na.png,1\na.png,1\nb.png,2\n", "columns": "name,label\na.png,1\n"}
    for name, text in cases.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text)
        assert main(["eval", str(p), str(gt)]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("hw3: error:") and len(err.strip().splitlines()) == 1
    good = tmp_path / "good.csv"
    good.write_text("image_name,label\nb.png,2\na.png,0\n")
    assert main(["eval", str(good), str(gt)]) == 0
    assert _acc(capsys) == 50.0


@pytest.mark.parametrize("args", [
    ["--method", "magic", "--source", "usps", "--target", "mnistm"],
    ["--source", "mnist", "--target", "mnistm"],
    ["--source", "usps", "--target", "usps"],
    ["--source", "usps", "--target", "mnistm", "--steps", "-5"],
])
def test_train_bad_args_one_line_errors(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        rc = main(["train", "uda", *args, "--data", str(tmp_path), "--out", str(tmp_path / "r")])
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_predict_missing_folder_and_checkpoint(trained, tmp_path, capsys):
    data, run = trained
    assert main(["predict", "--ckpt", str(run), "--images", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "p.csv")]) == 2
    empty = tmp_path / "empty"
    shutil.copytree(run, empty / "x")
    (empty / "x" / "checkpoint.pt").unlink()
    assert main(["predict", "--ckpt", str(empty), "--images", str(data / "digits" / "usps" / "test"),
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "hw3: error:" in capsys.readouterr().err


def test_gta_cli_train_takes_batch_and_lr_and_predict_matches_library(tiny_course_data, tmp_path, capsys):
    """The course's hw3_p4.sh job: ``hw3 train uda --method gta`` then ``hw3 predict`` on its checkpoint, which must
    feed netF the same normalised inputs as training (Normalize(0.44, 0.19))."""
    from hw3lib import checkpoint
    data, run = tiny_course_data, tmp_path / "gta_svhn_usps_s0"
    assert main(["train", "uda", "--method", "gta", "--source", "svhn", "--target", "usps", "--data", str(data),
                 "--out", str(run), "--steps", "2", "--batch-size", "8", "--lr", "0.0002", "--device", "cpu"]) == 0
    config = checkpoint.load(run)["config"]
    assert config["batch_size"] == 8 and config["lr"] == 0.0002 and config["knobs"]["in_mean"] == 0.44
    pred = tmp_path / "pred.csv"
    images = data / "digits" / "usps" / "test"
    assert main(["predict", "--ckpt", str(run), "--images", str(images), "--target", "usps", "--out", str(pred),
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["eval", str(pred), str(data / "digits" / "usps" / "test.csv")]) == 0
    test = load_digits(data, "usps", "test")
    nets, config = load_models(run)
    classifier = config.spec.classifier(nets, config)
    with torch.no_grad():  # the public main.py's input pipeline, written out: Resize(32), ToTensor, Normalize
        x = (resize(test.images.float(), 32).clamp(0, 255) / 255 - 0.44) / 0.19
        manual = nets["netC"](nets["netF"](x))
    torch.testing.assert_close(predict_logits(classifier, test.images), manual, rtol=1e-4, atol=1e-4)
    by_name = dict(ln.split(",") for ln in pred.read_text().splitlines()[1:])
    assert [int(by_name[n]) for n in test.names] == manual.argmax(1).tolist()
    assert _acc(capsys) == pytest.approx(accuracy(classifier, test), abs=0.006)


def test_train_into_a_folder_of_another_config_refuses_and_keeps_it(trained, tmp_path, capsys):
    data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = (copy / "checkpoint.pt").read_bytes()
    assert checkpoint.load(copy)["extra"]["wall_s"] > 0  # for hw3 results
    rc = main(["train", "uda", "--method", "dann", "--source", "usps", "--target", "mnistm", "--data", str(data),
               "--out", str(copy), "--steps", "4", "--batch-size", "8", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "another config (steps 3 → 4)" in err and "nothing was overwritten" in err and str(copy) in err
    assert (copy / "checkpoint.pt").read_bytes() == before
    # the same config is still loaded (finished), and another method refuses too
    assert main(["train", "uda", "--method", "dann", "--source", "usps", "--target", "mnistm", "--data", str(data),
                 "--out", str(copy), "--steps", "3", "--batch-size", "8", "--device", "cpu"]) == 0
    assert main(["train", "uda", "--method", "mcc", "--source", "usps", "--target", "mnistm", "--data", str(data),
                 "--out", str(copy), "--steps", "3", "--batch-size", "8", "--device", "cpu"]) == 2
    assert "another config (method 'dann' → 'mcc')" in capsys.readouterr().err


def test_library_runs_of_another_config_go_beside_the_old_one(trained, tmp_path):
    from hw3lib.runtime import cpu
    from hw3lib.train.configs import config_from, config_hash
    from hw3lib.train.uda import UDAConfig, train_or_load

    data, run = trained
    copy = tmp_path / "dann_usps_mnistm_s0"
    shutil.copytree(run, copy)
    before = (copy / "checkpoint.pt").read_bytes()
    old = config_from(UDAConfig, checkpoint.load(copy)["config"])
    new = config_from(UDAConfig, {**checkpoint.load(copy)["config"], "steps": 4})
    r = train_or_load(new, data, copy, runtime=cpu())  # a notebook whose parameter changed
    assert r.trained and r.run_dir == tmp_path / f"dann_usps_mnistm_s0-{config_hash(new)}"
    assert (copy / "checkpoint.pt").read_bytes() == before  # the old run is untouched
    assert not train_or_load(new, data, copy, runtime=cpu()).trained  # both configs now load from their folders
    again = train_or_load(old, data, copy, runtime=cpu())
    assert not again.trained and again.run_dir == copy


def test_a_run_on_other_data_is_never_loaded_as_this_datas_run(trained, tiny_embedded_data, tmp_path, capsys):
    from hw3lib.data import data_id
    from hw3lib.runtime import cpu
    from hw3lib.train.configs import config_from
    from hw3lib.train.uda import UDAConfig, train_or_load

    data, run = trained
    copy = tmp_path / "dann_usps_mnistm_s0"
    shutil.copytree(run, copy)
    cfg = config_from(UDAConfig, checkpoint.load(copy)["config"])
    assert cfg.data_id == data_id(data, ("usps", "mnistm"))
    # The same images under a manifest (embedded data) are another data set: trained beside, not loaded.
    other = train_or_load(cfg, tiny_embedded_data, copy, runtime=cpu())
    assert other.trained and other.run_dir != copy and other.config.data_id != cfg.data_id
    assert not train_or_load(cfg, data, copy, runtime=cpu()).trained
    # A changed label in a course CSV changes the id; an identical copy of the folder keeps it.
    same, changed = tmp_path / "same", tmp_path / "changed"
    for root in (same, changed):
        shutil.copytree(data, root, ignore=shutil.ignore_patterns(".cache"))
    csv = changed / "digits" / "mnistm" / "train.csv"
    lines = csv.read_text().splitlines()
    name, label = lines[1].split(",")
    lines[1] = f"{name},{(int(label) + 1) % 10}"
    csv.write_text("\n".join(lines) + "\n")
    assert data_id(same, ("usps", "mnistm")) == cfg.data_id != data_id(changed, ("usps", "mnistm"))
    assert data_id(changed, ("usps", "svhn")) == data_id(data, ("usps", "svhn"))
    # The CLI's explicit --out refuses in one line, naming what differs.
    capsys.readouterr()
    rc = main(["train", "uda", "--method", "dann", "--source", "usps", "--target", "mnistm", "--data", str(changed),
               "--out", str(copy), "--steps", "3", "--batch-size", "8", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "data_id" in err, err
