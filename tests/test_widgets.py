"""The JupyterLab explorers (hw3lib.widgets), driven like a person would: change a control, the image changes.
Tiny models, random images; no frontend (the browser check is tests/test_lab_browser.py, marked slow)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hw3lib import widgets
from hw3lib.data.sets import DigitSet, FaceSet
from hw3lib.data.transforms import to_signed


def _faces(n: int, seed: int = 0) -> FaceSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g)
    return FaceSet(images, torch.zeros(n, 2, dtype=torch.uint8), tuple(f"{i:05d}.png" for i in range(n)),
                   ("Male", "Smiling"))


def _generator():
    from hw3lib.models.dcgan import Generator

    torch.manual_seed(0)
    return Generator(nz=16, ngf=4)


def test_panel_plain_text_is_one_line_not_a_widget_repr():
    panel = widgets.gan_explorer(_generator(), frames=3, size=32)
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == "(interactive DCGAN latent explorer: open the notebook in JupyterLab)"
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_vae_explorer_slider_changes_the_decoded_face():
    from hw3lib.models.vae import VAE

    torch.manual_seed(0)
    model = VAE(latent_dim=8, hidden_dims=(4, 4, 4, 4, 4))
    test = _faces(3)
    panel = widgets.vae_explorer(model, test, {"Smiling": torch.ones(8) * 3})
    before = panel.outputs["decoded"].value
    panel.controls["Smiling"].value = 2.0
    assert panel.outputs["decoded"].value != before
    inputs = panel.outputs["inputs"].value
    panel.controls["face_b"].value = 2
    assert panel.outputs["inputs"].value != inputs


def test_gan_explorer_t_and_psi():
    netG = _generator()
    panel = widgets.gan_explorer(netG, seed_a=0, seed_b=1, frames=4, size=32)
    start, strip = panel.outputs["image"].value, panel.outputs["strip"].value
    panel.controls["t"].value = 1.0
    end = panel.outputs["image"].value
    assert end != start and panel.outputs["strip"].value == strip  # t moves along the same path
    # t = 1 is exactly seed b's face (same decode as starting at a = b)
    assert widgets.gan_explorer(netG, seed_a=1, seed_b=1, size=32, frames=2).outputs["image"].value == end
    panel.controls["psi"].value = 0.0  # ψ = 0: the mean noise, the same face whatever the seeds
    assert panel.outputs["strip"].value != strip
    zero = panel.outputs["image"].value
    panel.controls["seed_a"].value = 7
    assert panel.outputs["image"].value == zero


def test_nearest_explorer_finds_a_memorised_face():
    """A 'training set' holding the generated face itself: nearest in pixels is that face at distance 0."""
    from hw3lib.eval.explore import decode_noise, seed_noise

    netG = _generator()
    sample = decode_noise(netG, seed_noise(3, netG.nz))
    train = _faces(6)
    train = FaceSet(torch.cat([train.images[:4], sample, train.images[4:]]), torch.zeros(7, 2, dtype=torch.uint8),
                    tuple(f"{i:05d}.png" for i in range(7)), train.attr_names)
    panel = widgets.nearest_explorer(netG, train, k=3, seed=3)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", panel.outputs["distances"].value)
    assert cells[0].startswith("<b>generated</b>") and cells[1].startswith("0.00<br><small>00004.png")
    before = panel.outputs["faces"].value
    panel.controls["seed"].value = 4
    assert panel.outputs["faces"].value != before
    cells = re.findall(r"<td[^>]*>(.*?)</td>", panel.outputs["distances"].value)
    assert not cells[1].startswith("0.00")  # another face: not a copy


def test_nearest_real_in_feature_space_uses_the_classifier():
    from hw3lib.eval.explore import nearest_real
    from hw3lib.models.attr import AttributeClassifier

    train = _faces(10)
    torch.manual_seed(0)
    clf = AttributeClassifier(n_attrs=2, width=4)
    d, i = nearest_real(train.images[[7, 2]], train.images, k=3, classifier=clf)
    assert d.shape == i.shape == (2, 3)
    assert i[:, 0].tolist() == [7, 2] and torch.allclose(d[:, 0], torch.zeros(2), atol=1e-3)
    assert (d[:, 1:] >= d[:, :-1]).all()  # ascending
    pix_d, pix_i = nearest_real(train.images[[7]], train.images, k=2)
    assert pix_i[0, 0] == 7 and pix_d[0, 1] > 10  # random images are far apart in pixels


def test_nearest_chunks_agree_with_one_block():
    from hw3lib.eval.explore import nearest

    g = torch.Generator().manual_seed(0)
    q, ref = torch.randn(3, 5, generator=g), torch.randn(50, 5, generator=g)
    full = torch.cdist(q, ref).topk(4, largest=False)
    d, i = nearest(q, ref, k=4, chunk=7)
    assert torch.equal(i, full.indices) and torch.allclose(d, full.values)


def test_memorisation_check_flags_copies():
    from hw3lib.eval.explore import memorisation_check

    train, test = _faces(12, seed=1), _faces(4, seed=2)
    copies = memorisation_check(train.images[:4], test.images, train.images)
    assert copies["generated"] == 0 and copies["ratio"] == 0 and copies["copies"] == 1
    novel = memorisation_check(_faces(4, seed=3).images, test.images, train.images)
    assert 0.8 < novel["ratio"] < 1.25 and novel["copies"] < 1  # random faces: as far as the test faces


def test_slerp_keeps_the_norm_between_orthogonal_vectors():
    from hw3lib.eval.explore import slerp

    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=1), torch.full((5,), 3.0), atol=1e-5)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b, atol=1e-6)
    assert torch.allclose(slerp(a, a * 2, 0.5), a * 1.5)  # parallel: the straight line


# ---------------------------------------------------------------- P3/P4


def _digits(domain: str, n: int, seed: int) -> DigitSet:
    g = torch.Generator().manual_seed(seed)
    return DigitSet(torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8, generator=g),
                    torch.arange(n) % 10, tuple(f"{i}.png" for i in range(n)), domain)


class _Classifier(torch.nn.Module):
    """uint8 digits → class log-probabilities, with ``features``: the run's ``classifier`` of the newer UDA code."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(to_signed(x)).class_logp

    def features(self, x):
        return self.net.extract(to_signed(x))


