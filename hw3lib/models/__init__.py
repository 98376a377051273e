"""Model registry: ``build("vae")``, ``build("dcgan-generator")``, ``build("dann")``, ``build("gta-netF")`` ...

Each model lives in its own self-contained file and is configured by constructor arguments.
"""
from __future__ import annotations

import importlib

from torch import nn

_BUILDERS: dict[str, str] = {
    "vae": "hw3lib.models.vae:VAE",
    "dcgan-generator": "hw3lib.models.dcgan:Generator",
    "dcgan-discriminator": "hw3lib.models.dcgan:Discriminator",
    "dann": "hw3lib.models.dann:CNNModel",
    "gta-netF": "hw3lib.models.gta:_netF",
    "gta-netC": "hw3lib.models.gta:_netC",
    "gta-netG": "hw3lib.models.gta:_netG",
    "gta-netD": "hw3lib.models.gta:_netD",
    "face-attr": "hw3lib.models.attr:AttributeClassifier",
}


def names() -> list[str]:
    return sorted(_BUILDERS)


def build(name: str, **kwargs) -> nn.Module:
    """Instantiate a registered model by name with constructor ``kwargs``."""
    try:
        target = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(names())}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)(**kwargs)
