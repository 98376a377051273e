"""The course's data layout (HW3 ``hw3_data/``), shared by the generators and the loaders.

::

    DATA/face/{train,test}/NNNNN.png            64x64 RGB
    DATA/face/{train,test}.csv                  image_name + 13 attributes (0/1)
    DATA/digits/{usps,mnistm,svhn}/{train,test}/NNNNN.png   28x28 (usps L, others RGB); the loader resizes
                                                             other square sizes (16x16 USPS, 32x32 SVHN)
    DATA/digits/{usps,mnistm,svhn}/{train,test}.csv         image_name,label
"""
from __future__ import annotations

FACE_ATTRIBUTES: tuple[str, ...] = (
    "Bangs", "Big_Lips", "Black_Hair", "Blond_Hair", "Brown_Hair", "Heavy_Makeup",
    "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Lipstick",
)
FACE_SIZE = 64
DIGIT_SIZE = 28
DIGIT_DOMAINS: tuple[str, ...] = ("usps", "mnistm", "svhn")
DIGIT_MODES = {"usps": "L", "mnistm": "RGB", "svhn": "RGB"}  # PIL modes of the course's PNGs
SPLITS: tuple[str, ...] = ("train", "test")
# The three adaptation pairs of the course, source -> target.
UDA_PAIRS: tuple[tuple[str, str], ...] = (("usps", "mnistm"), ("mnistm", "svhn"), ("svhn", "usps"))

# (train, test) counts per data-set size. ``full`` is the course's size; ``quick`` a tenth of it for training, but
# usps keeps the course's 2007 test images: a tenth (200) would put ±3.5 points of binomial error on every usps
# accuracy (docs/NOTES.md), and testing costs next to nothing.
FACE_SIZES = {"smoke": (320, 96), "quick": (4000, 500), "full": (40000, 2621)}
DIGIT_SIZES = {
    "smoke": {"usps": (400, 200), "mnistm": (400, 200), "svhn": (400, 200)},
    "quick": {"usps": (730, 2007), "mnistm": (6000, 1000), "svhn": (7300, 2600)},
    "full": {"usps": (7291, 2007), "mnistm": (60000, 10000), "svhn": (73257, 26032)},
}
