"""CUDA checks (``benchmarks/gpu_check.sh`` runs them on a lent GPU).

* Every training loop runs on CUDA end to end with its defaults (bf16 autocast, channels_last, uint8 data on the
  device), logs finite losses, checkpoints, and reloads with ``weights_only=True`` (skipped without a GPU).
* The steps make no host synchronisation: between the first and the last step, with no log flush or checkpoint
  due, ``torch.cuda.set_sync_debug_mode("error")`` turns any ``.item()``/``.cpu()``/blocking copy into an error.
  Without a GPU these run on the CPU with a stand-in that checks the same property at the Python level: a call
  from code outside torch (hw3lib's) to a tensor method that brings a value to the host (``.item()``, ``.tolist()``,
  ``.cpu()``, ``.numpy()``, ``float()``, ``int()``, ``bool()``, ``if tensor:``) inside those steps raises. It cannot
  see syncs inside torch (a blocking copy, ``nonzero``); the GPU check does.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys

import pytest
import torch

import synthetic
from hw3lib.runtime import Runtime

# HW3_TEST_CUDA_DEVICE=cpu runs the CUDA end-to-end tests on the CPU, to check the tests themselves without a GPU.
CUDA = torch.device(os.environ.get("HW3_TEST_CUDA_DEVICE", "cuda"))
needs_cuda = pytest.mark.skipif(CUDA.type == "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA device: these GPU checks did NOT run here (benchmarks/gpu_check.sh "
                                       "runs them on a GPU)")
# The sync checks run on the GPU when there is one, else on the CPU with the Python-level stand-in.
SYNC = CUDA if CUDA.type != "cuda" or torch.cuda.is_available() else torch.device("cpu")
QUIET = 10**6  # log_every / ckpt_every / snapshot_every beyond the run: nothing is flushed or saved mid-run
HOST_PULLS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__index__", "__bool__")
_TORCH = os.path.dirname(torch.__file__)


_STRICT = [False]  # whether the step now running must make no host sync


def _set_strict(on: bool) -> None:
    _STRICT[0] = on
    if SYNC.type == "cuda":
        torch.cuda.set_sync_debug_mode("error" if on else "default")


def _unchecked(fn):
    """``fn`` with the check off while it runs: an evaluation a loop makes on purpose inside a step."""
    def call(*args, **kwargs):
        was = _STRICT[0]
        _set_strict(False)
        try:
            return fn(*args, **kwargs)
        finally:
            _set_strict(was)
    return call


@contextlib.contextmanager
def _python_host_pulls(strict: list[bool]):
    """While ``strict[0]``: a ``HOST_PULLS`` tensor method called by code outside torch (hw3lib's, or what it calls)
    raises: what would be a host sync on CUDA. torch's own calls are not checked (Adam reads its CPU step count
    with ``.item()``; on CUDA that tensor stays on the host too)."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_PULLS}

    def guard(name, orig):
        def pulled(self, *args, **kwargs):
            frame = sys._getframe(1)
            if strict[0] and not frame.f_code.co_filename.startswith(_TORCH):
                raise RuntimeError(f"host pull inside a training step: Tensor.{name} from "
                                   f"{frame.f_code.co_filename}:{frame.f_lineno}")
            return orig(self, *args, **kwargs)
        return pulled

    for name, orig in originals.items():
        setattr(torch.Tensor, name, guard(name, orig))
    try:
        yield
    finally:
        for name, orig in originals.items():
            setattr(torch.Tensor, name, orig)


@contextlib.contextmanager
def no_host_sync():
    """Make host syncs errors inside the steps 1 .. total-2 of every TrainLoop (step 0 warms up allocators and
    cuDNN; the last step may snapshot/evaluate): ``set_sync_debug_mode("error")`` on CUDA, the Python-level
    stand-in on the CPU. Yields the list of steps' strictness, for the test to check that steps were covered."""
    from hw3lib.train import loop as trainloop

    orig = trainloop.TrainLoop.__iter__
    checked: list[bool] = []

    def guarded(loop):
        try:
            for step in orig(loop):
                on = 1 <= step < loop.total_steps - 1
                _set_strict(on)
                checked.append(on)
                yield step
                _set_strict(False)
        finally:
            _set_strict(False)

    trainloop.TrainLoop.__iter__ = guarded
    try:
        with _python_host_pulls(_STRICT) if SYNC.type != "cuda" else contextlib.nullcontext():
            yield checked
    finally:
        trainloop.TrainLoop.__iter__ = orig


def test_the_stand_in_catches_a_host_pull_in_a_step(monkeypatch):
    """The check can fail: a step whose loss is read with ``.item()`` (as a naive loop logs it) is caught."""
    from hw3lib.train.vae import VAEConfig, train_vae
    from hw3lib.models.vae import VAE
    from hw3lib.train import loop as trainloop

    orig_log = trainloop.TrainLoop.log

    def eager_log(self, **values):  # a logging call that pulls every value to the host at every step
        return orig_log(self, **{k: (v.item() if torch.is_tensor(v) else v) for k, v in values.items()})

    monkeypatch.setattr(trainloop.TrainLoop, "log", eager_log)
    cfg = VAEConfig(batch_size=8, max_steps=4, log_every=QUIET, ckpt_every=QUIET, eval_every_epoch=False)
    with pytest.raises(RuntimeError, match="host pull inside a training step: Tensor.item|sync"):
        with no_host_sync():
            train_vae(VAE().to(SYNC), synthetic.faces(32, SYNC), None, cfg, runtime=Runtime.for_config(cfg, device=SYNC))


