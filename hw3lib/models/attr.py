"""A small face-attribute classifier whose penultimate features are the metric space of Problem 2's sample
metrics (Fréchet distance, Heusel et al., 2017; KID, Bińkowski et al., 2018; precision/recall/density/coverage).

Inception-v3 weights (what FID uses) cannot be downloaded here, so the embedding is learned from the training
faces themselves: a 4-block CNN trained with BCE-with-logits on the 13 course attributes (``hw3lib.train.attr``).
Its globally pooled activations (the analogue of Inception's pool3) summarise what distinguishes faces by their
attributes — hair colour and style, gender, smile, makeup — which is what a face generator must get right.

Shapes: input [N,3,64,64] float in [-1, 1]; ``features`` → [N, feat_dim]; ``forward`` → logits [N, n_attrs].
"""
from __future__ import annotations

import torch
from torch import nn

from hw3lib.data.layout import FACE_ATTRIBUTES


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttributeClassifier(nn.Module):
    """[N,3,64,64] in [-1,1] → 13 attribute logits; ``features`` gives the pooled ``feat_dim``-d embedding.

    Four stride-2 3x3 conv + BN + ReLU blocks (64→32→16→8→4 px; widths w, 2w, 4w, 8w = ``feat_dim``), global
    average pooling, a linear head. Small on purpose: it is a yardstick trained once per data folder, not a model
    the report is about.
    """

    def __init__(self, n_attrs: int = len(FACE_ATTRIBUTES), width: int = 32):
        super().__init__()
        self.feat_dim = 8 * width
        self.body = nn.Sequential(_block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width),
                                  _block(4 * width, 8 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.feat_dim, n_attrs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
