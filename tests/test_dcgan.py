"""DCGAN (Problem 2): layers match the seed's printouts, DCGAN init, a tiny training run, the generate CLI."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hw3lib import checkpoint
from hw3lib.data import FACE_ATTRIBUTES, FaceSet
from hw3lib.models import build
from hw3lib.models.dcgan import weights_init

SEED_D = """
Discriminator(
  (main): Sequential(
    (0): Conv2d(3, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (1): LeakyReLU(negative_slope=0.2, inplace=True)
    (2): Conv2d(64, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (3): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (4): LeakyReLU(negative_slope=0.2, inplace=True)
    (5): Conv2d(128, 256, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (6): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (7): LeakyReLU(negative_slope=0.2, inplace=True)
    (8): Conv2d(256, 512, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (9): BatchNorm2d(512, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (10): LeakyReLU(negative_slope=0.2, inplace=True)
    (11): Conv2d(512, 1, kernel_size=(4, 4), stride=(1, 1), bias=False)
    (12): Sigmoid()
  )
)
"""

SEED_G = """
Generator(
  (main): Sequential(
    (0): ConvTranspose2d(100, 512, kernel_size=(4, 4), stride=(1, 1), bias=False)
    (1): BatchNorm2d(512, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (2): ReLU(inplace=True)
    (3): ConvTranspose2d(512, 256, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (4): BatchNorm2d(256, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (5): ReLU(inplace=True)
    (6): ConvTranspose2d(256, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (7): BatchNorm2d(128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (8): ReLU(inplace=True)
    (9): ConvTranspose2d(128, 64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (10): BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    (11): ReLU(inplace=True)
    (12): ConvTranspose2d(64, 3, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), bias=False)
    (13): Tanh()
  )
)
"""


def _norm(text: str) -> str:
    # torch >= 2.10 prints BatchNorm's `bias=True`; the seed's printout predates that field.
    return " ".join(text.replace(" bias=True, track_running_stats", " track_running_stats").split())


def test_printouts_match_seed():
    assert _norm(str(build("dcgan-discriminator"))) == _norm(SEED_D)
    assert _norm(str(build("dcgan-generator"))) == _norm(SEED_G)


def test_shapes():
    G, D = build("dcgan-generator", ngf=8), build("dcgan-discriminator", ndf=8)
    x = G(torch.randn(3, 100, 1, 1))
    assert x.shape == (3, 3, 64, 64) and x.abs().max() <= 1
    assert G(torch.randn(3, 100)).shape == (3, 3, 64, 64)
    p = D(x)
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()


def test_weights_init_stats():
    torch.manual_seed(0)
    G = build("dcgan-generator")
    G.apply(weights_init)
    convs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    w = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 1e-3
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    g = torch.cat([m.weight.detach().flatten() for m in bns])
    assert abs(float(g.mean()) - 1) < 5e-3 and abs(float(g.std()) - 0.02) < 5e-3
    assert all(float(m.bias.detach().abs().max()) == 0 for m in bns)


def _faces(n=16, seed=0) -> FaceSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8)
    attrs = torch.randint(0, 2, (n, len(FACE_ATTRIBUTES)), generator=g, dtype=torch.uint8)
    return FaceSet(images, attrs, tuple(f"{i:05d}.png" for i in range(n)), FACE_ATTRIBUTES, "embedded")


def _tiny_run(run_dir):
    from hw3lib.train.gan import GANConfig, build_models, train_gan

    cfg = GANConfig(batch_size=8, ngf=8, ndf=8, max_steps=3, log_every=1, snapshot_every=2, device="cpu")
    G, D = build_models(cfg)
    history = train_gan(G, D, _faces(), cfg, run_dir=run_dir)  # the runtime from cfg.device
    return cfg, history


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("gan-run")
    cfg, history = _tiny_run(run_dir)
    return run_dir, cfg, history


def test_train_gan_tiny_writes_checkpoint_and_snapshots(tiny_run, tiny_course_data, tmp_path):
    from hw3lib.train.gan import train_or_load

    run_dir, cfg, history = tiny_run
    for key in ("step", "loss_D", "loss_G", "D_x", "D_G_z1", "D_G_z2"):
        assert len(history[key]) == 3, key
    payload = checkpoint.load(run_dir)
    assert payload["kind"] == "gan" and payload["finished"] and set(payload["models"]) == {"netG", "netD"}
    snaps = payload["extra"]["snapshots"]
    assert snaps["step"] == [0, 2, 3]
    assert snaps["images"].dtype == torch.uint8 and snaps["images"].shape == (3, 16, 3, 64, 64)
    # train_or_load trains on a data folder, then loads the run of the same config and data instead of training
    first = train_or_load(cfg, tiny_course_data, tmp_path)
    payload = checkpoint.load(tmp_path)
    assert payload["config"]["data_id"] and payload["finished"]
    res = train_or_load(cfg, tiny_course_data, tmp_path)
    assert res.history == payload["history"] == first.history and res.config.ngf == 8
    assert not res.netG.training and torch.equal(res.snapshots["images"], payload["extra"]["snapshots"]["images"])


def test_generate_cli_deterministic(tiny_run, tmp_path):
    from hw3lib import cli

    outs = []
    for name, seed in (("a.png", "3"), ("b.png", "3"), ("c.png", "4")):
        assert cli.main(["generate", "gan", "--ckpt", str(tiny_run[0]), "--out", str(tmp_path / name),
                         "--seed", seed, "--device", "cpu"]) == 0
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1] and outs[0] != outs[2]
    from PIL import Image
    # 4 rows x 8 columns of 64 px with 2 px padding
    assert Image.open(tmp_path / "a.png").size == (8 * 66 + 2, 4 * 66 + 2)


def test_generate_cli_rejects_other_checkpoints(tmp_path, capsys):
    from hw3lib import cli

    checkpoint.save({"kind": "vae", "models": {}, "config": {}}, tmp_path / "checkpoint.pt")
    assert cli.main(["generate", "gan", "--ckpt", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert "not a DCGAN run" in capsys.readouterr().err


def test_untrained_generator_batch_stats_sampling_leaves_state():
    from hw3lib.train.gan import GANConfig, build_models, generate

    G, _ = build_models(GANConfig(ngf=8, ndf=8))
    before = {k: v.clone() for k, v in G.state_dict().items()}
    eval_mode = generate(G, 4, seed=1)
    batch = generate(G, 4, seed=1, batch_stats=True)
    assert eval_mode.float().std() < batch.float().std()  # eval mode of a fresh G is (nearly) flat gray
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert torch.equal(generate(G, 4, seed=1, batch_stats=True), batch)


def test_sample_sets_for_the_comparison():
    from hw3lib.models.vae import VAE
    from hw3lib.train.gan import GANConfig, build_models, sample_sets

    cfg = GANConfig(ngf=8, ndf=8)
    G, _ = build_models(cfg)
    train = _faces(12)
    sets = sample_sets(G, VAE(latent_dim=16, hidden_dims=(8, 8, 8, 8, 8)), cfg, train, 6, seed=2)
    assert list(sets) == ["dcgan", "vae", "untrained", "real_train"]
    assert all(v.dtype == torch.uint8 and v.shape == (6, 3, 64, 64) for v in sets.values())
    assert torch.equal(sets["real_train"], train.images[:6])
    # the untrained generator is G's initialisation (same seed), sampled with batch statistics
    assert torch.equal(sets["untrained"], sample_sets(G, None, cfg, train, 6, seed=2)["untrained"])
    assert "vae" not in sample_sets(G, None, cfg, train, 6, seed=2)


@pytest.mark.slow
def test_notebook_smoke(tmp_path):
    """papermill run of notebooks/p2_gan.ipynb with the smoke parameters (minutes on a busy CPU)."""
    from pathlib import Path

    import papermill as pm

    from hw3lib.data.synth_faces import write_faces

    write_faces(tmp_path / "data", 64, 32, seed=0, progress=False, workers=1)
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "p2_gan.ipynb"
    params = dict(data_dir=str(tmp_path / "data"), run_dir=str(tmp_path / "gan"), attr_run_dir=str(tmp_path / "attr"),
                  vae_run_dir=str(tmp_path / "vae"), figures_dir=str(tmp_path / "fig"), device="cpu", ngf=8, ndf=8,
                  batch_size=16, max_steps=4, attr_max_steps=4, vae_max_steps=2, n_eval=32)
    pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="python3",
                        cwd=str(nb.parent), progress_bar=False)
    import json
    m = json.loads((tmp_path / "gan" / "metrics.json").read_text())
    assert set(m["samples"]) == {"dcgan", "vae", "untrained", "real_train"}
    for name in ("fig2_2", "fig2_3_training_curves", "fig2_3_progression", "fig2_4_vae_vs_gan", "fig2_4_attributes",
                 "fig2_4_worst"):
        assert (tmp_path / "fig" / f"{name}.png").is_file(), name
