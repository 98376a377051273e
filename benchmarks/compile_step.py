"""Does ``torch.compile`` (inductor) make the DANN training step faster on this device? Eager and compiled, same run.

    python -m benchmarks.compile_step [--batch 128] [--steps 30]

``benchmarks/PROFILE.md`` shows the DANN step's convolutions near the matmul rate and about a third of the step in
memory-bound BatchNorm, pooling, dropout and ReLU passes: what a compiler could fuse. This times one DANN step
(source and target passes, the three NLL losses, Adam with foreach) on random images of the real shapes in
channels_last, eager and then under ``torch.compile`` (the GRL coefficient changes every step, as in training), and
prints the compile time and the median step time of each.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from hw3lib.device import tune_allocator
from hw3lib.models.dann import CNNModel


def _steps(net, forward, batch: int, steps: int) -> tuple[float, float]:
    """(seconds of the first two steps, median seconds per step after them)."""
    opt = torch.optim.Adam(net.parameters(), 1e-3, foreach=True)
    g = torch.Generator().manual_seed(0)
    x, xt = (torch.randn(batch, 3, 28, 28, generator=g).to(memory_format=torch.channels_last) for _ in range(2))
    y = torch.randint(0, 10, (batch,), generator=g)
    zeros, ones = torch.zeros(batch, dtype=torch.long), torch.ones(batch, dtype=torch.long)

    def step(k: int) -> None:
        lam = k / (steps + 2)
        out, out_t = forward(x, lam), forward(xt, lam)
        loss = F.nll_loss(out.class_logp, y) + F.nll_loss(out.domain_logp, zeros) + F.nll_loss(out_t.domain_logp, ones)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step(0), step(1)
    first = time.perf_counter() - t0
    times = []
    for k in range(steps):
        t = time.perf_counter()
        step(k + 2)
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args(argv)
    tune_allocator()
    torch.manual_seed(0)
    eager = CNNModel().to(memory_format=torch.channels_last)
    compiled = CNNModel().to(memory_format=torch.channels_last)
    compiled.load_state_dict(eager.state_dict())
    _, e = _steps(eager, eager, args.batch, args.steps)
    first, c = _steps(compiled, torch.compile(compiled), args.batch, args.steps)
    print(f"DANN step, batch {args.batch} per domain, {torch.get_num_threads()} threads, torch {torch.__version__}: "
          f"eager {e * 1e3:.1f} ms; torch.compile {c * 1e3:.1f} ms ({e / c:.2f}x) after {first:.0f} s of compiling")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
