"""One DANN run of tests/test_distributed.py's single-process vs 2-process comparison, as a script and a function.

``python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_replica.py OUT`` (gloo, CPU) and
``train(OUT)`` in a single process train the same run at the same *global* batch through the real loop
(:func:`hw3lib.train.uda.loop.fit`: :class:`hw3lib.data.batches.Batches` shards each global batch over the ranks,
:meth:`hw3lib.runtime.Runtime.prepare` wraps the net in DDP, whose all-reduce averages the ranks' gradients) and
write each rank's weights to ``OUT/rank{r}.pt`` (plus the initial ones, ``OUT/init.pt``, from rank 0).

The network is DANN's with its BatchNorm and dropout layers replaced by identities: those two make a step depend on
how the batch is split (per-rank batch statistics, per-rank dropout masks), so only without them is a 2-process step
the single-process step up to float rounding. The optimiser is SGD (momentum, annealed rate): a weight's change is
linear in its gradients, so rounding noise in the gradients stays rounding noise in the weights (Adam's
normalisation can turn it into a ±lr move).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

import synthetic  # tests/synthetic.py: this file's folder is on sys.path both as a script and under pytest

STEPS, GLOBAL_BATCH, LR = 3, 16, 0.05


def plain_dann() -> nn.Module:
    """DANN's network (:class:`hw3lib.models.dann.CNNModel`) without BatchNorm and dropout (seeded weights)."""
    from hw3lib.models.dann import CNNModel

    torch.manual_seed(0)
    net = CNNModel()
    for seq in (net.feature, net.class_classifier, net.domain_classifier):
        for name, layer in list(seq.named_children()):
            if isinstance(layer, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)):
                setattr(seq, name, nn.Identity())
    return net


def train(out: str | Path) -> None:
    from hw3lib import methods
    from hw3lib.runtime import launch
    from hw3lib.train.uda import Domains, UDAConfig
    from hw3lib.train.uda.loop import fit

    out = Path(out)
    config = UDAConfig(method="dann", source="usps", target="mnistm", steps=STEPS, batch_size=GLOBAL_BATCH,
                       optimizer="sgd", lr=LR, evals=0, device="cpu").validate()
    data = Domains(synthetic.digits("usps", 48, seed=1), synthetic.digits("mnistm", 48, seed=2),
                   synthetic.digits("mnistm", 8, seed=3), synthetic.digits("usps", 8, seed=4))
    with launch(config) as rt:  # under torchrun: the gloo process group; else a single process
        nets = {"dann": plain_dann()}
        if rt.is_main:
            out.mkdir(parents=True, exist_ok=True)
            torch.save({k: v.clone() for k, v in nets["dann"].state_dict().items()}, out / "init.pt")
        fit(methods.get("dann"), nets, data, config, rt, run_dir=None)
        state = {k: v.detach().contiguous().clone() for k, v in nets["dann"].state_dict().items()}
        out.mkdir(parents=True, exist_ok=True)
        torch.save(state, out / f"rank{rt.dist.rank}.pt")


if __name__ == "__main__":
    train(sys.argv[1])
