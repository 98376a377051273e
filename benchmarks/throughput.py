"""Training throughput: hw3lib's own training steps against the way the public reference code trains.

    python -m benchmarks.throughput [--quick] [--data DIR] [--device auto] [--only vae,gan,dann,gta]

For each family (VAE, DCGAN, DANN, GTA), in one process and on the same data:

* **reference** — the step as AntixK/PyTorch-VAE, pytorch/examples ``dcgan``, fungtion/DANN and
  yogeshbalaji/Generate_To_Adapt write it: eager float32, NCHW, a ``DataLoader`` whose ``Dataset`` opens and decodes
  one PNG per sample with PIL and applies torchvision transforms per sample (two loaders zipped for the UDA ones);
* **hw3lib** — the project's public training function (``train_vae``, ``train_gan``, ``train_uda``) with its real
  data path (uint8 tensors decoded once, batched on the device) and its default fast settings, including the
  glibc allocator tuning of :func:`hw3lib.device.tune_allocator`. The reference is measured first, on the default
  allocator (as its users run it), and once more after the tuning, so the table separates the two gains.

hw3lib's time per step is taken from timestamps at each step of its ``TrainLoop`` (after warm-up steps), so
set-up, data loading and the final evaluation fall outside. The reference's data wait is the time spent in ``next(loader)``; hw3lib's is
the time its batcher + on-device conversion take for the same number of steps, measured alone. Peak memory is
the peak RSS increase over the measurement (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA).
Results (with machine details) are written to ``benchmarks/RESULTS.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from hw3lib.data import load_digits, load_faces
from hw3lib.data.batches import Batches
from hw3lib.data.transforms import to_signed
from hw3lib.device import amp_dtype, describe, get_device, seed_everything, tune_allocator
from hw3lib.models import build
from hw3lib.runtime import Runtime
from hw3lib.train.loop import step_clock

ROOT = Path(__file__).resolve().parents[1]


# -- reference data path: one PIL decode per sample ------------------------------------------------------
class PngFolder(Dataset):
    """``image_name[,label]`` CSV + PNG folder, decoded per ``__getitem__`` (as the reference repos do)."""

    def __init__(self, folder: Path, csv: Path, transform, with_label: bool):
        df = pd.read_csv(csv)
        self.paths = [folder / n for n in df["image_name"]]
        self.labels = df["label"].tolist() if with_label else None
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = self.transform(Image.open(self.paths[i]).convert("RGB"))
        return (img, self.labels[i]) if self.labels is not None else (img, 0)


def _loader(ds, batch_size, workers):
    return DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
                      persistent_workers=workers > 0)


class _Forever:
    """Endless iterator over a DataLoader that accumulates the time spent waiting for batches."""

    def __init__(self, loader):
        self.loader, self.it, self.wait = loader, iter(loader), 0.0

    def __next__(self):
        t = time.perf_counter()
        try:
            batch = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            batch = next(self.it)
        self.wait += time.perf_counter() - t
        return batch


class PeakMemory:
    """Peak RSS increase (CPU) or peak CUDA allocation during a ``with`` block, in MiB."""

    def __init__(self, device):
        self.device, self.peak, self._stop = device, 0.0, threading.Event()

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            self.proc = psutil.Process()
            self.base = self.proc.memory_info().rss
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss - self.base)
            time.sleep(0.02)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.base
        else:
            self._stop.set()
            self.thread.join()
        self.peak /= 2**20


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- reference steps ---------------------------------------------------------------------------------------
def reference_vae(data: Path, device, steps, batch, workers):
    """AntixK/PyTorch-VAE VanillaVAE training_step (loss = recons MSE + kld_weight·KLD)."""
    ds = PngFolder(data / "face/train", data / "face/train.csv", T.ToTensor(), with_label=False)
    it = _Forever(_loader(ds, batch, workers))
    model = build("vae").to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        x, _ = next(it)
        x = x.to(device)
        recons, mu, log_var = model(x)
        kld = torch.mean(-0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp(), dim=1), dim=0)
        loss = F.mse_loss(recons, x) + 1e-5 * kld
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step, it


def reference_gan(data: Path, device, steps, batch, workers):
    """pytorch/examples dcgan main loop (BCELoss, real=1/fake=0, (1) update D, (2) update G)."""
    tf = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    it = _Forever(_loader(PngFolder(data / "face/train", data / "face/train.csv", tf, False), batch, workers))
    netG, netD = build("dcgan-generator").to(device), build("dcgan-discriminator").to(device)
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    criterion = nn.BCELoss()

    def step():
        real, _ = next(it)
        real = real.to(device)
        b = real.size(0)
        netD.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        errD_real = criterion(netD(real).view(-1), label)
        errD_real.backward()
        fake = netG(torch.randn(b, 100, 1, 1, device=device))
        label.fill_(0.0)
        errD_fake = criterion(netD(fake.detach()).view(-1), label)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        errG = criterion(netD(fake).view(-1), label)
        errG.backward()
        optG.step()
        return errG.item()
    return step, it


def _digit_loader(data, domain, size, batch, workers, with_label=True):
    tf = T.Compose([T.Resize(size), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    d = data / "digits" / domain
    return _Forever(_loader(PngFolder(d / "train", d / "train.csv", tf, with_label), batch, workers))


def reference_dann(data: Path, device, steps, batch, workers):
    """fungtion/DANN main.py: source and target loaders, class + domain NLL on source, domain NLL on target."""
    src, tgt = _digit_loader(data, "usps", 28, batch, workers), _digit_loader(data, "mnistm", 28, batch, workers)
    model = build("dann").to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    nll = nn.NLLLoss()
    state = {"i": 0}

    def step():
        p = state["i"] / max(1, steps)
        alpha = 2.0 / (1.0 + np.exp(-10 * p)) - 1
        state["i"] += 1
        xs, ys = next(src)
        xt, _ = next(tgt)
        xs, ys, xt = xs.to(device), ys.to(device), xt.to(device)
        model.zero_grad()
        out_s = model(xs, alpha)
        err = nll(out_s.class_logp, ys) + nll(out_s.domain_logp, torch.zeros(len(xs), dtype=torch.long, device=device))
        out_t = model(xt, alpha)
        err = err + nll(out_t.domain_logp, torch.ones(len(xt), dtype=torch.long, device=device))
        err.backward()
        opt.step()
        return err.item()

    class _Both:
        @property
        def wait(self):
            return src.wait + tgt.wait
    return step, _Both()


def reference_gta(data: Path, device, steps, batch, workers):
    """yogeshbalaji/Generate_To_Adapt trainer.py: update D, G, C, F per step (32x32, mean/std 0.5)."""
    from hw3lib.models.gta import build_gta, onehot
    src, tgt = _digit_loader(data, "usps", 32, batch, workers), _digit_loader(data, "mnistm", 32, batch, workers)
    nets = {k: v.to(device) for k, v in build_gta().items()}
    opts = {k: torch.optim.Adam(v.parameters(), lr=5e-4, betas=(0.8, 0.999)) for k, v in nets.items()}
    ce, bce = nn.CrossEntropyLoss(), nn.BCELoss()

    def step():
        xs, ys = next(src)
        xt, _ = next(tgt)
        xs, ys, xt = xs.to(device), ys.to(device), xt.to(device)
        b = len(xs)
        real_l, fake_l = torch.ones(b, device=device), torch.zeros(b, device=device)
        emb_s, emb_t = nets["netF"](xs), nets["netF"](xt)
        gen_s = nets["netG"](onehot(ys, b), emb_s)
        gen_t = nets["netG"](onehot(None, b, device=device), emb_t)
        nets["netD"].zero_grad()
        r, fs, ft = nets["netD"](xs), nets["netD"](gen_s.detach()), nets["netD"](gen_t.detach())
        errD = ce(r.class_logits, ys) + bce(r.realfake, real_l) + bce(fs.realfake, fake_l) + bce(ft.realfake, fake_l)
        errD.backward(retain_graph=True)
        opts["netD"].step()
        nets["netG"].zero_grad()
        out_s = nets["netD"](gen_s)
        errG = ce(out_s.class_logits, ys) + bce(out_s.realfake, real_l)
        errG.backward(retain_graph=True)
        opts["netG"].step()
        nets["netC"].zero_grad()
        errC = ce(nets["netC"](emb_s), ys)
        errC.backward(retain_graph=True)
        opts["netC"].step()
        nets["netF"].zero_grad()
        # The public code back-propagates F's loss through G's pre-update graph, which current torch refuses
        # (G's weights were modified in place); regenerating from the updated G costs the reference one extra
        # G forward, so its img/s is slightly pessimistic.
        gen_s = nets["netG"](onehot(ys, b), emb_s)
        gen_t = nets["netG"](onehot(None, b, device=device), emb_t)
        out_s, out_t = nets["netD"](gen_s), nets["netD"](gen_t)
        errF = (ce(nets["netC"](emb_s), ys) + 0.1 * ce(out_s.class_logits, ys)
                + 0.1 * 0.3 * bce(out_t.realfake, real_l))
        errF.backward()
        opts["netF"].step()
        return errF.item()

    class _Both:
        @property
        def wait(self):
            return src.wait + tgt.wait
    return step, _Both()


def run_reference(make, data, device, steps, batch, workers, warmup):
    seed_everything(0)
    step, waiter = make(data, device, steps + warmup + 1, batch, workers)
    for _ in range(warmup):
        step()
    # FLOPs of one training step (forward + backward of every net it runs; hw3lib's step does the same math).
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    _sync(device)
    wait0 = waiter.wait
    with PeakMemory(device) as mem:
        t = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        dt = time.perf_counter() - t
    return {"img_s": steps * batch / dt, "wait": (waiter.wait - wait0) / dt, "mem": mem.peak,
            "flop_img": flops / batch}


def matmul_rate(device, n: int = 2048, reps: int = 10, dtype: torch.dtype = torch.float32, trials: int = 3) -> float:
    """Measured n×n matmul rate (FLOP/s) of this device in ``dtype``: the yardstick for the steps' GFLOP/s, i.e.
    the practical peak of the arithmetic the step runs in (float32 on the CPU, bf16 under CUDA autocast). The best
    of ``trials`` timings, so a moment of interference (a DataLoader worker winding down) does not lower the
    yardstick. oneDNN convolutions can run faster than this plain matmul, so it is a reference level, not a hard
    limit."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(trials):
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 * reps / best


