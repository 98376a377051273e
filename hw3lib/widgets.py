"""Interactive explorers (ipywidgets) for JupyterLab. Notebooks only call these; each returns a :class:`Panel` and
has a static figure that stands in for it in the report (papermill and nbconvert keep no live widget: the panel
then prints one line, which the report drops):

=====================  ==========================================  ======================================
explorer               what it shows                               static stand-in
=====================  ==========================================  ======================================
:func:`vae_explorer`   P1: interpolate two test faces' latents,    ``hw3lib.plots.vae.latent_walk``
                       add attribute directions
:func:`gan_explorer`   P2: slerp between two noise seeds (slider   ``hw3lib.plots.gan.latent_interpolation``
                       t), truncation ψ
:func:`nearest_explorer` P2: a generated face and its nearest real  ``hw3lib.plots.gan.nearest_real_figure``
                       training faces (pixels or attribute
                       features): a memorisation check
:func:`uda_explorer`   P3/P4: pick pair × method × seed (and a     :func:`uda_view` (its ``.confusion``,
                       training snapshot): t-SNE, confusion         ``.tsne`` and ``.worst`` figures)
                       matrix, worst-classified target images
=====================  ==========================================  ======================================

Every panel keeps its controls and image outputs by name (``panel.controls["t"].value = 0.5`` updates
``panel.outputs["image"].value``, PNG bytes), so code and tests can drive it like a person would.
"""
from __future__ import annotations

import copy
import importlib
import inspect
import io
from typing import Any, Callable, Mapping, NamedTuple

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from hw3lib.data.sets import FaceSet
from hw3lib.plots import plt


class Panel(W.VBox):
    """A VBox whose controls and image outputs are kept by name (``controls``, ``outputs``). Outside a live
    frontend (papermill, nbconvert) its plain-text form is one line naming the explorer, not a widget repr."""

    def __init__(self, children, controls: Mapping[str, W.Widget], outputs: Mapping[str, W.Widget], what: str):
        super().__init__(list(children))
        self.controls = dict(controls)
        self.outputs = dict(outputs)
        self.what = what

    def _repr_mimebundle_(self, **kwargs):
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = f"(interactive {self.what}: open the notebook in JupyterLab)"
        return bundle


# ---------------------------------------------------------------- images → PNG bytes

def png(image: torch.Tensor | np.ndarray, width: int | None = None, height: int | None = None) -> bytes:
    """One image ([3,H,W] uint8 or [0, 1] float tensor, or HWC uint8 array) as PNG bytes, resized (nearest)."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        x = image.detach().cpu()
        x = x if x.dtype == torch.uint8 else x.float().clamp(0, 1).mul(255).round().to(torch.uint8)
        image = x.permute(1, 2, 0).numpy()
    im = Image.fromarray(np.ascontiguousarray(image))
    if width or height:
        im = im.resize((width or im.width, height or im.height), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def row_png(images: torch.Tensor, size: int = 96) -> bytes:
    """uint8 [N,3,H,W] side by side (2 px white gaps), each ``size`` px high, as PNG bytes."""
    from torchvision.utils import make_grid

    grid = make_grid(images.cpu(), nrow=len(images), padding=2, pad_value=255)
    scale = size / images.shape[-2]
    return png(grid, round(grid.shape[-1] * scale), round(grid.shape[-2] * scale))


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _image(width: int | None = None, height: int | None = None) -> W.Image:
    """An empty PNG image widget: ``width``/``height`` px, else the image's own size (never stretched)."""
    layout = {k: f"{v}px" for k, v in (("width", width), ("height", height)) if v}
    return W.Image(format="png", layout=W.Layout(align_self="flex-start", **layout))


WIDE = {"description_width": "initial"}  # descriptions shown whole, not cut to the default 100 px


def _watch(update: Callable, *controls: W.Widget) -> None:
    for c in controls:
        c.observe(update, names="value")