@dataclass
class _Run:
    """What ``results`` values offer: models, config (method/source/target/seed), history, maybe snapshots."""
    models: dict
    config: SimpleNamespace
    history: dict = field(default_factory=dict)

    @property
    def classifier(self):
        return _Classifier(self.models["dann"])


@pytest.fixture
def fake_uda(monkeypatch):
    """Two DANN runs (usps→mnistm seed 0 with two snapshots, and mnistm→svhn) on random digits."""
    from hw3lib.models.dann import CNNModel

    sets = {d: _digits(d, 24, i) for i, d in enumerate(("usps", "mnistm", "svhn"))}
    calls = []

    def fake_digits(root, domain, split):
        calls.append((root, domain, split))
        return sets[domain]

    def fake_tsne(*args, per_domain=500, seed=0):
        """The real one is sklearn's t-SNE (seconds, tested with the UDA code): here two features. Takes both
        generations' arguments: (classifier, source, target) or (models, method, source, target, config)."""
        if len(args) == 3:
            net, source, target = args
        else:
            net, source, target = _Classifier(args[0]["dann"]), args[2], args[3]
        n = min(per_domain, len(source), len(target))
        with torch.no_grad():
            xy = torch.cat([net.eval().features(s.images[:n])[:, :2] for s in (source, target)]).numpy()
        return {"xy": xy, "label": np.concatenate([source.labels[:n], target.labels[:n]]),
                "domain": np.r_[np.zeros(n, int), np.ones(n, int)]}

    import hw3lib.data
    import hw3lib.eval.uda

    monkeypatch.setattr(hw3lib.data, "digits", fake_digits, raising=False)  # where widgets look first
    monkeypatch.setattr(hw3lib.eval.uda, "tsne_points", fake_tsne)

    def run(src, tgt, seed, snapshots=False):
        torch.manual_seed(seed)
        model = CNNModel().eval()
        r = _Run({"dann": model}, SimpleNamespace(method="dann", source=src, target=tgt, seed=seed))
        if snapshots:
            other = CNNModel()
            r.snapshots = [{"step": 10, "state": {k: v.clone() for k, v in other.state_dict().items()}},
                           {"step": 20, "state": {k: v.clone() for k, v in model.state_dict().items()}}]
        return r

    results = {("dann", "usps", "mnistm", 0): run("usps", "mnistm", 0, snapshots=True),
               ("dann", "mnistm", "svhn", 0): run("mnistm", "svhn", 1)}
    return results, calls


def test_uda_view_counts_and_worst_images(fake_uda):
    results, calls = fake_uda
    r = results[("dann", "usps", "mnistm", 0)]
    view = widgets.uda_view(r, "DATA", per_domain=12, n_worst=5)
    assert ("DATA", "mnistm", "test") in calls and ("DATA", "usps", "test") in calls
    target = _digits("mnistm", 24, 1)
    with torch.no_grad():
        expected = (r.classifier.eval()(target.images).argmax(1) == target.labels).double().mean() * 100
    assert view.accuracy == pytest.approx(float(expected))
    assert f"accuracy {float(expected):.1f} % of 24" in view.confusion.axes[0].get_title()
    confusion = view.confusion.axes[0]
    cells = np.array([[float(t.get_text()) for t in confusion.texts]]).reshape(10, 10)
    assert np.allclose(cells.sum(1), 100, atol=6)  # rows in % (rounded per cell)
    assert len([a for a in view.worst.axes if a.images]) == 5
    # the worst images are ordered by the probability of their true class, lowest first
    ps = [float(a.get_title().split("p=")[1]) for a in view.worst.axes if a.images]
    assert ps == sorted(ps)
    assert len(view.tsne.axes[0].collections[0].get_offsets()) == 24