# -- hw3lib steps ------------------------------------------------------------------------------------------
def _timed(fn, device):
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def _hw3_runner(family, data, device, batch, compile_):
    """A function ``n -> None`` that trains ``family`` for ``n`` steps with hw3lib's public training code."""
    if family in ("vae", "gan"):
        faces = load_faces(data, "train")
    if family == "vae":
        from hw3lib.train.vae import VAEConfig, train_vae

        def run(n):
            cfg = VAEConfig(batch_size=batch, max_steps=n, eval_every_epoch=False, compile=compile_, epochs=10**6)
            train_vae(build("vae"), faces, None, cfg, runtime=Runtime.for_config(cfg, device=device))
        return run, (faces.images,)
    if family == "gan":
        from hw3lib.train.gan import GANConfig, build_models, train_gan

        def run(n):
            cfg = GANConfig(batch_size=batch, max_steps=n, snapshot_every=10**9, epochs=10**6)
            netG, netD = build_models(cfg, device)
            train_gan(netG, netD, faces, cfg, runtime=Runtime.for_config(cfg, device=device))
        return run, (faces.images,)
    from hw3lib.train.uda import UDAConfig, train_uda

    def run(n):
        cfg = UDAConfig(method=family, source="usps", target="mnistm", steps=n, batch_size=batch, evals=0,
                        device=str(device))
        train_uda(cfg, data)
    return run, (load_digits(data, "usps", "train").images, load_digits(data, "mnistm", "train").images)