# ---------------------------------------------------------------- P1: VAE latent explorer

def vae_explorer(model, test: FaceSet, directions: Mapping[str, torch.Tensor], *, a: int = 0, b: int = 1,
                 max_scale: float = 2.0) -> Panel:
    """Choose two test faces (``face a``, ``face b``), interpolate between their latent means (slider ``t``) and
    add attribute directions [D] (one slider each, −``max_scale``..``max_scale``). Outputs: ``inputs`` (a | b)
    and ``decoded`` (256x256)."""
    from hw3lib.plots.vae import _decode01, _mu

    n = len(test)
    face_a = W.BoundedIntText(value=a, min=0, max=n - 1, description="face a")
    face_b = W.BoundedIntText(value=b, min=0, max=n - 1, description="face b")
    t = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, description="a → b")
    sliders = {k: W.FloatSlider(value=0.0, min=-max_scale, max=max_scale, step=0.1, description=k)
               for k in directions}
    decoded, inputs = W.Image(format="png", width=256, height=256), W.Image(format="png", width=256, height=128)
    cache: dict[tuple[int, int], torch.Tensor] = {}

    def update(*_):
        key = (int(face_a.value), int(face_b.value))
        if key not in cache:
            cache.clear()
            cache[key] = _mu(model, test.images[list(key)])
            inputs.value = png(torch.cat([test.images[key[0]], test.images[key[1]]], dim=2), 256, 128)
        mu = cache[key]
        z = (1 - t.value) * mu[0] + t.value * mu[1]
        for k, s in sliders.items():
            z = z + s.value * directions[k].float().cpu()
        decoded.value = png(_decode01(model, z.unsqueeze(0))[0], 256, 256)

    _watch(update, face_a, face_b, t, *sliders.values())
    update()
    controls = W.VBox([W.HBox([face_a, face_b]), t, *sliders.values()])
    body = W.HBox([W.VBox([W.Label("inputs a | b"), inputs, W.Label("decoded")]), decoded, controls])
    return Panel([body], {"face_a": face_a, "face_b": face_b, "t": t, **sliders},
                 {"inputs": inputs, "decoded": decoded}, "latent explorer")


# ---------------------------------------------------------------- P2: DCGAN explorers

def gan_explorer(netG, *, seed_a: int = 0, seed_b: int = 1, t: float = 0.0, psi: float = 1.0, frames: int = 8,
                 size: int = 192) -> Panel:
    """Walk between the noise of two seeds: the face of ``ψ · slerp(z_a, z_b, t)`` (``image``, ``size`` px) and
    the whole path in ``frames`` steps at the current ψ (``strip``). Controls ``seed_a``, ``seed_b``, ``t``,
    ``psi`` (truncation: 1 = the prior itself, towards 0 = more typical faces)."""
    from hw3lib.eval.explore import decode_noise, interpolate_noise

    big = 2 ** 31 - 1
    a = W.BoundedIntText(value=seed_a, min=0, max=big, description="seed a")
    b = W.BoundedIntText(value=seed_b, min=0, max=big, description="seed b")
    t_slider = W.FloatSlider(value=t, min=0.0, max=1.0, step=0.05, description="a → b (t)", style=WIDE)
    psi_slider = W.FloatSlider(value=psi, min=0.0, max=1.0, step=0.05, description="ψ (truncation)", style=WIDE)
    image, strip = _image(size, size), _image()
    ts = torch.linspace(0, 1, frames)
    shown: dict[str, Any] = {}

    def update(*_):
        key = (int(a.value), int(b.value), float(psi_slider.value))
        if shown.get("strip") != key:
            strip.value = row_png(decode_noise(netG, interpolate_noise(*key[:2], ts, netG.nz, key[2])), 80)
            shown["strip"] = key
        z = interpolate_noise(key[0], key[1], float(t_slider.value), netG.nz, key[2])
        image.value = png(decode_noise(netG, z)[0], size, size)

    _watch(update, a, b, t_slider, psi_slider)
    update()
    controls = W.VBox([W.HBox([a, b]), t_slider, psi_slider])
    return Panel([W.HBox([image, controls]), W.Label(f"the path from a to b in {frames} steps at this ψ"), strip],
                 {"seed_a": a, "seed_b": b, "t": t_slider, "psi": psi_slider}, {"image": image, "strip": strip},
                 "DCGAN latent explorer")


