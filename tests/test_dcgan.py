"""DCGAN (Problem 2): layers match the course report's printouts, DCGAN init, a tiny training run, the generate CLI."""
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
    # torch >= 2.10 prints BatchNorm's `bias=True`; the course report's printout predates that field.
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
    assert payload["kind"] == "gan" and payload["finished"] and set(payload["models"]) == {"netG", "netD", "netG_ema"}
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
    assert set(m["samples"]) == {"dcgan", "dcgan_raw", "vae", "untrained", "real_train"}
    assert all(0 <= s["c2st"] <= 1 for s in m["samples"].values())
    for name in ("fig2_2", "fig2_2_raw_vs_average", "fig2_3_training_curves", "fig2_3_progression", "fig2_4_vae_vs_gan", "fig2_4_attributes",
                 "fig2_4_worst"):
        assert (tmp_path / "fig" / f"{name}.png").is_file(), name


# -- the recipe: one real/fake loss, DiffAugment, the weight average ----------------------------------------
def test_one_realfake_loss_for_the_dcgan_and_gta():
    from hw3lib.train.gan import gan_loss
    from hw3lib.models.functional import realfake_bce
    from hw3lib.methods.gta import realfake_loss

    assert gan_loss is realfake_bce and realfake_loss is realfake_bce
    p = torch.tensor([0.9, 0.2, 0.6])
    assert float(gan_loss(p, 1.0)) == pytest.approx(float(-torch.log(p).mean()), rel=1e-6)
    assert float(realfake_loss(p, False)) == pytest.approx(float(-torch.log(1 - p).mean()), rel=1e-6)
    # one-sided label smoothing: target 0.9 on real images
    assert float(gan_loss(p, 0.9)) == pytest.approx(float(-(0.9 * torch.log(p) + 0.1 * torch.log(1 - p)).mean()),
                                                    rel=1e-6)


def test_diffaugment_transforms():
    from hw3lib.train import diffaugment as da

    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 64, 64, generator=g) * 2 - 1
    # translation: every image is a shifted copy (zero padding), by at most 8 pixels
    t = da.translation(x, torch.Generator().manual_seed(1))
    for i in range(6):
        found = [(dy, dx) for dy in range(-8, 9) for dx in range(-8, 9)
                 if torch.equal(t[i, :, 8:56, 8:56], x[i, :, 8 + dy:56 + dy, 8 + dx:56 + dx])]
        assert len(found) == 1
        dy, dx = found[0]
        if dy > 0:
            assert (t[i, :, 64 - dy:] == 0).all()
    # cutout: a zeroed square of at most 32x32, the rest untouched
    c = da.cutout(x, torch.Generator().manual_seed(2))
    zero = (c == 0).all(1)
    assert all(0 < int(zero[i].sum()) <= 32 * 32 for i in range(6))
    assert torch.equal(c[~zero.unsqueeze(1).expand_as(c)], x[~zero.unsqueeze(1).expand_as(x)])
    # colour: per image an affine map of the values, so a constant image stays constant
    flat = torch.full((2, 3, 8, 8), 0.3)
    col = da.color(flat, torch.Generator().manual_seed(3))
    assert torch.allclose(col.flatten(1).std(1), torch.zeros(2), atol=1e-6)
    # the whole policy: differentiable, the same layout, deterministic for a generator, identity when empty
    y = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
    out = da.diff_augment(y, "color,translation,cutout", torch.Generator().manual_seed(4))
    out.sum().backward()
    assert out.shape == x.shape and y.grad is not None and y.grad.abs().sum() > 0
    again = da.diff_augment(y.detach(), "cutout,translation,color", torch.Generator().manual_seed(4))
    assert torch.equal(out.detach(), again)  # the order is fixed: colour, translation, cutout
    assert da.diff_augment(x, "", g) is x
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'flip'"):
        da.parse_policy("color,flip")


def test_gan_config_checks_the_recipe_knobs():
    from hw3lib.train.gan import GANConfig

    with pytest.raises(ValueError, match="DiffAugment"):
        GANConfig(diffaugment="colour")
    with pytest.raises(ValueError, match="real_label"):
        GANConfig(real_label=1.5)
    cfg = GANConfig(batch_size=32, ema_kimg=10, ema_rampup=0.05)
    # half-life min(10k, 0.05 · 32 · step) images: 1.6 images at step 1, 10k from step 6250 on
    assert cfg.ema_beta(1) == pytest.approx(0.5 ** (32 / 1.6))
    assert cfg.ema_beta(10_000) == pytest.approx(0.5 ** (32 / 10_000))
    assert GANConfig(batch_size=32, ema_kimg=10, ema_rampup=None).ema_beta(1) == pytest.approx(0.5 ** (32 / 10_000))


