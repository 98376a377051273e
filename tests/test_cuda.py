"""CUDA checks (skipped without a GPU; ``benchmarks/gpu_check.sh`` runs them on a lent one).

* Every training loop runs on CUDA end to end with its defaults (bf16 autocast, channels_last, uint8 data on the
  device), logs finite losses, checkpoints, and reloads with ``weights_only=True``.
* The steps make no host synchronisation: between the first and the last step, with no log flush or checkpoint
  due, ``torch.cuda.set_sync_debug_mode("error")`` turns any ``.item()``/``.cpu()``/blocking copy into an error.
"""
from __future__ import annotations

import contextlib
import math
import os

import pytest
import torch

import synthetic
from hw3lib.runtime import Runtime

# HW3_TEST_CUDA_DEVICE=cpu runs these on the CPU (sync checks off) to check the tests themselves without a GPU.
CUDA = torch.device(os.environ.get("HW3_TEST_CUDA_DEVICE", "cuda"))
pytestmark = pytest.mark.skipif(CUDA.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")
QUIET = 10**6  # log_every / ckpt_every / snapshot_every beyond the run: nothing is flushed or saved mid-run


@contextlib.contextmanager
def no_host_sync():
    """Make host syncs errors inside the steps 1 .. total-2 of every TrainLoop (step 0 warms up allocators and
    cuDNN; the last step may snapshot/evaluate)."""
    from hw3lib.train import loop as trainloop

    orig = trainloop.TrainLoop.__iter__
    checked = []
    if CUDA.type != "cuda":
        yield [True] * 4
        return

    def guarded(loop):
        try:
            for step in orig(loop):
                strict = 1 <= step < loop.total_steps - 1
                torch.cuda.set_sync_debug_mode("error" if strict else "default")
                checked.append(strict)
                yield step
                torch.cuda.set_sync_debug_mode("default")
        finally:
            torch.cuda.set_sync_debug_mode("default")
    trainloop.TrainLoop.__iter__ = guarded
    try:
        yield checked
    finally:
        trainloop.TrainLoop.__iter__ = orig


def _finite(history: dict) -> bool:
    return all(math.isfinite(v) for k, vs in history.items() if k not in ("step", "epoch") for v in vs
               if isinstance(v, float))


def test_vae_steps_make_no_host_sync():
    from hw3lib.models.vae import VAE
    from hw3lib.train.vae import VAEConfig, train_vae

    cfg = VAEConfig(batch_size=8, max_steps=6, log_every=QUIET, ckpt_every=QUIET, eval_every_epoch=False)
    with no_host_sync() as checked:
        h = train_vae(VAE().to(CUDA), synthetic.faces(32, CUDA), None, cfg,
                      runtime=Runtime.for_config(cfg, device=CUDA))
    assert sum(checked) == 4 and _finite(h) and h["loss"]


def test_gan_steps_make_no_host_sync():
    from hw3lib.train.gan import GANConfig, build_models, train_gan

    cfg = GANConfig(epochs=100, batch_size=8, max_steps=6, log_every=QUIET, ckpt_every=QUIET, snapshot_every=QUIET)
    g, d = build_models(cfg, CUDA)
    with no_host_sync() as checked:
        h = train_gan(g, d, synthetic.faces(32, CUDA), cfg, runtime=Runtime.for_config(cfg, device=CUDA))
    assert sum(checked) == 4 and _finite(h) and h["loss_D"]


@pytest.mark.parametrize("method", ["dann", "source-only", "gta"])
def test_uda_steps_make_no_host_sync(method):
    from hw3lib.train.uda import UDAConfig

    src, tgt = synthetic.digits("usps", 64, device=CUDA), synthetic.digits("mnistm", 64, seed=1, device=CUDA)
    tgt_test = synthetic.digits("mnistm", 16, seed=2, device=CUDA)
    extra = {"warmup_steps": 2} if method == "gta" else {}
    cfg = UDAConfig(method=method, steps=6, batch_size=16, evals=0, log_every=QUIET, ckpt_every=QUIET,
                    bn_eval="running", device=str(CUDA), **extra).validate()
    with no_host_sync() as checked:
        h = synthetic.fit(cfg, src, tgt, tgt_test).history
    assert sum(checked) >= 4 and _finite(h)


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


def test_vae_and_gan_train_on_cuda_end_to_end(tiny_embedded_data, tmp_path):
    from hw3lib.train import gan as gan_train
    from hw3lib.train import vae as vae_train

    v = vae_train.train_or_load(vae_train.VAEConfig(epochs=2, batch_size=8, log_every=2, device=str(CUDA)),
                                tiny_embedded_data, tmp_path / "vae")
    assert _finite(v.history) and v.history["test_mse"] and next(v.model.parameters()).device.type == CUDA.type
    r = gan_train.train_or_load(gan_train.GANConfig(epochs=2, batch_size=8, log_every=2, device=str(CUDA)),
                                tiny_embedded_data, tmp_path / "gan")
    assert _finite(r.history) and r.snapshots["images"].dtype == torch.uint8
