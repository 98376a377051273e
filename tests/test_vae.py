"""VAE (Problem 1): layers match the course report's printout, shapes, the loss, tiny training, train-or-load, the CLI,
and the notebook under papermill (slow)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hw3lib import checkpoint
from hw3lib.cli import main
from hw3lib.data import FACE_ATTRIBUTES, FaceSet
from hw3lib.models import build
from hw3lib.models.vae import VAE, VAEOutput, vae_loss
from hw3lib.runtime import cpu
from hw3lib.train import vae as tv

# Problem 1.1 of the course report (/work/shared/seed/000_f766124b53cd29ca.txt), verbatim.
SEED_VAE = """
VAE(
    (encoder): Sequential(
        (0): Sequential(
            (0): Conv2d(3, 32, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
            (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (1): Sequential(
            (0): Conv2d(32, 64, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
            (1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (2): Sequential(
            (0): Conv2d(64, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
            (1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (3): Sequential(
            (0): Conv2d(128, 256, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
            (1): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (4): Sequential(
            (0): Conv2d(256, 512, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1))
            (1): BatchNorm2d(512, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
    )
    (fc_mu): Linear(in_features=2048, out_features=512, bias=True)
    (fc_var): Linear(in_features=2048, out_features=512, bias=True)
    (decode_input): Linear(in_features=512, out_features=2048, bias=True)
    (decoder): Sequential(
        (0): Sequential(
            (0): ConvTranspose2d(512, 256, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
            (1): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (1): Sequential(
            (0): ConvTranspose2d(256, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
            (1): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (2): Sequential(
            (0): ConvTranspose2d(128, 64, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
            (1): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (3): Sequential(
            (0): ConvTranspose2d(64, 32, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
            (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
        (4): Sequential(
            (0): ConvTranspose2d(32, 32, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
            (1): BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
            (2): LeakyReLU(negative_slope=0.01)
        )
    )
    (final_layer): Sequential(
        (0): Conv2d(32, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        (1): Tanh()
    )
)
"""


def _norm_lines(text: str) -> list[str]:
    # torch >= 2.10 prints BatchNorm's `bias=True`; the course report's printout predates that field.
    return [" ".join(line.replace(" bias=True,", "").split()) if "BatchNorm" in line else " ".join(line.split())
            for line in text.strip().splitlines() if line.strip()]


def _faces(n: int, seed: int = 0) -> FaceSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g)
    attrs = torch.randint(0, 2, (n, len(FACE_ATTRIBUTES)), dtype=torch.uint8, generator=g)
    return FaceSet(images, attrs, tuple(f"{i:05d}.png" for i in range(n)), FACE_ATTRIBUTES, "embedded")


def test_printout_matches_seed():
    assert _norm_lines(str(build("vae"))) == _norm_lines(SEED_VAE)


def test_shapes_and_sampling():
    torch.manual_seed(0)
    m = VAE().eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    mu, log_var = m.encode(x)
    assert mu.shape == log_var.shape == (2, 512)
    assert m.decode(mu).shape == (2, 3, 64, 64)
    out = m(x)
    assert isinstance(out, VAEOutput) and out.recon.shape == (2, 3, 64, 64) and out.recon.abs().max() <= 1
    m.train()
    a = m.sample(4, generator=torch.Generator().manual_seed(3))
    b = m.sample(4, generator=torch.Generator().manual_seed(3))
    assert a.shape == (4, 3, 64, 64) and torch.equal(a, b) and m.training  # eval inside, mode restored
    small = VAE(latent_dim=16, hidden_dims=(8, 8, 8, 8, 8))
    assert small(x).mu.shape == (2, 16)


def test_loss_hand_computed():
    x = torch.zeros(2, 3, 4, 4)
    recon = torch.full_like(x, 0.5)                      # squared error 0.25 everywhere
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])          # KL = 0.5 * mu^2 = 0.5 for sample 0, 0 for sample 1
    log_var = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    l = vae_loss(VAEOutput(recon, mu, log_var), x, kld_weight=0.1)
    assert l.mse.item() == pytest.approx(0.25)
    assert l.kld.item() == pytest.approx(0.25)           # batch mean of (0.5, 0)
    assert l.loss.item() == pytest.approx(0.25 + 0.1 * 0.25)
    # log_var = log 4 (sigma 2), mu 0: KL per dim = 0.5 (4 - 1 - log 4)
    lv = torch.full((1, 3), float(torch.log(torch.tensor(4.0))))
    l = vae_loss(VAEOutput(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3), lv), torch.zeros(1, 3, 2, 2))
    assert l.kld.item() == pytest.approx(3 * 0.5 * (3 - float(torch.log(torch.tensor(4.0)))), rel=1e-5)


def test_channels_last_matches_eager():
    torch.manual_seed(0)
    m = VAE().eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    ref = m.decode(m.encode(x)[0])
    m = m.to(memory_format=torch.channels_last)
    got = m.decode(m.encode(x.contiguous(memory_format=torch.channels_last))[0])
    assert torch.allclose(ref, got, atol=1e-4)


def test_tiny_train_writes_checkpoint_and_history(tmp_path):
    cfg = tv.VAEConfig(epochs=2, batch_size=8, max_steps=5, log_every=2, latent_dim=16, device="cpu")
    model = VAE(latent_dim=16, hidden_dims=(8, 8, 8, 8, 8))  # small: the loop, not the model, is under test
    h = tv.train_vae(model, _faces(24), _faces(8, 1), cfg, run_dir=tmp_path)  # the runtime from cfg.device
    for key in ("step", "mse", "kld", "loss", "epoch", "train_mse", "train_kld", "test_mse", "test_kld"):
        assert h.get(key), key
    assert h["epoch"] == [1.0, 5 / 3]  # 3 steps per epoch: one full epoch, then the max_steps cap
    payload = checkpoint.load(tmp_path)
    assert payload["kind"] == "vae" and payload["finished"] and payload["step"] == 5
    assert payload["extra"]["wall_s"] > 0
    # what a reload of the checkpoint gives: eval mode, default memory layout
    assert not model.training and model.encoder[0][0].weight.is_contiguous()


def test_total_steps_counts_epochs_of_batches():
    """The quick profile's 3 epochs of batch 32 on 4000 faces (the global batch whatever the world size); a last
    partial batch is dropped; a set smaller than a batch is one batch an epoch; ``max_steps`` caps."""
    cfg = tv.VAEConfig(epochs=3, batch_size=32)
    assert cfg.total_steps(4000) == cfg.total_steps(4000, world_size=2) == cfg.total_steps(4031) == 375
    assert cfg.total_steps(20) == 3
    assert tv.VAEConfig(epochs=3, batch_size=32, max_steps=100).total_steps(4000) == 100


def test_train_or_load_skips_finished(tmp_path, tiny_course_data, monkeypatch):
    cfg = tv.VAEConfig(epochs=1, batch_size=8, max_steps=2, latent_dim=16)
    model, h, _ = tv.train_or_load(cfg, tiny_course_data, tmp_path / "run", runtime=cpu())
    assert not model.training and h["test_mse"]

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(tv, "train_vae", boom)
    again = tv.train_or_load(cfg, tiny_course_data, tmp_path / "run", runtime=cpu())
    assert isinstance(again, tv.VAEResult) and again.history == h and again.config.latent_dim == 16
    for a, b in zip(model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # Problem 2 reuses the finished run whatever config it asks for (and keeps its own device)
    reused = tv.finished_or_train(tv.VAEConfig(device="cpu"), tiny_course_data, tmp_path / "run")
    assert reused.config.max_steps == 2 and reused.history == h
    with pytest.raises(AssertionError, match="trained again"):  # a different config trains
        tv.train_or_load(tv.VAEConfig(epochs=1, batch_size=8, max_steps=3, latent_dim=16), tiny_course_data,
                         tmp_path / "run", runtime=cpu())


def test_cli_train_and_generate_deterministic(tmp_path, tiny_course_data, capsys):
    run = tmp_path / "run"
    assert main(["train", "vae", "--data", str(tiny_course_data), "--out", str(run), "--epochs", "1",
                 "--batch-size", "8", "--max-steps", "2", "--device", "cpu"]) == 0
    for name, seed in (("a.png", "7"), ("b.png", "7"), ("c.png", "8")):
        assert main(["generate", "vae", "--ckpt", str(run), "--out", str(tmp_path / name), "--seed", seed,
                     "--device", "cpu"]) == 0
    from PIL import Image

    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (8 * 66 + 2, 4 * 66 + 2)  # 4 rows of 8 faces, torchvision's 2-px padding
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
    assert main(["train", "vae", "--data", str(tiny_course_data), "--out", str(run), "--epochs", "1",
                 "--batch-size", "8", "--max-steps", "2", "--device", "cpu"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_generate_rejects_missing_checkpoint(tmp_path, capsys):
    assert main(["generate", "vae", "--ckpt", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_eval_helpers():
    from hw3lib.eval import vae as ev

    torch.manual_seed(0)
    model = VAE(latent_dim=16).eval()
    test = _faces(12, 2)
    recon, mse = ev.reconstruct(model, test.images[:3])
    assert recon.shape == (3, 3, 64, 64) and mse.shape == (3,)
    # the per-image MSE on the [0, 1] scale, by hand, of what it returns; the reconstruction is decode(mu(x))
    assert torch.allclose(mse, (recon - test.images[:3].float() / 255).pow(2).mean((1, 2, 3)), rtol=1e-5)
    with torch.no_grad():
        mu, _ = model.encode(test.images[:3].float() / 127.5 - 1)
        assert torch.allclose(recon, (model.decode(mu) + 1) / 2, atol=1e-5)
    # mean image of a black and a white face = 0.5 everywhere; a test face at 51/255 = 0.2 is (0.2 - 0.5)² = 0.09 off
    two = FaceSet(torch.stack([torch.zeros(3, 64, 64), torch.full((3, 64, 64), 255.0)]).to(torch.uint8),
                  test.attrs[:2], test.names[:2], test.attr_names, "embedded")
    grey = FaceSet(torch.full((1, 3, 64, 64), 51, dtype=torch.uint8), test.attrs[:1], test.names[:1],
                   test.attr_names, "embedded")
    assert ev.mean_image_baseline(two, grey) == pytest.approx(0.09, rel=1e-6)
    z = ev.latent_means(model, test.images)
    assert z.shape == (12, 16)
    with torch.no_grad():
        assert np.allclose(z, model.encode(test.images.float() / 127.5 - 1)[0].numpy(), atol=1e-5)
    # a tiny case by hand: 24 faces without the attribute at z = (0, 0, 0), 16 with it at (2, 1, 0), ± 0.01
    has = np.array([0] * 24 + [1] * 16)
    toy = np.zeros((40, 3), np.float32)
    toy[has == 1, :2] = (2.0, 1.0)
    toy += np.random.default_rng(0).normal(0, 0.01, toy.shape).astype(np.float32)
    assert ev.attribute_direction(toy, has).numpy() == pytest.approx([2.0, 1.0, 0.0], abs=0.02)
    p = ev.linear_probe(toy, has, folds=2)
    assert p["accuracy"] == 1.0 and p["majority"] == pytest.approx(0.6) and p["folds"] == 2
    table = ev.reconstruction_table([f"{i}" for i in range(10)], [i / 100 for i in range(10)])
    assert table.shape == (2, 5) and table.iloc[1, 2] == 0.07  # image 8: second row, third column


def test_fitted_gaussian_kl_and_samples():
    from hw3lib.eval import vae as ev

    rng = torch.Generator().manual_seed(0)
    z = torch.randn(4000, 8, generator=rng) * 0.5 + 1.0  # variance 0.25, mean 1 in every dimension
    post = ev.posterior_summary(z.numpy())
    # KL(N(1, 0.25 I) || N(0, I)) over 8 dims = ½ (8·0.25 + 8 − 8 − 8 ln 0.25)
    assert post["kl_fitted_prior"] == pytest.approx(0.5 * (2 + 8 * 1.3862944), rel=0.03)
    assert post["var_mean"] == pytest.approx(0.25, rel=0.05) and post["mean_norm"] == pytest.approx(8 ** 0.5, rel=0.02)
    assert ev.kl_from_prior(ev.fit_gaussian(torch.randn(20000, 4, generator=rng).numpy())) < 0.01
    torch.manual_seed(0)
    model = VAE(latent_dim=8, hidden_dims=(8, 8, 8, 8, 8)).eval()
    fitted = ev.fit_gaussian(z.numpy())
    a, b = ev.fitted_samples(model, fitted, 6, seed=3), ev.fitted_samples(model, fitted, 6, seed=3)
    assert a.dtype == torch.uint8 and a.shape == (6, 3, 64, 64) and torch.equal(a, b)
    assert not torch.equal(a, ev.fitted_samples(model, fitted, 6, seed=4))
    # the prior samples are the course grid's faces (train.vae.sample_grid), as uint8
    grid = tv.sample_grid(model, 6, seed=3)
    assert (ev.prior_samples(model, 6, seed=3).float() / 255 - grid).abs().max() <= 0.5 / 255 + 1e-6
    faces = _faces(4, 1).images
    assert ev.highfreq_ratio(faces, faces) == pytest.approx(1.0)
    blurred = torch.nn.functional.avg_pool2d(faces.float() / 255, 5, 1, 2)
    assert ev.highfreq_ratio(blurred, faces) < 0.5


def _p1_metrics(*, fitted_fd=20.0, fitted_c2st=(0.8, 0.76, 0.84), prior_fd=60.0, prior_c2st=(1.0, 0.99, 1.0),
                hf=0.3, probe=(0.85, 0.59)):
    def sample(fd, c):
        return {"fd": fd, "c2st": c[0], "c2st_low": c[1], "c2st_high": c[2], "spread": 5.0, "n": 500,
                "highfreq_ratio": 0.25}
    return {"final_train_mse": 0.0165, "final_test_mse": 0.0149, "final_train_kld": 343.0, "final_test_kld": 361.0,
            "test_mse_mean": 0.0146, "baseline_mse": 0.0533, "baseline_ratio": 3.64, "recon_highfreq_ratio": hf,
            "probe_male_accuracy": probe[0], "probe_male_majority": probe[1],
            "posterior": {"kl_fitted_prior": 1234.0, "var_mean": 0.02, "var_min": 0.001, "var_max": 0.3,
                          "mean_norm": 0.7, "latent_dim": 512},
            "samples": {"prior": sample(prior_fd, prior_c2st), "fitted": sample(fitted_fd, fitted_c2st),
                        "real_train": sample(1.0, (0.5, 0.46, 0.54))},
            "reference_spread": 10.0}


def test_p1_discussion_follows_the_numbers():
    from hw3lib.eval import vae as ev

    text = ev.discussion(_p1_metrics(), kld_weight=1e-5)
    # the KL term's share of the loss: 1e-5·343 / (4·0.0165 + 1e-5·343)
    assert "4.9% of the final training loss" in text
    assert "keep 30% of the test images' high-frequency energy" in text and "blurrier" in text
    assert "lies 1234 nats from N(0, I)" in text and "from 0.001 to 0.3 (mean 0.02; the prior's are 1)" in text
    assert "lowers FD by 67%" in text
    assert "the fitted Gaussian's samples are harder to tell from real faces than the prior's" in text
    assert "1.00 [0.99–1.00]" in text and "0.80 [0.76–0.84]" in text
    assert "is 50% and 50% of the test faces' own" in text
    assert "gender is clearly separable" in text
    flipped = ev.discussion(_p1_metrics(fitted_fd=80.0, fitted_c2st=(0.99, 0.97, 1.0), hf=1.3, probe=(0.6, 0.58)),
                            kld_weight=1e-5)
    assert "raises FD by 33%" in flipped and "intervals overlap" in flipped
    assert "more fine detail than their inputs" in flipped and "barely separable" in flipped
    worse = ev.discussion(_p1_metrics(fitted_c2st=(1.0, 0.99, 1.0), prior_c2st=(0.7, 0.66, 0.74)), kld_weight=1e-5)
    assert "the prior's samples are harder to tell from real faces than the fitted Gaussian's" in worse
    for t in (text, flipped, worse):
        assert "± 0.00" not in t and "blurry" not in t.replace("blurrier", "")


@pytest.mark.slow
def test_notebook_smoke(tmp_path, tiny_course_data):
    """The notebook with the smoke parameters (~100 s under load, ~30 s alone)."""
    papermill = pytest.importorskip("papermill")
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "p1_vae.ipynb"
    run, figs = tmp_path / "run", tmp_path / "figures"
    papermill.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), cwd=str(nb.parent), progress_bar=False,
                               parameters=dict(data_dir=str(tiny_course_data), run_dir=str(run),
                                               attr_run_dir=str(tmp_path / "attr"), figures_dir=str(figs),
                                               device="cpu", epochs=1, batch_size=8, max_steps=3, attr_max_steps=4,
                                               n_eval=32))
    m = json.loads((run / "metrics.json").read_text())
    for key in ("final_train_mse", "final_test_mse", "final_train_kld", "final_test_kld", "test_mse_mean",
                "baseline_mse", "baseline_ratio", "example_mse", "probe_male_accuracy", "probe_male_majority",
                "train_wall_s", "recon_highfreq_ratio", "posterior", "samples"):
        assert key in m, key
    assert set(m["samples"]) == {"prior", "fitted", "real_train"} and 0 <= m["samples"]["fitted"]["c2st"] <= 1
    for name in ("fig1_2_learning_curves", "fig1_3_reconstructions", "fig1_4", "fig1_4_fitted", "fig1_5_tsne",
                 "fig1_7_latent_walk"):
        assert (figs / f"{name}.png").is_file(), name
