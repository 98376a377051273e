"""Core plumbing: batches, checkpoints, the shared train loop (resume, divergence, interruption)."""
from __future__ import annotations

import os
import pickle
import signal
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from hw3lib import checkpoint
from hw3lib.data.batches import Batches, in_order
from hw3lib.device import get_device, seed_everything
from hw3lib.runtime import cpu
from hw3lib.train.folders import finished_checkpoint
from hw3lib.train.loop import DivergenceError, Interrupted, TrainLoop


def test_batches_cover_each_epoch_once_and_depend_only_on_seed_and_epoch():
    x = torch.arange(100)
    b = Batches(x, batch_size=10, seed=3)
    assert len(b) == 10
    seen = torch.cat([bx for (bx,) in b.epoch(0)])
    assert sorted(seen.tolist()) == list(range(100))
    assert torch.equal(torch.cat([bx for (bx,) in b.epoch(1)]), torch.cat([bx for (bx,) in Batches(x, batch_size=10, seed=3).epoch(1)]))
    assert not torch.equal(torch.cat([bx for (bx,) in b.epoch(0)]), torch.cat([bx for (bx,) in b.epoch(1)]))


def test_batches_forever_resumes_at_any_step():
    x = torch.arange(37)
    full = [bx for _, (bx,) in zip(range(20), Batches(x, batch_size=8, seed=1).forever())]
    resumed = [bx for _, (bx,) in zip(range(13), Batches(x, batch_size=8, seed=1).forever(start_step=7))]
    assert all(torch.equal(a, b) for a, b in zip(full[7:], resumed))


def test_batches_ranks_partition_the_global_batch():
    x = torch.arange(64)
    single = [bx for (bx,) in Batches(x, batch_size=16, seed=0).epoch(2)]
    ranks = [[bx for (bx,) in Batches(x, batch_size=16, seed=0, rank=r, world_size=2).epoch(2)] for r in range(2)]
    for i, batch in enumerate(single):
        merged = torch.cat([ranks[0][i], ranks[1][i]])
        assert sorted(merged.tolist()) == sorted(batch.tolist())
        assert len(ranks[0][i]) == 8


def test_batches_tiny_dataset_still_yields_and_errors_are_clear():
    assert len(Batches(torch.arange(5), batch_size=64)) == 1
    with pytest.raises(ValueError, match="batch_size"):
        Batches(torch.arange(5), batch_size=0)
    with pytest.raises(ValueError, match="differ in length"):
        Batches(torch.arange(5), torch.arange(4), batch_size=2)
    assert [len(b) for (b,) in in_order(torch.arange(10), batch_size=4)] == [4, 4, 2]


def test_checkpoint_roundtrip_and_atomic(tmp_path):
    path = checkpoint.save({"kind": "x", "models": {"m": {"w": torch.ones(2)}}, "history": {"a": [1.0]}}, tmp_path / "r" / "checkpoint.pt")
    payload = checkpoint.load(tmp_path / "r")
    assert payload["kind"] == "x" and torch.equal(payload["models"]["m"]["w"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp files left


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/hw3_pwned_marker",))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = "/tmp/hw3_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    bad = tmp_path / "checkpoint.pt"
    with open(bad, "wb") as f:
        pickle.dump({"format": 1, "models": _Evil()}, f)
    with pytest.raises(ValueError, match="not a safe hw3lib checkpoint"):
        checkpoint.load(bad)
    assert not os.path.exists(marker)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="checkpoint not found"):
        checkpoint.load(tmp_path / "nope")


def test_device_choice():
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError):
        get_device("banana")


@dataclass
class ToyConfig:
    steps: int = 30
    lr: float = 0.1
    seed: int = 0
    ckpt_every: int = 7
    log_every: int = 5
    max_steps: int | None = None


def _toy_run(run_dir, config, stop_after=None, poison_at=None):
    seed_everything(config.seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=config.lr)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = x.sum(1, keepdim=True)
    loop = TrainLoop("toy", config, cpu(), models={"m": model}, optimizers={"o": opt}, total_steps=config.steps,
                     run_dir=run_dir)
    loop.resume()
    batches = Batches(x, y, batch_size=16, seed=config.seed).forever(loop.step)
    for step in loop:
        bx, by = next(batches)
        loss = nn.functional.mse_loss(model(bx), by)
        if poison_at is not None and step >= poison_at:
            loss = loss * float("nan")
        opt.zero_grad()
        loss.backward()
        opt.step()
        loop.log(loss=loss)
        if stop_after is not None and step + 1 == stop_after:
            os.kill(os.getpid(), signal.SIGINT)
    return model, loop.history


def test_trainloop_interrupt_then_resume_matches_uninterrupted(tmp_path):
    cfg = ToyConfig()
    ref_model, ref_hist = _toy_run(tmp_path / "ref", cfg)
    with pytest.raises(Interrupted):
        _toy_run(tmp_path / "cut", cfg, stop_after=12)
    assert checkpoint.load(tmp_path / "cut")["step"] == 12
    model, hist = _toy_run(tmp_path / "cut", cfg)
    for a, b in zip(ref_model.state_dict().values(), model.state_dict().values()):
        assert torch.allclose(a, b)
    assert hist["loss"] == pytest.approx(ref_hist["loss"])
    assert finished_checkpoint(tmp_path / "cut", "toy", cfg) is not None
    assert finished_checkpoint(tmp_path / "cut", "toy", ToyConfig(lr=0.2)) is None


def test_trainloop_divergence_keeps_last_good_checkpoint(tmp_path):
    cfg = ToyConfig()
    with pytest.raises(DivergenceError, match="loss loss became nan"):
        _toy_run(tmp_path, cfg, poison_at=16)
    payload = checkpoint.load(tmp_path)
    assert payload["step"] == 14 and not payload["finished"]
    assert all(v == v for v in payload["history"]["loss"])  # no NaN was saved


def test_eval_mode_restores_each_mode_even_on_error():
    from hw3lib.runtime import eval_mode, train_mode

    a, b = nn.BatchNorm1d(2).train(), nn.BatchNorm1d(2).eval()
    with eval_mode(a, b):
        assert not a.training and not b.training
    assert a.training and not b.training
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(a), train_mode(b):
            assert not a.training and b.training
            raise RuntimeError("boom")
    assert a.training and not b.training


def test_save_grid_uint8_and_float_write_the_same_png(tmp_path):
    from PIL import Image

    from hw3lib.data.images import save_grid

    x = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = save_grid(x, tmp_path / "a.png", nrow=4)
    b = save_grid(x.float() / 255, tmp_path / "sub" / "b.png", nrow=4)
    assert a.read_bytes() == b.read_bytes()
    with Image.open(a) as im:
        assert im.size == (4 * 10 + 2, 3 * 10 + 2)  # 3 rows of 4 tiles, torchvision's 2-px padding
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "b.png"]  # no temp files