def nearest_explorer(netG, train: FaceSet, *, classifier=None, k: int = 5, seed: int = 0, psi: float = 1.0,
                     size: int = 96) -> Panel:
    """A generated face (noise seed slider ``seed``) beside its ``k`` nearest real training faces (``faces``),
    in pixel space or — with the attribute ``classifier`` — in its feature space (dropdown ``space``); the
    distances and training file names are in ``distances``. Near-zero pixel distances mean a memorised face."""
    from hw3lib.eval.explore import decode_noise, embed, nearest, seed_noise

    seed_slider = W.IntSlider(value=seed, min=0, max=999, description="sample seed", style=WIDE)
    spaces = [("pixels (L2)", "pixels")] + ([("attribute features (L2)", "features")] if classifier is not None else [])
    space = W.Dropdown(options=spaces, value="pixels", description="space")
    faces, distances = _image(), W.HTML()
    features: dict[str, torch.Tensor] = {}  # the training faces' classifier features, computed once

    def update(*_):
        sample = decode_noise(netG, psi * seed_noise(seed_slider.value, netG.nz))
        if space.value == "features":
            if "train" not in features:
                features["train"] = embed(train.images, classifier)
            d, i = nearest(embed(sample, classifier), features["train"], k)
        else:
            d, i = nearest(embed(sample), train.images, k, transform=embed)
        faces.value = row_png(torch.cat([sample, train.images[i[0]].cpu()]), size)
        td = f'<td style="width:{size + 2}px;text-align:center;padding:0">'
        cells = "".join(f"{td}{float(dist):.2f}<br><small>{train.names[int(j)]}</small></td>"
                        for dist, j in zip(d[0], i[0]))
        distances.value = (f'<table style="border-collapse:collapse"><tr>{td}<b>generated</b><br><small>seed '
                           f"{seed_slider.value}</small></td>{cells}</tr></table>"
                           f"<small>L2 distance in {space.value} space, nearest first</small>")

    _watch(update, seed_slider, space)
    update()
    return Panel([W.HBox([seed_slider, space]), faces, distances], {"seed": seed_slider, "space": space},
                 {"faces": faces, "distances": distances}, "nearest-real-face viewer")


# ---------------------------------------------------------------- P3/P4: UDA run explorer

def _uda_function(name: str) -> Callable:
    """``digits``, ``predict_logits`` or ``tsne_points`` wherever the UDA code keeps them now (``digits`` moves
    from ``hw3lib.train.uda`` to ``hw3lib.data``)."""
    homes = {"digits": ("hw3lib.data", "hw3lib.train.uda"),
             "predict_logits": ("hw3lib.eval.uda",),
             "tsne_points": ("hw3lib.eval.uda",)}[name]
    for module in homes:
        try:
            fn = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if callable(fn) and not inspect.ismodule(fn):
            return fn
    raise ImportError(f"{name} not found in {', '.join(homes)}")


FINAL = -1  # the step slider's position of the final model


class UDAView(NamedTuple):
    """One run (at one snapshot) seen on its target test set."""
    accuracy: float      # target-test accuracy (%)
    tsne: Figure         # source + target test features (seaborn t-SNE, class colour, domain marker)
    confusion: Figure    # target-test confusion matrix (% of each true digit)
    worst: Figure        # the target test images given the lowest probability for their true digit


