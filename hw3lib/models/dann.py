"""DANN for 28x28 digits: the course report's Problem 3.5 network (fungtion/DANN ``models/model.py``).

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015. A feature extractor
(2 conv blocks → 800-d), a label classifier on the features, and a domain classifier behind a gradient
reversal layer. The GRL is applied functionally in :meth:`CNNModel.forward` (as in fungtion's
``ReverseLayerF``), so ``print(model)`` is exactly the course report's printout.

Shapes: input [N,3,28,28] (or [N,1,28,28], repeated to 3 channels) in [-1, 1]
→ features [N,800] → class log-probs [N,10], domain log-probs [N,2].
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from hw3lib.data.transforms import to_signed
from hw3lib.models.grl import GradientReverseFunction

FEATURE_DIM = 50 * 4 * 4


class DANNOutput(NamedTuple):
    class_logp: torch.Tensor   # [N,10] log-probabilities (LogSoftmax)
    domain_logp: torch.Tensor  # [N,2] log-probabilities; 0 = source, 1 = target
    features: torch.Tensor     # [N,800] feature-extractor output (t-SNE)


class CNNModel(nn.Module):
    """Feature extractor + label classifier + domain classifier (``forward(x, alpha)``, α = GRL coefficient)."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.feature = nn.Sequential()
        self.feature.add_module("f_conv1", nn.Conv2d(3, 64, kernel_size=5))
        self.feature.add_module("f_bn1", nn.BatchNorm2d(64))
        self.feature.add_module("f_pool1", nn.MaxPool2d(2))
        self.feature.add_module("f_relu1", nn.ReLU(True))
        self.feature.add_module("f_conv2", nn.Conv2d(64, 50, kernel_size=5))
        self.feature.add_module("f_bn2", nn.BatchNorm2d(50))
        self.feature.add_module("f_drop1", nn.Dropout2d())
        self.feature.add_module("f_pool2", nn.MaxPool2d(2))
        self.feature.add_module("f_relu2", nn.ReLU(True))

        self.class_classifier = nn.Sequential()
        self.class_classifier.add_module("c_fc1", nn.Linear(FEATURE_DIM, 100))
        self.class_classifier.add_module("c_bn1", nn.BatchNorm1d(100))
        self.class_classifier.add_module("c_relu1", nn.ReLU(True))
        self.class_classifier.add_module("c_drop1", nn.Dropout())
        self.class_classifier.add_module("c_fc2", nn.Linear(100, 100))
        self.class_classifier.add_module("c_bn2", nn.BatchNorm1d(100))
        self.class_classifier.add_module("c_relu2", nn.ReLU(True))
        self.class_classifier.add_module("c_fc3", nn.Linear(100, n_classes))
        self.class_classifier.add_module("c_softmax", nn.LogSoftmax(dim=1))

        self.domain_classifier = nn.Sequential()
        self.domain_classifier.add_module("d_fc1", nn.Linear(FEATURE_DIM, 100))
        self.domain_classifier.add_module("d_bn1", nn.BatchNorm1d(100))
        self.domain_classifier.add_module("d_relu1", nn.ReLU(True))
        self.domain_classifier.add_module("d_fc2", nn.Linear(100, 2))
        self.domain_classifier.add_module("d_softmax", nn.LogSoftmax(dim=1))

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """[N,C,28,28] → [N,800] features."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.feature(x).flatten(1)

    def forward(self, x: torch.Tensor, alpha: float = 0.0) -> DANNOutput:
        features = self.extract(x)
        class_logp = self.class_classifier(features)
        domain_logp = self.domain_classifier(GradientReverseFunction.apply(features, alpha))
        return DANNOutput(class_logp, domain_logp, features)


class DANNClassifier(nn.Module):
    """The label path of a :class:`CNNModel` as one classifier of uint8 digits (what evaluation sees).

    ``forward``: uint8 [N,3,28,28] → class log-probabilities [N,10]; ``features``: → [N,800]."""

    def __init__(self, net: CNNModel):
        super().__init__()
        self.net = net

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.extract(to_signed(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.class_classifier(self.features(images))