def run_hw3(family, data, device, steps, batch, compile_, warmup):
    run, tensors = _hw3_runner(family, data, device, batch, compile_)
    with PeakMemory(device) as mem, step_clock(lambda: _sync(device)) as clock:
        run(warmup + steps)
    stamps = clock[warmup:]  # skip warm-up steps (first-call costs, compiled graphs)
    dt = stamps[-1] - stamps[0]
    # Data wait: the same number of batches through hw3lib's data path alone (uint8 gather + conversion).
    on_dev = [t.to(device) for t in tensors]
    its = [Batches(t, batch_size=batch, seed=0).forever() for t in on_dev]
    wait = _timed(lambda: [to_signed(next(it)[0]) for _ in range(steps) for it in its], device)
    return {"img_s": steps * batch / dt, "wait": wait / dt, "mem": mem.peak}


FAMILIES = {"vae": (reference_vae, 64), "gan": (reference_gan, 128), "dann": (reference_dann, 64),
            "gta": (reference_gta, 100)}
# DANN steps are ~20x cheaper than the others: time more of them so the ratio is not noise.
STEP_SCALE = {"vae": 1, "gan": 1, "dann": 8, "gta": 1}
TARGETS_CPU = {"vae": 2.0, "gan": 2.0, "dann": 1.5, "gta": 1.5}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few steps (a couple of minutes on 2 cores)")
    ap.add_argument("--data", default=None, help="course-layout data folder (default: embedded smoke data in runs/bench-data)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--only", default="vae,gan,dann,gta")
    ap.add_argument("--no-compile", action="store_true", help="eager hw3lib steps (compile is off by default on CPU)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the hw3lib VAE step")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="reference DataLoader workers")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "RESULTS.md"))
    args = ap.parse_args(argv)
    # The reference runs as its users run it, on glibc's default allocator; hw3lib tunes it (hw3lib.device).
    user_malloc = os.environ.get("HW3_MALLOC")
    os.environ["HW3_MALLOC"] = "system"
    device = get_device(args.device)
    os.environ.setdefault("HW3_PROGRESS", "0")
    data = Path(args.data) if args.data else ROOT / "runs" / "bench-data"
    if not args.data:
        from hw3lib.data.make import make_data
        make_data(data, "smoke", seed=0, figures_dir=None, progress=False)
    steps = 6 if args.quick else 30
    warmup = 2 if args.quick else 5
    # hw3lib's steps run under its default autocast ("auto": bf16 on CUDA, float32 on the CPU); the reference
    # stays float32 as published. The peak yardstick is a matmul in hw3lib's compute dtype.
    compute_dtype = amp_dtype("auto", device) or torch.float32
    matmul = matmul_rate(device, n=8192 if device.type == "cuda" else 2048, dtype=compute_dtype)
    dtype_name = str(compute_dtype).removeprefix("torch.")
    families = [f for f in args.only.split(",") if f]

    def reference(family):
        make, batch = FAMILIES[family]
        return run_reference(make, data, device, steps * STEP_SCALE[family], batch, args.workers, warmup)

    refs = {f: reference(f) for f in families}
    if user_malloc is None:
        del os.environ["HW3_MALLOC"]
    else:
        os.environ["HW3_MALLOC"] = user_malloc
    tuned = tune_allocator()
    ours = {f: run_hw3(f, data, device, steps * STEP_SCALE[f], FAMILIES[f][1],
                       args.compile and not args.no_compile, warmup) for f in families}
    # The same reference again on the tuned allocator: how much of the ratio is the allocator alone.
    refs_malloc = {f: reference(f) for f in families} if tuned else refs
    rows = []
    for family in families:
        ref, mine, ref_m, batch = refs[family], ours[family], refs_malloc[family], FAMILIES[family][1]
        rows.append({"family": family, "batch": batch, "ref img/s": ref["img_s"],
                     "ref+malloc img/s": ref_m["img_s"], "hw3lib img/s": mine["img_s"],
                     "ratio": mine["img_s"] / ref["img_s"], "target": TARGETS_CPU[family] if device.type == "cpu" else None,
                     "ratio vs ref+malloc": mine["img_s"] / ref_m["img_s"],
                     "ref data wait": ref["wait"], "hw3lib data wait": mine["wait"],
                     "ref peak MiB": ref["mem"], "hw3lib peak MiB": mine["mem"],
                     "GFLOP/img": ref["flop_img"] / 1e9,
                     "ref GFLOP/s": ref["img_s"] * ref["flop_img"] / 1e9,
                     "hw3lib GFLOP/s": mine["img_s"] * ref["flop_img"] / 1e9,
                     "hw3lib % of matmul peak": 100 * mine["img_s"] * ref["flop_img"] / matmul})
        print(f"{family}: reference {ref['img_s']:.1f} img/s (tuned allocator {ref_m['img_s']:.1f}), "
              f"hw3lib {mine['img_s']:.1f} img/s, ratio {mine['img_s'] / ref['img_s']:.2f}x", flush=True)
    df = pd.DataFrame(rows)
    table = df.to_markdown(index=False, floatfmt=".3g") if _has_tabulate() else df.to_string(index=False)
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {describe(device)}, "
               f"steps {steps} (DANN x{STEP_SCALE['dann']}; +{warmup} warm-up), data {data.name}, reference workers {args.workers}; "
               f"measured {dtype_name} matmul ({8192 if device.type == 'cuda' else 2048}²) {matmul / 1e9:.0f} GFLOP/s; "
               f"hw3lib compute dtype {dtype_name} (amp auto); hw3lib allocator tuning "
               f"{'on' if tuned else 'off'} (hw3lib.device.tune_allocator)")
    text = (f"# Training throughput\n\nGenerated by `python -m benchmarks.throughput{' --quick' if args.quick else ''}` "
            f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n{machine}\n\n{table}\n\n"
            "ref = the reference on glibc's default allocator, as its users run it (measured first); "
            "ref+malloc = the same reference measured again after hw3lib's allocator tuning, so "
            "'ratio vs ref+malloc' is the part of the speed-up that comes from hw3lib's own step. "
            "Data wait = share of step time spent waiting for data. Ratios compare runs in the same process; "
            "absolute img/s are noisy on shared machines. GFLOP/img = forward + backward FLOPs of one training "
            "step per source image (torch.utils.flop_counter); GFLOP/s = the rate each step achieves, to compare "
            "with the matmul rate measured in the same run in hw3lib's compute dtype ('% of matmul peak'; oneDNN "
            "convolutions can exceed a plain matmul): a "
            "step at that level is compute-bound, and only less arithmetic (or lower precision on hardware that "
            "has it) makes it much faster.\n")
    from benchmarks import write_section
    return write_section(args.out, "throughput", text, echo=table)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