def snapshot_models(r, index: int | None) -> dict:
    """``r.models`` (``index`` None), else a copy whose ``"dann"`` network holds ``r.snapshots[index]["state"]``."""
    if index is None:
        return r.models
    model = copy.deepcopy(r.models["dann"])
    model.load_state_dict(r.snapshots[index]["state"])
    return {**r.models, "dann": model}


def _run_predictions(r, models: dict, source, target, *, per_domain: int, seed: int) -> tuple[torch.Tensor, dict]:
    """(class log-probabilities [N,10] of the target test images, t-SNE points) of ``models`` of run ``r``.

    Two generations of :mod:`hw3lib.eval.uda`: ``predict_logits(classifier, images)`` with the run's
    ``classifier`` (a module built from its models), or ``predict_logits(models, method, images, config)``."""
    predict_logits, tsne_points = _uda_function("predict_logits"), _uda_function("tsne_points")
    c = r.config
    if next(iter(inspect.signature(predict_logits).parameters)) == "classifier":
        run = copy.copy(r)
        run.models = models
        net = run.classifier
        logits = predict_logits(net, target.images)
        points = tsne_points(net, source, target, per_domain=per_domain, seed=seed)
    else:
        device = next(next(iter(models.values())).parameters()).device
        logits = predict_logits(models, c.method, target.images.to(device), c)
        points = tsne_points(models, c.method, source, target, c, per_domain=per_domain, seed=seed)
    return torch.log_softmax(logits.float(), 1).cpu(), points


def uda_view(r, data_dir, *, snapshot: int | None = None, per_domain: int = 200, n_worst: int = 16,
             seed: int = 0) -> UDAView:
    """Predictions of run ``r`` (``r.models``, ``r.config`` with ``.source/.target/.method/.seed``) on the target
    test digits: accuracy, t-SNE (``per_domain`` test images of each domain), confusion matrix and the ``n_worst``
    worst-classified images; at ``r.snapshots[snapshot]`` instead of the final model when given."""
    from hw3lib.eval.uda import pair_label
    from hw3lib.plots.uda import confusion_figure, tsne_figure, worst_figure

    digits = _uda_function("digits")
    c = r.config
    source, target = digits(data_dir, c.source, "test"), digits(data_dir, c.target, "test")
    logp, points = _run_predictions(r, snapshot_models(r, snapshot), source, target, per_domain=per_domain,
                                    seed=seed)
    y = target.labels.cpu()
    pred = logp.argmax(1)
    p_true = logp.gather(1, y[:, None]).exp().squeeze(1)
    worst = torch.argsort(p_true)[:n_worst]
    where = "final model" if snapshot is None else f"step {r.snapshots[snapshot]['step']}"
    title = f"{c.method} {pair_label(c.source, c.target)} (seed {c.seed}, {where})"
    figs = (tsne_figure(points, title, (c.source, c.target)), confusion_figure(y, pred, title),
            worst_figure(target.images[worst].cpu(), y[worst], pred[worst], p_true[worst],
                         f"worst-classified {c.target} test images (true→predicted, p(true))"))
    import matplotlib.pyplot as plt

    for fig in figs:  # shown where asked (display / hw3lib.plots.show), never again uncaptioned at the cell's end
        plt.close(fig)
    return UDAView(float((pred == y).double().mean() * 100) if len(y) else float("nan"), *figs)