def _finite(history: dict) -> bool:
    return all(math.isfinite(v) for k, vs in history.items() if k not in ("step", "epoch") for v in vs
               if isinstance(v, float))


def test_vae_steps_make_no_host_sync():
    from hw3lib.models.vae import VAE
    from hw3lib.train.vae import VAEConfig, train_vae

    cfg = VAEConfig(batch_size=8, max_steps=6, log_every=QUIET, ckpt_every=QUIET, eval_every_epoch=False)
    with no_host_sync() as checked:
        h = train_vae(VAE().to(SYNC), synthetic.faces(32, SYNC), None, cfg,
                      runtime=Runtime.for_config(cfg, device=SYNC))
    assert sum(checked) == 4 and _finite(h) and h["loss"]


def test_gan_steps_make_no_host_sync():
    from hw3lib.train.gan import GANConfig, build_models, train_gan

    width = {} if SYNC.type == "cuda" else {"ngf": 16, "ndf": 16}  # the code path, not the width, is checked
    cfg = GANConfig(epochs=100, batch_size=8, max_steps=6, log_every=QUIET, ckpt_every=QUIET, snapshot_every=QUIET,
                    **width)
    g, d = build_models(cfg, SYNC)
    with no_host_sync() as checked:
        h = train_gan(g, d, synthetic.faces(32, SYNC), cfg, runtime=Runtime.for_config(cfg, device=SYNC))
    assert sum(checked) == 4 and _finite(h) and h["loss_D"]


@pytest.mark.parametrize("method", ["dann", "source-only", "gta"])
def test_uda_steps_make_no_host_sync(method, monkeypatch):
    from hw3lib.train.uda import UDAConfig
    from hw3lib.train.uda import loop as uda_loop

    from hw3lib.train.loop import TrainLoop

    # GTA's warm start ends with an evaluation logged per epoch (warm_target_acc, at step 1 here): syncs on
    # purpose, like a scoring point
    monkeypatch.setattr(uda_loop, "accuracy", _unchecked(uda_loop.accuracy))
    monkeypatch.setattr(TrainLoop, "log_epoch", _unchecked(TrainLoop.log_epoch))

    src, tgt = synthetic.digits("usps", 64, device=SYNC), synthetic.digits("mnistm", 64, seed=1, device=SYNC)
    tgt_test = synthetic.digits("mnistm", 16, seed=2, device=SYNC)
    extra = {"warmup_steps": 2, **({} if SYNC.type == "cuda" else {"knobs": {"ndf": 16, "ngf": 16}})} \
        if method == "gta" else {}
    cfg = UDAConfig(method=method, steps=6, batch_size=16, evals=0, log_every=QUIET, ckpt_every=QUIET,
                    bn_eval="running", device=str(SYNC), **extra).validate()
    with no_host_sync() as checked:
        h = synthetic.fit(cfg, src, tgt, tgt_test).history
    assert sum(checked) >= 4 and _finite(h)


@needs_cuda
@pytest.mark.parametrize("method", ["dann", "gta"])
def test_uda_trains_on_cuda_end_to_end_and_reloads(method, tiny_embedded_data, tmp_path):
    """Default settings on CUDA (bf16 autocast): logs flushed several times (a Python float like DANN's λ beside
    device tensors), a checkpoint written and reloaded, predictions on CUDA."""
    from hw3lib import checkpoint
    from hw3lib.train.uda import UDAConfig, train_or_load, train_uda

    extra = {"warmup_steps": 4, "knobs": {"ndf": 16, "ngf": 16}} if method == "gta" else {}
    cfg = UDAConfig(method=method, steps=24, batch_size=16, log_every=5, evals=2, device=str(CUDA), **extra)
    r = train_uda(cfg, tiny_embedded_data, tmp_path / "run")
    assert _finite(r.history) and len(r.history["step"]) >= 4
    assert 0.0 <= r.metrics["target_acc"] <= 100.0
    payload = checkpoint.load(tmp_path / "run")  # weights_only=True inside
    assert payload["finished"] and payload["step"] == cfg.total_steps
    again = train_or_load(cfg, tiny_embedded_data, tmp_path / "run")
    assert not again.trained and again.metrics["target_acc"] == pytest.approx(r.metrics["target_acc"])


@needs_cuda
def test_vae_and_gan_train_on_cuda_end_to_end(tiny_embedded_data, tmp_path):
    from hw3lib.train import gan as gan_train
    from hw3lib.train import vae as vae_train

    v = vae_train.train_or_load(vae_train.VAEConfig(epochs=2, batch_size=8, log_every=2, device=str(CUDA)),
                                tiny_embedded_data, tmp_path / "vae")
    assert _finite(v.history) and v.history["test_mse"] and next(v.model.parameters()).device.type == CUDA.type
    r = gan_train.train_or_load(gan_train.GANConfig(epochs=2, batch_size=8, log_every=2, device=str(CUDA)),
                                tiny_embedded_data, tmp_path / "gan")
    assert _finite(r.history) and r.snapshots["images"].dtype == torch.uint8
