"""The digit domains, each declared once: what it is, how it is read and made, and the course's numbers for it.

A :class:`Domain` holds everything the package knows of one digit domain — its name (the folder
``DATA/digits/NAME/`` of the course layout), its PIL colour mode (``"L"``: one channel, repeated to three when
read; ``"RGB"``), its native image side (every domain is read at 28x28; 16x16 USPS and 32x32 SVHN exports are
resized, :mod:`hw3lib.data.loaders`), its image counts per data size, its embedded generator (one image from a
random stream, :mod:`hw3lib.data.synth_digits`), how it is read from the public files torchvision reads
(:class:`TorchvisionFormat`, :mod:`hw3lib.data.torchvision_formats`; None: the course layout only), and the course
adaptation pairs it is the source of, with the accuracies (%) the course report gives for them.

Everything else is derived from the registry, live: :data:`NAMES` (``hw3lib.data.layout.DIGIT_DOMAINS``),
:data:`MODES` (``DIGIT_MODES``), :data:`SIZES` (``DIGIT_SIZES``), :data:`PAIRS` (``UDA_PAIRS``) and
:data:`COURSE_REPORT` (``hw3lib.eval.uda.COURSE_REPORT``) follow a domain registered after they were imported.
The course-layout reader is the same for every domain (``DATA/digits/NAME/{train,test}.csv`` + PNGs, grey or
RGB); Problem 4's development protocol uses every registered domain (:mod:`hw3lib.train.uda.develop`: with more
than three, a course pair S → T develops on every S → X, X neither S nor T, and averages).

Adding a domain (a test's toy domain, or a user's own data set in the course layout)::

    from hw3lib.data import domains

    def render(rng, label, split):            # one uint8 image: (28, 28) for "L", (28, 28, 3) for "RGB"
        ...

    domains.register(domains.Domain(
        "inverted", mode="L", native_size=28, render=render,
        sizes={"smoke": (400, 200), "quick": (2000, 500), "full": (20000, 5000)}))
    # hw3 data make / synth_digits.write_digits(root, {"inverted": (400, 200)}) now writes it,
    # load_digits(root, "inverted", "train") reads it, UDAConfig(source="inverted") accepts it.
    domains.unregister("inverted")             # tests: leave the registry as it was

``render`` and a :class:`TorchvisionFormat`'s functions may be given as ``"module:attribute"`` strings, imported on
first use (the built-in domains do, so that this module imports nothing heavy and nothing of the package).
"""
from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

DATA_SIZES: tuple[str, ...] = ("smoke", "quick", "full")  # hw3lib.data.layout.FACE_SIZES has the same keys
COLOUR_MODES: tuple[str, ...] = ("L", "RGB")


