"""Data: the course layout (``face/``, ``digits/``), torchvision formats, and the embedded generators.

>>> faces = load_faces("data", "train")          # FaceSet, uint8 [N,3,64,64]
>>> usps = load_digits("data", "usps", "test")   # DigitSet, uint8 [N,3,28,28]
>>> require_data("data", make=True, part="faces")  # makes the embedded data when it is missing
"""
from hw3lib.data.layout import DIGIT_DOMAINS, FACE_ATTRIBUTES, UDA_PAIRS
from hw3lib.data.loaders import data_id, data_info, digits, load_digits, load_faces
from hw3lib.data.require import has_data, require_data
from hw3lib.data.sets import DigitSet, FaceSet

__all__ = ["DIGIT_DOMAINS", "FACE_ATTRIBUTES", "UDA_PAIRS", "DigitSet", "FaceSet", "data_id", "data_info", "digits",
           "has_data", "load_digits", "load_faces", "require_data"]
