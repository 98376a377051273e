"""bf16 autocast (``amp``): what it resolves to, that losses stay float32, and that a bf16 training step computes
what the float32 step computes to bf16 precision.

On CUDA ``amp="auto"`` turns bf16 autocast on; on the CPU it stays off (no bf16 arithmetic on these cores), so the
CPU numbers of every profile are untouched. The CPU runs ``amp="bf16"`` here through CPU autocast, which exercises
the same code paths (casts, float32 losses and heads) that a GPU run takes.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

import synthetic
from hw3lib.device import amp_dtype, autocast
from hw3lib.models import build
from hw3lib.runtime import Runtime

CPU = torch.device("cpu")
BF16 = torch.bfloat16


def test_amp_modes_resolve_per_device():
    assert amp_dtype("auto", "cpu") is None            # CPU: float32
    assert amp_dtype("off", "cpu") is None
    assert amp_dtype("bf16", "cpu") is BF16
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        assert amp_dtype("auto", "cuda") is BF16
    with pytest.raises(ValueError, match="unknown amp mode 'fp8'"):
        amp_dtype("fp8", "cpu")
    lin = torch.nn.Linear(4, 4)
    ctx = autocast(CPU, "bf16")
    for _ in range(2):  # one context object serves every step
        with ctx:
            assert lin(torch.randn(2, 4)).dtype is BF16
    with autocast(CPU, "auto"):
        assert lin(torch.randn(2, 4)).dtype is torch.float32


def test_bad_amp_mode_is_rejected_by_the_uda_config():
    from hw3lib.train.uda import UDAConfig
    with pytest.raises(ValueError, match="unknown amp mode 'half'"):
        UDAConfig(amp="half").validate()


def test_amp_does_not_change_run_identity():
    """A run trained in bf16 on a GPU and one trained in float32 on the CPU are the same run for train-or-load."""
    from hw3lib.train.configs import same_config
    from hw3lib.train.gan import GANConfig
    from hw3lib.train.uda import UDAConfig
    from hw3lib.train.vae import VAEConfig
    for cfg in (VAEConfig(), GANConfig(), UDAConfig()):
        a = dataclasses.asdict(cfg)
        assert a["amp"] == "auto"
        assert same_config(a, {**a, "amp": "off"})


def test_losses_are_float32_under_autocast():
    from hw3lib.models.vae import VAEOutput, vae_loss
    from hw3lib.train.gan import gan_loss
    from hw3lib.methods import nll
    from hw3lib.methods.gta import class_loss, realfake_loss

    p = torch.full((8,), 0.3, dtype=BF16)
    logits = torch.randn(8, 10).to(BF16)
    y = torch.arange(8)
    out = VAEOutput(torch.zeros(2, 3, 4, 4, dtype=BF16), torch.zeros(2, 5, dtype=BF16), torch.zeros(2, 5, dtype=BF16))
    with torch.autocast("cpu", dtype=BF16):
        losses = [gan_loss(p, 1.0), realfake_loss(p, False), class_loss(logits, y),
                  nll(torch.log_softmax(logits.float(), 1).to(BF16), y), vae_loss(out, torch.zeros(2, 3, 4, 4)).loss]
    assert all(loss.dtype is torch.float32 for loss in losses)
    assert float(gan_loss(p, 1.0)) == pytest.approx(-torch.log(torch.tensor(0.3)).item(), rel=1e-2)


@pytest.mark.parametrize("name,shape", [("gta-netD", (4, 3, 32, 32)), ("dcgan-discriminator", (4, 3, 64, 64))])
def test_confident_discriminator_keeps_a_finite_loss_in_bf16(name, shape):
    """A bf16 Sigmoid rounds p = sigmoid(7) = 0.99909 to 1.0 (spacing 2^-8 near 1), and BCE against "fake" then
    reads log(1 - 1) (clamped to 100, with a 1e12 gradient). The discriminators apply their Sigmoid to a float32
    logit, so the loss stays -log(1 - sigmoid(7)) = 7.0009."""
    from hw3lib.train.gan import gan_loss
    from hw3lib.methods.gta import realfake_loss

    torch.manual_seed(0)
    net = build(name).eval()
    last = net.classifier_s[0] if name == "gta-netD" else net.main[-2]
    with torch.no_grad():
        last.weight.zero_()
        if name == "gta-netD":
            last.bias.fill_(7.0)
    if name == "dcgan-discriminator":
        # No bias in DCGAN's last conv: a constant input channel of the right size gives the same logit.
        net.main[-2].register_forward_hook(lambda m, i, o: torch.full_like(o, 7.0))
    with torch.autocast("cpu", dtype=BF16):
        out = net(torch.randn(shape))
    prob = out.realfake if name == "gta-netD" else out
    assert prob.dtype is torch.float32 and float(prob.max()) < 1.0
    loss = realfake_loss(prob, False) if name == "gta-netD" else gan_loss(prob, 0.0)
    assert float(loss) == pytest.approx(7.0009, abs=1e-3)


def _after_update(history: dict, keys: tuple[str, ...]) -> dict[str, float]:
    """The losses logged at the second step: its forward pass runs on the weights the first update made."""
    assert all(len(history[k]) >= 2 for k in keys), {k: len(history[k]) for k in keys}
    return {k: history[k][1] for k in keys}


def _params_float32(*nets: torch.nn.Module) -> bool:
    return all(p.dtype is torch.float32 for n in nets for p in n.parameters())


def _assert_close(a: dict, b: dict, rel: float = 3e-2, abs_: float = 2e-3) -> None:
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=rel, abs=abs_), f"{k}: float32 {a[k]} vs bf16 {b[k]}"


def _assert_same_updates(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> None:
    """Each optimiser's weight change (plain SGD: -lr times the summed gradients) in bf16 has float32's size to
    10 % and its direction to 85 % of its norm. bf16 keeps 8 significant bits, and a conv before a train-mode
    BatchNorm gets its weight gradient from a difference of nearly equal terms, so the directions differ by up to
    69 % on these batches of 8 (GTA's G; 2-21 % for the other nets) while the sizes agree to 5 %. A bug in the bf16
    step misses one or the other: an update skipped (size 0), a gradient scaled (size x2), a sign flipped
    (direction off by 200 %), the gradient of other weights (~140 %)."""
    assert len(a) == len(b) > 0
    for i, (xs, ys) in enumerate(zip(a, b)):
        x, y = torch.cat([t.flatten() for t in xs]), torch.cat([t.flatten() for t in ys])
        assert float(x.norm()) > 0, f"optimiser {i} changed no weight"
        size, off = float(y.norm() / x.norm()), float((x - y).norm() / x.norm())
        assert 0.9 <= size <= 1.1 and off <= 0.85, \
            f"optimiser {i}: bf16's weight change is {size:.2f}x float32's, off by {off:.0%} of its norm"


def test_vae_step_in_bf16_matches_float32():
    from hw3lib.models.vae import VAE
    from hw3lib.train.vae import VAEConfig, train_vae

    got, changes = {}, {}
    for amp in ("off", "bf16"):
        torch.manual_seed(0)
        model = VAE(latent_dim=32)
        cfg = VAEConfig(batch_size=8, max_steps=2, log_every=1, eval_every_epoch=False, amp=amp)
        torch.manual_seed(1)  # reparameterisation noise
        with synthetic.plain_sgd() as changed:
            h = train_vae(model, synthetic.faces(), None, cfg, runtime=Runtime.for_config(cfg, device=CPU))
        changes[amp] = changed()
        assert _params_float32(model) and all(torch.isfinite(torch.tensor(h["loss"])))
        got[amp] = _after_update(h, ("mse", "kld"))
    _assert_close(got["off"], got["bf16"])
    _assert_same_updates(changes["off"], changes["bf16"])


def test_gan_step_in_bf16_matches_float32():
    from hw3lib.train.gan import GANConfig, build_models, train_gan

    got, changes = {}, {}
    for amp in ("off", "bf16"):
        cfg = GANConfig(epochs=1, batch_size=8, ngf=8, ndf=8, max_steps=2, log_every=1, amp=amp)
        g, d = build_models(cfg)
        with synthetic.plain_sgd() as changed:
            h = train_gan(g, d, synthetic.faces(), cfg, runtime=Runtime.for_config(cfg, device=CPU))
        changes[amp] = changed()
        assert _params_float32(g, d)
        got[amp] = _after_update(h, ("loss_D", "loss_G", "D_x", "D_G_z1"))
    _assert_close(got["off"], got["bf16"])
    _assert_same_updates(changes["off"], changes["bf16"])


def test_dann_step_in_bf16_matches_float32():
    from hw3lib.train.uda import UDAConfig

    src, tgt = synthetic.digits("usps"), synthetic.digits("mnistm", seed=1)
    tgt_test = synthetic.digits("mnistm", 8, seed=2)
    got, changes = {}, {}
    for amp in ("off", "bf16"):  # the same seed: the same initial weights and dropout masks
        cfg = UDAConfig(method="dann", steps=2, batch_size=8, evals=0, log_every=1, amp=amp, device="cpu")
        with synthetic.plain_sgd() as changed:
            r = synthetic.fit(cfg, src, tgt, tgt_test)
        changes[amp] = changed()
        assert _params_float32(*r.models.values())
        got[amp] = _after_update(r.history, ("label_loss", "domain_loss", "lam"))
    _assert_close(got["off"], got["bf16"])
    _assert_same_updates(changes["off"], changes["bf16"])


def test_gta_step_in_bf16_matches_float32():
    from hw3lib.train.uda import UDAConfig

    src, tgt = synthetic.digits("usps"), synthetic.digits("mnistm", seed=1)
    got, changes = {}, {}
    for amp in ("off", "bf16"):  # the same seed: the same initial weights and G's noise
        cfg = UDAConfig(method="gta", steps=3, log_every=1, amp=amp, device="cpu",
                        batch_size=8, warmup_steps=1, knobs={"ndf": 8, "ngf": 8, "nz": 16})
        with synthetic.plain_sgd() as changed:
            r = synthetic.fit(cfg, src, tgt)
        changes[amp] = changed()
        h = r.history
        assert _params_float32(*r.models.values())
        # step 0 is the warm start (errC only); steps 1 and 2 are GTA steps, whose D/G/F losses start the lists
        got[amp] = _after_update(h, ("errC", "errD", "errG", "d_real", "d_fake_src"))
    _assert_close(got["off"], got["bf16"])
    _assert_same_updates(changes["off"], changes["bf16"])


@pytest.mark.parametrize("command", [["vae", "--epochs", "1"], ["gan", "--epochs", "1"],
                                     ["uda", "--method", "dann", "--source", "usps", "--target", "mnistm"]])
def test_cli_amp_flag_reaches_the_config(command, tiny_course_data, tmp_path):
    from hw3lib import checkpoint
    from hw3lib.cli import main

    out = tmp_path / "run"
    assert main(["train", *command, "--data", str(tiny_course_data), "--out", str(out), "--max-steps", "2",
                 "--batch-size", "8", "--device", "cpu", "--amp", "bf16"]) == 0
    payload = checkpoint.load(out)
    assert payload["finished"] and payload["config"]["amp"] == "bf16"
    assert all(v.dtype == torch.float32 for m in payload["models"].values() for v in m.values()
               if v.is_floating_point())
