"""The course's data layout (HW3 ``hw3_data/``), shared by the generators and the loaders.

::

    DATA/face/{train,test}/NNNNN.png            64x64 RGB
    DATA/face/{train,test}.csv                  image_name + 13 attributes (0/1)
    DATA/digits/{usps,mnistm,svhn}/{train,test}/NNNNN.png   28x28 (usps L, others RGB); the loader resizes
                                                             other square sizes (16x16 USPS, 32x32 SVHN)
    DATA/digits/{usps,mnistm,svhn}/{train,test}.csv         image_name,label

The digit domains (the three above, and any registered later) are declared in :mod:`hw3lib.data.domains`.
"""
from __future__ import annotations

FACE_ATTRIBUTES: tuple[str, ...] = (
    "Bangs", "Big_Lips", "Black_Hair", "Blond_Hair", "Brown_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Lipstick",
)
FACE_SIZE = 64
DIGIT_SIZE = 28
SPLITS: tuple[str, ...] = ("train", "test")
# (train, test) counts per data-set size. ``full`` is the course's size; ``quick`` a tenth of it for training (the
# digit domains' counts: hw3lib.data.domains).
FACE_SIZES = {"smoke": (320, 96), "quick": (4000, 500), "full": (40000, 2621)}
# The digit domains' facts (DIGIT_DOMAINS, DIGIT_MODES: PIL modes of the course's PNGs, DIGIT_SIZES, UDA_PAIRS: the
# course's adaptation pairs, source -> target) are declared once per domain in hw3lib.data.domains; these names are
# live views of that registry (module __getattr__, PEP 562), so a domain registered later shows in them too.
_DOMAIN_VIEWS = {"DIGIT_DOMAINS": "NAMES", "DIGIT_MODES": "MODES", "DIGIT_SIZES": "SIZES", "UDA_PAIRS": "PAIRS"}


def __getattr__(name: str):
    if name in _DOMAIN_VIEWS:
        from hw3lib.data import domains

        return getattr(domains, _DOMAIN_VIEWS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