def test_uda_explorer_snapshot_slider(fake_uda):
    results, _ = fake_uda
    panel = widgets.uda_explorer(results, "DATA", per_domain=8, n_worst=4)
    step, status = panel.controls["step"], panel.outputs["status"]
    assert step.layout.display == "" and [label for label, _ in step.options] == ["10", "20", "final"]
    final_tsne, final_status = panel.outputs["tsne"].value, status.value
    assert "final model" in final_status and final_tsne
    step.value = 0  # step 10: other weights
    assert "step 10" in status.value and panel.outputs["confusion"].value
    assert panel.outputs["tsne"].value != final_tsne
    step.value = widgets.FINAL  # back: from the cache, as before
    assert status.value == final_status and panel.outputs["tsne"].value == final_tsne


def test_uda_explorer_picker(fake_uda):
    results, _ = fake_uda
    results = dict(reversed(results.items()))  # the run without snapshots first
    panel = widgets.uda_explorer(results, "DATA", per_domain=8, n_worst=4)
    step, status = panel.controls["step"], panel.outputs["status"]
    assert [label for label, _ in panel.controls["pair"].options] == ["mnistm → svhn", "usps → mnistm"]
    assert step.layout.display == "none" and step.value == widgets.FINAL  # no snapshots: no slider
    assert "final model" in status.value and panel.outputs["worst"].value
    panel.controls["method"].options = ["dann", "gta"]
    panel.controls["method"].value = "gta"
    assert status.value.startswith("<b>no run</b>") and panel.outputs["tsne"].value == b""


def test_uda_function_lookup_prefers_hw3lib_data(monkeypatch):
    import hw3lib.data
    import hw3lib.train.uda

    first, fallback = (lambda root, domain, split: None), (lambda root, domain, split: None)  # noqa: E731
    monkeypatch.setattr(hw3lib.data, "digits", first, raising=False)
    monkeypatch.setattr(hw3lib.train.uda, "digits", fallback, raising=False)
    assert widgets._uda_function("digits") is first
    monkeypatch.delattr(hw3lib.data, "digits")
    assert widgets._uda_function("digits") is fallback
    monkeypatch.delattr(hw3lib.train.uda, "digits")
    with pytest.raises(ImportError, match="digits not found in hw3lib.data, hw3lib.train.uda"):
        widgets._uda_function("digits")


def test_memorisation_verdict_follows_the_numbers():
    from hw3lib.eval.explore import memorisation_verdict

    text = memorisation_verdict({"pixels": {"generated": 1.0, "test": 10.0, "ratio": 0.1, "copies": 0.5},
                                 "attribute features": {"generated": 5.0, "test": 5.0, "ratio": 1.0, "copies": 0.0}})
    pixels, features = text.splitlines()
    assert "reproduces training faces" in pixels and "50%" in pixels and "ratio 0.10" in pixels
    assert "no sign of copying" in features


def test_uda_explorer_starts_at_a_run_and_shows_its_precomputed_view(fake_uda, monkeypatch):
    """The notebooks compute one run's view for their static figures and hand it to the explorer: the explorer opens
    at that run and shows those figures, without computing the t-SNE and predictions a second time."""
    results, _ = fake_uda
    start = ("dann", "mnistm", "svhn", 0)
    view = widgets.uda_view(results[start], "DATA", per_domain=8, n_worst=4)
    computed = []
    real = widgets.uda_view
    monkeypatch.setattr(widgets, "uda_view", lambda r, *a, **k: computed.append(r) or real(r, *a, **k))
    panel = widgets.uda_explorer(results, "DATA", per_domain=8, n_worst=4, start=start, view=view)
    assert computed == []  # opened on the given view
    assert panel.controls["pair"].value == ("mnistm", "svhn")
    assert f"<b>{view.accuracy:.1f} %</b>" in panel.outputs["status"].value
    assert panel.outputs["tsne"].value == widgets.figure_png(view.tsne)
    panel.controls["pair"].value = ("usps", "mnistm")  # another run: computed on demand
    assert computed == [results[("dann", "usps", "mnistm", 0)]]
    with pytest.raises(ValueError, match="not a key of results"):
        widgets.uda_explorer(results, "DATA", start=("dann", "svhn", "usps", 0))