def uda_explorer(results: Mapping[tuple[str, str, str, int], Any], data_dir, *, per_domain: int = 200,
                 n_worst: int = 16, seed: int = 0, start: tuple[str, str, str, int] | None = None,
                 view: UDAView | None = None) -> Panel:
    """Pick a run of ``results`` (``{(method, src, tgt, seed): r}``) with the ``pair``, ``method`` and ``seed``
    dropdowns; shows its t-SNE (``tsne``), confusion matrix (``confusion``) and worst-classified target test
    images (``worst``), see :func:`uda_view`. A run with ``r.snapshots`` (``[{"step", "state"}, ...]``: state dicts
    of ``models["dann"]``) also gets a ``step`` slider (the last position is the final model).

    ``start``: the key of the run shown first (else the first pair, method and seed); ``view``: that run's
    final-model :func:`uda_view` at the same ``per_domain``/``n_worst``/``seed``, when the notebook has already
    computed it for its static figures: it is shown as it is, not computed again (a t-SNE: seconds).

    The cell to add to p3_dann / p4_uda (after ``results`` exists; the report shows the static figures instead)::

        from hw3lib.widgets import uda_explorer
        display(uda_explorer(results, data_dir, per_domain=tsne_per_domain, seed=seed))
    """
    if view is not None and start is None:
        raise ValueError("uda_explorer: a precomputed view needs start=, the key of the run it shows")
    if start is not None and start not in results:
        raise ValueError(f"uda_explorer: start={start!r} is not a key of results")
    from hw3lib.eval.uda import pair_label, row_label, row_order

    keys = list(results)
    pairs = list(dict.fromkeys((s, t) for _, s, t, _ in keys))
    pair = W.Dropdown(options=[(pair_label(s, t), (s, t)) for s, t in pairs], description="pair")
    # The registry's labels, in its table order.
    method = W.Dropdown(options=[(row_label(m), m) for m in row_order(dict.fromkeys(m for m, *_ in keys))],
                        description="method")
    run_seed = W.Dropdown(options=sorted({sd for *_, sd in keys}), description="seed")
    step = W.SelectionSlider(options=[("final", FINAL)], description="step", continuous_update=False)
    status = W.HTML()
    tsne, confusion, worst = _image(), _image(), _image()
    cache: dict[tuple, tuple[float, bytes, bytes, bytes]] = {}
    quiet = {"on": False}  # while the step options are replaced
    if start is not None:
        pair.value, method.value, run_seed.value = (start[1], start[2]), start[0], start[3]
    if view is not None:
        cache[start, None] = (view.accuracy, figure_png(view.tsne), figure_png(view.confusion), figure_png(view.worst))

    def set_steps():
        r = results.get((method.value, *pair.value, run_seed.value))
        snaps = (getattr(r, "snapshots", None) or []) if r is not None and "dann" in r.models else []
        options = [(str(s["step"]), i) for i, s in enumerate(snaps)] + [("final", FINAL)]
        if list(step.options) != options:
            quiet["on"] = True
            try:
                step.options = options
                step.value = FINAL
            finally:
                quiet["on"] = False
        step.layout.display = "" if snaps else "none"

    def update(*_):
        if quiet["on"]:
            return
        key = (method.value, *pair.value, run_seed.value)
        r = results.get(key)
        if r is None:
            status.value = f"<b>no run</b> {key[0]} {pair_label(*pair.value)} seed {key[3]}"
            for out in (tsne, confusion, worst):
                out.value = b""
            return
        snap = None if step.value == FINAL else step.value
        if (key, snap) not in cache:
            status.value = "computing t-SNE and predictions …"
            view = uda_view(r, data_dir, snapshot=snap, per_domain=per_domain, n_worst=n_worst, seed=seed)
            cache[key, snap] = (view.accuracy, figure_png(view.tsne), figure_png(view.confusion),
                                figure_png(view.worst))
        acc, tsne.value, confusion.value, worst.value = cache[key, snap]
        where = "final model" if snap is None else f"step {r.snapshots[snap]['step']}"
        status.value = f"target-test accuracy <b>{acc:.1f} %</b> ({where})"

    def on_run(*_):
        set_steps()
        update()

    _watch(on_run, pair, method, run_seed)
    _watch(update, step)
    on_run()
    return Panel([W.HBox([pair, method, run_seed]), step, status, tsne, W.HBox([confusion, worst])],
                 {"pair": pair, "method": method, "seed": run_seed, "step": step},
                 {"status": status, "tsne": tsne, "confusion": confusion, "worst": worst}, "UDA run explorer")