def test_weight_average_follows_the_schedule_and_is_what_samples():
    from hw3lib.train.gan import GANConfig, build_models, ema_generator, ema_update

    cfg = GANConfig(ngf=8, ndf=8, batch_size=32)
    G, _ = build_models(cfg)
    ema = ema_generator(G)
    start = {k: v.clone() for k, v in G.state_dict().items()}
    ema_update(ema, G, 0, cfg)  # the first update copies G
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
        G.main[1].running_mean.add_(2.0)
    ema_update(ema, G, 1, cfg)  # the second moves towards G by 1 − beta(1)
    w = 1 - cfg.ema_beta(1)
    avg = ema.module.state_dict()
    assert torch.allclose(avg["main.0.weight"], start["main.0.weight"] + w)
    assert torch.allclose(avg["main.1.running_mean"], start["main.1.running_mean"] + 2 * w)  # BatchNorm stats too
    assert int(avg["main.1.num_batches_tracked"]) == int(G.state_dict()["main.1.num_batches_tracked"])


def test_run_keeps_raw_and_averaged_generators(tiny_run, tiny_course_data, tmp_path):
    from hw3lib.train.gan import GANConfig, load_models, load_raw_generator, sample_sets, train_or_load

    run_dir, cfg, _ = tiny_run
    payload = checkpoint.load(run_dir)
    avg, _, _ = load_models(payload)
    raw = load_raw_generator(payload)
    assert not torch.equal(avg.main[0].weight, raw.main[0].weight)
    assert torch.equal(avg.main[0].weight, payload["models"]["netG_ema"]["main.0.weight"])
    assert torch.equal(raw.main[0].weight, payload["models"]["netG"]["main.0.weight"])
    res = train_or_load(cfg, tiny_course_data, tmp_path)
    assert torch.equal(res.netG_raw.main[0].weight.cpu(), checkpoint.load(tmp_path)["models"]["netG"]["main.0.weight"])
    sets = sample_sets(res.netG, None, cfg, _faces(12), 6, seed=2, netG_raw=res.netG_raw)
    assert list(sets) == ["dcgan", "dcgan_raw", "untrained", "real_train"]
    assert not torch.equal(sets["dcgan"], sets["dcgan_raw"])
    # without an average there is one generator, and the run stores none
    plain = GANConfig(batch_size=8, ngf=8, ndf=8, max_steps=2, log_every=1, ema_kimg=0, diffaugment="", device="cpu")
    res = train_or_load(plain, tiny_course_data, tmp_path / "plain")
    assert res.netG_raw is res.netG and "netG_ema" not in checkpoint.load(tmp_path / "plain")["models"]


def test_implementation_details_and_training_summary_read_the_run():
    from hw3lib.eval import gan as gan_eval
    from hw3lib.train.gan import GANConfig

    cfg = GANConfig(batch_size=32, ngf=32, ndf=32, lr=1e-4, lr_d=4e-4, real_label=0.9, diffaugment="color,translation,cutout")
    table = gan_eval.implementation_details(cfg, 4000, 625)["choice"]
    assert "4e-04 for D (two time-scale" in table["optimizer"] or "0.0004 for D (two time-scale" in table["optimizer"]
    assert "real = 0.9" in table["labels"] and "label smoothing" in table["labels"]
    assert "DiffAugment (color, translation, cutout)" in table["augmentation"]
    assert "half-life 10k images" in table["samples"]
    plain = gan_eval.implementation_details(GANConfig(diffaugment="", ema_kimg=0), 4000, 625)["choice"]
    assert plain["augmentation"] == "none" and plain["samples"] == "from the trained G itself"

    history = {"step": [10, 20, 30, 40], "loss_D": [1.4, 1.2, 0.6, 0.4], "loss_G": [0.7, 1.0, 3.0, 5.0],
               "D_x": [0.5, 0.6, 0.8, 0.9], "D_G_z1": [0.5, 0.4, 0.2, 0.1], "D_G_z2": [0.5, 0.4, 0.1, 0.05]}
    images = torch.zeros(3, 16, 3, 64, 64, dtype=torch.uint8)
    images[1] += 51
    images[2] += 102
    text = gan_eval.training_summary(history, {"step": [0, 20, 40], "images": images},
                                     real=_faces(8).images)
    assert "D loss went from 1.400 (first quarter of the logged steps) to 0.400" in text
    assert "a gap of 0.80, against 0.00 in the first quarter" in text
    assert "0.400, 0.200 at steps 0, 20" in text  # distance of each snapshot from the last one
    assert "0.00, 0.00, 0.00 at every snapshot" in text  # flat snapshots have no fine detail


def test_refresh_bn_recomputes_the_statistics_of_the_weights_it_has():
    from hw3lib.train.gan import GANConfig, build_models, refresh_bn

    G, _ = build_models(GANConfig(ngf=8, ndf=8))
    with torch.no_grad():
        G.main[1].running_mean.fill_(5.0)  # stale statistics
    refresh_bn(G, 128, seed=3)  # two batches of 64: the statistics are the mean of the two batches'
    z = torch.randn(128, G.nz, 1, 1, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        first = G.main[0](z)  # the first BatchNorm's input for those 128 draws
    assert torch.allclose(G.main[1].running_mean, first.mean((0, 2, 3)), atol=1e-6)
    var = (first[:64].var((0, 2, 3)) + first[64:].var((0, 2, 3))) / 2
    assert torch.allclose(G.main[1].running_var, var, rtol=1e-4)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    refresh_bn(G, 0, seed=3)  # off
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