def resolve(ref: Any) -> Any:
    """``ref`` itself, or the object a ``"module:attribute"`` string names (imported now)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass(frozen=True)
class TorchvisionFormat:
    """How a domain is read from the files torchvision's data set classes read (``download=False``).

    ``load(root, split)`` → ``(uint8 [N,3,28,28], int64 [N], file)``; ``files(root)`` → the files (or folders) it
    reads, None where absent — the domain is present when any is, and :func:`hw3lib.data.loaders.data_id` hashes
    them; ``expected(split)`` → a human description of what a split needs (error messages)."""
    load: Callable[[Path, str], tuple] | str
    files: Callable[[Path], list] | str
    expected: Callable[[str], str] | str

    def read(self, root: Path, split: str) -> tuple:
        return resolve(self.load)(root, split)

    def paths(self, root: Path) -> list:
        return resolve(self.files)(root)

    def needs(self, split: str) -> str:
        return resolve(self.expected)(split)

    def present(self, root: Path) -> bool:
        return any(f is not None for f in self.paths(root))


@dataclasses.dataclass(frozen=True)
class Domain:
    """One digit domain (see the module's docstring). ``sizes``: ``{data size: (n_train, n_test)}`` for every
    size of :data:`DATA_SIZES`; ``render(rng, label, split)``: one uint8 image, ``(28, 28)`` for mode ``"L"``,
    ``(28, 28, 3)`` for ``"RGB"`` (None: no embedded generator); ``course_pairs``: ``{target: {method: accuracy
    %}}`` — the course's adaptation pairs from this domain and the course report's numbers for them."""
    name: str
    mode: str
    native_size: int
    sizes: Mapping[str, tuple[int, int]]
    render: Callable[..., Any] | str | None = None
    torchvision: TorchvisionFormat | str | None = None
    course_pairs: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    description: str = ""

    @property
    def channels(self) -> int:
        """Channels of its images as stored (every domain is read as 3: grey is repeated)."""
        return 1 if self.mode == "L" else 3

    def renderer(self) -> Callable[..., Any]:
        if self.render is None:
            raise ValueError(f"digit domain {self.name!r} has no embedded generator")
        return resolve(self.render)

    def torchvision_format(self) -> TorchvisionFormat | None:
        return resolve(self.torchvision)


_REGISTRY: dict[str, Domain] = {}


def register(domain: Domain, *, replace: bool = False) -> Domain:
    """Add ``domain`` to the registry (after those registered before it); ``replace`` an existing one of its name
    in place. A bad declaration is a ``ValueError`` naming the field."""
    if not domain.name.isidentifier() or domain.name != domain.name.lower() or "_" in domain.name:
        # the name is a folder and half of a pair key "S_T" (hw3lib.eval.uda.pair_key): no underscore
        raise ValueError(f"digit domain name must be a lowercase identifier without '_', got {domain.name!r}")
    if domain.name in _REGISTRY and not replace:
        raise ValueError(f"digit domain {domain.name!r} is already registered")
    if domain.mode not in COLOUR_MODES:
        raise ValueError(f"digit domain {domain.name!r}: mode must be one of {', '.join(COLOUR_MODES)}, "
                         f"got {domain.mode!r}")
    missing = [s for s in DATA_SIZES if s not in domain.sizes]
    if missing:
        raise ValueError(f"digit domain {domain.name!r}: sizes lacks {', '.join(missing)}")
    _REGISTRY[domain.name] = dataclasses.replace(domain, sizes=dict(domain.sizes))  # SIZES may write into it
    return _REGISTRY[domain.name]


def unregister(name: str) -> None:
    """Remove the domain ``name`` (a test's toy domain) from the registry."""
    get(name)
    del _REGISTRY[name]


def get(name: str) -> Domain:
    """The domain ``name``; an unknown one is a ``ValueError`` listing the known."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown digit domain {name!r}; known: {', '.join(_REGISTRY)}") from None


def all_domains() -> list[Domain]:
    """The registered domains, in registration order."""
    return list(_REGISTRY.values())


# ----------------------------------------------------------------------------- live views


class _View:
    """What the views share: their contents are ``items()``, recomputed from the registry on every use (a domain
    registered later shows); pickled or deep-copied, a view becomes the plain tuple or dict it holds then."""
    _plain: type = tuple

    def __init__(self, items: Callable[[], Any]):
        self._items = items

    def __getitem__(self, key):
        return self._items()[key]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator:
        return iter(self._items())

    def __contains__(self, x) -> bool:
        return x in self._items()

    def __eq__(self, other) -> bool:
        return self._items() == (self._plain(other) if isinstance(other, (Sequence, Mapping)) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._items())

    def __reduce__(self):
        return self._plain, (self._items(),)


class _Live(_View, Sequence):
    """A tuple-like view (``DIGIT_DOMAINS``, ``UDA_PAIRS``)."""

    def __add__(self, other):
        return self._items() + tuple(other)


class _LiveMap(_View, Mapping):
    """A read-only dict-like view (``DIGIT_MODES``, ``COURSE_REPORT``)."""
    _plain = dict


class _Sizes(_LiveMap, MutableMapping):
    """``{data size: {domain: (n_train, n_test)}}``; setting a size's counts writes them into the domains (so a
    test's ``monkeypatch.setitem(DIGIT_SIZES, "smoke", ...)`` shrinks every domain, and undoes it)."""

    def __setitem__(self, size: str, counts: Mapping[str, tuple[int, int]]) -> None:
        for name, c in counts.items():
            get(name).sizes[size] = tuple(c)  # type: ignore[index]

    def __delitem__(self, size: str) -> None:  # pragma: no cover - every size is declared by every domain
        raise TypeError("a data size cannot be removed from the digit domains")


def _pairs() -> tuple[tuple[str, str], ...]:
    return tuple((d.name, t) for d in _REGISTRY.values() for t in d.course_pairs)


def _course_report() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for d in _REGISTRY.values():
        for t, numbers in d.course_pairs.items():
            for method, acc in numbers.items():
                out.setdefault(method, {})[f"{d.name}_{t}"] = acc
    return out


NAMES: Sequence[str] = _Live(lambda: tuple(_REGISTRY))
MODES: Mapping[str, str] = _LiveMap(lambda: {d.name: d.mode for d in _REGISTRY.values()})
SIZES: MutableMapping[str, dict[str, tuple[int, int]]] = _Sizes(
    lambda: {s: {d.name: tuple(d.sizes[s]) for d in _REGISTRY.values()} for s in DATA_SIZES})
PAIRS: Sequence[tuple[str, str]] = _Live(_pairs)
# {method: {"S_T": accuracy %}}: the course report's numbers on the real course data, per course pair.
COURSE_REPORT: Mapping[str, dict[str, float]] = _LiveMap(_course_report)


# ----------------------------------------------------------------------------- the course's three domains

_SYNTH = "hw3lib.data.synth_digits"
_TV = "hw3lib.data.torchvision_formats"

register(Domain(
    "usps", mode="L", native_size=16, render=f"{_SYNTH}:_render_usps", torchvision=f"{_TV}:USPS",
    sizes={"smoke": (400, 200), "quick": (730, 2007), "full": (7291, 2007)},
    # quick keeps the course's 2007 test images: a tenth (200) would put ±3.5 points of binomial error on every
    # usps accuracy (docs/NOTES.md), and testing costs next to nothing
    course_pairs={"mnistm": {"source-only": 29.92, "dann": 42.14, "target-only": 89.71, "gta": 48.05}},
    description="USPS handwritten digits (Hull 1994), 16x16 grey scans"))
register(Domain(
    "mnistm", mode="RGB", native_size=28, render=f"{_SYNTH}:_render_mnistm", torchvision=f"{_TV}:MNISTM",
    sizes={"smoke": (400, 200), "quick": (6000, 1000), "full": (60000, 10000)},
    course_pairs={"svhn": {"source-only": 44.48, "dann": 53.33, "target-only": 85.84, "gta": 61.45}},
    description="MNIST-M (Ganin & Lempitsky 2015): MNIST digits blended with photograph crops"))
register(Domain(
    "svhn", mode="RGB", native_size=32, render=f"{_SYNTH}:_render_svhn", torchvision=f"{_TV}:SVHN",
    sizes={"smoke": (400, 200), "quick": (7300, 2600), "full": (73257, 26032)},
    course_pairs={"usps": {"source-only": 39.66, "dann": 56.15, "target-only": 94.76, "gta": 63.22}},
    description="SVHN cropped house numbers (Netzer et al. 2011), 32x32 RGB"))
