"""Procedurally rendered stand-in for the course's CelebA face set (DLCV HW3).

No face data set can be downloaded where this project runs, so faces are drawn
from scratch and written in exactly the course's layout::

    ROOT/face/{train,test}/NNNNN.png    64x64 RGB, 5-digit index per split from 00000
    ROOT/face/{train,test}.csv          image_name + FACE_ATTRIBUTES as 0/1 integers

Approach
--------
Each face is a stack of flat shapes (PIL ``ImageDraw`` polygons) painted at 4x
resolution (256 px) and reduced to 64 px by 4x4 area averaging (supersampling
antialiasing), which gives the soft look of a downscaled photograph. Translucent fills (drawn with
an ``"RGBA"`` ink on the RGB canvas, so they blend) provide shading: eye
sockets, cheekbone highlights, blush, stubble. Hair is one procedural texture
(strands radiating from the crown; sinusoidally bent for wavy hair; grainy
for hair that is neither straight nor wavy: curls, frizz) pasted through two masks: one
behind the head and one in front of it (cap, bangs, side locks).

Every shape is defined in *face units* (nominal 64-px pixels, origin between
the eyes, v pointing down) and mapped to the canvas by one similarity
transform, so head position, scale and tilt are free nuisance variables that
never distort the features. Lighting (side gradient, exposure, colour cast),
pixel noise and occasional blur are applied at 64 px.

Attribute model
---------------
``sample_attributes`` draws the 13 attributes from a small hand-made Bayesian
network whose marginals and main dependencies follow CelebA:

* ``Male`` ~ 42 %. Gender drives most other attributes.
* Hair colour: at most one of Black/Blond/Brown (the rest, "other", is drawn
  gray, auburn or bald); Blond is mostly female.
* ``Heavy_Makeup`` (~62 % of women) and ``Wearing_Lipstick`` (~75 % of women,
  nearly always with makeup) are almost never set for men: overall rates are
  about 36 % and 44 %, close to CelebA's 39 % and 47 %.
* ``Smiling`` ~ 48 %; ``High_Cheekbones`` mostly with a smile (P=0.80 vs 0.12);
  ``Mouth_Slightly_Open`` ~ 48 % and also tied to smiling (0.70 vs 0.28).
* ``Straight_Hair`` / ``Wavy_Hair`` exclusive (or neither); wavy mostly female.
* ``Bangs`` ~ 15 %, ``Big_Lips`` ~ 24 %, both more often female.

``render_face`` draws every nuisance value from ``rng`` *before* looking at the
attributes and always in the same order, so rendering the same seed with one
attribute flipped changes only what that attribute controls. Each image of
``write_faces`` gets its own generator ``default_rng([seed, split_id, index])``,
which makes the output identical for any number of worker processes and keeps
train and test apart.
"""
from __future__ import annotations

import csv
import math
import multiprocessing
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from hw3lib.data.layout import FACE_ATTRIBUTES, FACE_SIZE

__all__ = ["sample_attributes", "render_face", "write_faces"]

_K = 4                      # supersampling factor: shapes are drawn at 256 px
_S = FACE_SIZE * _K
_SPLIT_IDS = {"train": 0, "test": 1}
_GX, _GY = np.meshgrid(*(2 * [np.linspace(-1, 1, FACE_SIZE, dtype=np.float32)]))   # image coords in [-1, 1]


# --------------------------------------------------------------------------- attributes

def sample_attributes(rng: np.random.Generator) -> dict[str, int]:
    """Draw one CelebA-like attribute vector (keys in ``FACE_ATTRIBUTES`` order, values 0/1)."""
    # A fixed number of draws whatever the outcome keeps later draws from the
    # same generator (the rendering nuisances) aligned across attribute values.
    u = rng.random(16)
    male = u[0] < 0.42

    hc = u[1]
    if male:
        black, blond, brown = hc < 0.27, 0.27 <= hc < 0.30, 0.30 <= hc < 0.46
    else:
        black, blond, brown = hc < 0.22, 0.22 <= hc < 0.46, 0.46 <= hc < 0.70

    if male:
        makeup, lipstick = u[2] < 0.005, u[3] < 0.01
    else:
        makeup = u[2] < 0.62
        lipstick = u[3] < (0.95 if makeup else 0.42)

    smiling = u[4] < (0.43 if male else 0.52)
    cheekbones = u[5] < (0.80 if smiling else 0.12)
    mouth_open = u[6] < (0.70 if smiling else 0.28)

    tex = u[7]
    if male:
        wavy, straight = tex < 0.13, 0.13 <= tex < 0.35
    else:
        wavy, straight = tex < 0.45, 0.45 <= tex < 0.65

    bangs = u[8] < (0.09 if male else 0.20)
    big_lips = u[9] < (0.16 if male else 0.30)

    values = {
        "Bangs": bangs, "Big_Lips": big_lips, "Black_Hair": black, "Blond_Hair": blond,
        "Brown_Hair": brown, "Heavy_Makeup": makeup, "High_Cheekbones": cheekbones,
        "Male": male, "Mouth_Slightly_Open": mouth_open, "Smiling": smiling,
        "Straight_Hair": straight, "Wavy_Hair": wavy, "Wearing_Lipstick": lipstick,
    }
    return {name: int(values[name]) for name in FACE_ATTRIBUTES}


# --------------------------------------------------------------------------- geometry

class _Frame:
    """Similarity transform from face units to canvas pixels (at 4x)."""

    def __init__(self, cx: float, cy: float, scale: float, theta: float):
        c, s = math.cos(theta), math.sin(theta)
        self.scale = scale
        self.m = _K * scale * np.array([[c, -s], [s, c]])
        self.t = _K * np.array([cx, cy])

    def __call__(self, pts: np.ndarray) -> list[float]:
        return (np.asarray(pts, dtype=float) @ self.m.T + self.t).ravel().tolist()

    def width(self, w: float) -> int:
        return max(1, round(w * self.scale * _K))

    def grid(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Face coordinates of the centres of an n x n pixel grid covering the image."""
        px = (np.arange(n, dtype=np.float32) + 0.5) * (_S / n)
        x, y = np.meshgrid(px, px)
        minv = np.linalg.inv(self.m).astype(np.float32)
        dx, dy = x - self.t[0], y - self.t[1]
        return minv[0, 0] * dx + minv[0, 1] * dy, minv[1, 0] * dx + minv[1, 1] * dy


def _pts(u, v) -> np.ndarray:
    """(n, 2) points from coordinate arrays (or scalars); a cheaper np.stack for tiny arrays."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    out = np.empty((max(u.size, v.size), 2))
    out[:, 0], out[:, 1] = u, v
    return out


_TRIG: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _ellipse(u0, v0, ru, rv, n=28, rot=0.0, a0=0.0, a1=2 * math.pi) -> np.ndarray:
    key = (n, a0, a1)
    if key not in _TRIG:                         # a few hundred shapes per face: cache the trig
        t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * math.pi - 1e-9)
        _TRIG[key] = (np.cos(t), np.sin(t))
    ct, st = _TRIG[key]
    x, y = ru * ct, rv * st
    c, s = math.cos(rot), math.sin(rot)
    return _pts(u0 + c * x - s * y, v0 + s * x + c * y)


class _Head:
    """Head outline: elliptic cranium over a superelliptic jaw."""

    def __init__(self, a, top, vh, chin, p, taper):
        self.a, self.top, self.vh, self.chin, self.p, self.taper = a, top, vh, chin, p, taper
        self._cache: dict[float, np.ndarray] = {}

    def half_width(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float)
        up = np.clip((self.vh - v) / (self.vh - self.top), 0, 1)
        w = np.clip((v - self.vh) / (self.chin - self.vh), 0, 1)
        upper = self.a * np.sqrt(1 - up ** 2)
        lower = self.a * (1 - w ** self.p) ** (1 / self.p) * (1 - self.taper * w)
        return np.where(v <= self.vh, upper, lower)

    @property
    def neck_hw(self) -> float:
        """Half width of the neck."""
        return 0.42 * self.a

    def outline(self, grow=0.0, n=36) -> np.ndarray:
        if grow in self._cache:
            return self._cache[grow].copy()
        a, bt, bb = self.a + grow, self.vh - self.top + grow, self.chin - self.vh + grow
        t = np.linspace(0, math.pi, n)
        upper = _pts(a * np.cos(t), self.vh - bt * np.sin(t))   # right -> top -> left
        t = np.linspace(math.pi, 2 * math.pi, n)[1:-1]
        c, s = np.cos(t), -np.sin(t)                                     # left -> chin -> right
        e = 2 / self.p
        w = np.abs(s) ** e
        lower = _pts(np.sign(c) * a * np.abs(c) ** e * (1 - self.taper * w), self.vh + bb * w)
        self._cache[grow] = np.concatenate([upper, lower])
        return self._cache[grow].copy()


# --------------------------------------------------------------------------- palettes

_SKIN = np.array([(255, 226, 200), (243, 198, 165), (226, 176, 134), (200, 140, 100),
                  (160, 104, 72), (112, 72, 52)], dtype=float)
_EYES = np.array([(84, 52, 30), (48, 32, 22), (72, 112, 160), (86, 116, 74),
                  (120, 96, 56), (110, 120, 130)], dtype=float)
_LIPSTICK = np.array([(205, 16, 40), (186, 18, 70), (222, 50, 90), (150, 10, 36)], dtype=float)
_SHADOW = np.array([(120, 64, 120), (112, 74, 60), (70, 58, 76), (80, 96, 140)], dtype=float)
_HAIR = {"black": (24, 20, 22), "blond": (222, 190, 118), "brown": (112, 70, 40),
         "gray": (168, 164, 160), "auburn": (150, 62, 30)}


def _mix(a, b, t):
    return tuple(int(round(x)) for x in np.clip(np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t, 0, 255))


def _rgba(c, alpha):
    r, g, b = (min(255, max(0, int(x + 0.5))) for x in c)
    return (r, g, b, int(alpha))


def _soft(draw, fr, u0, v0, ru, rv, color, alpha, steps=3, rot=0.0):
    """A blob that fades towards its edge, from stacked translucent ellipses."""
    unit = _ellipse(0.0, 0.0, ru, rv, 24, rot)
    ink = _rgba(color, alpha / steps)
    for i in range(steps):
        draw.polygon(fr(unit * (1 - 0.6 * i / steps) + (u0, v0)), fill=ink)


def _hsv(h, s, v):
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]) * 255


# --------------------------------------------------------------------------- rendering

def render_face(attrs: Mapping[str, int], rng: np.random.Generator) -> np.ndarray:
    """Render one 64x64 RGB face (uint8 array [64, 64, 3]) showing ``attrs``.

    Missing attributes count as 0. Inconsistent combinations are resolved by
    precedence (Black > Blond > Brown hair, Wavy > Straight). The stages below
    paint back to front at 256 px; each reads its nuisances from ``u``/``z``
    by fixed index, so no stage changes what another draws.
    """
    A = {k: bool(attrs.get(k, 0)) for k in FACE_ATTRIBUTES}

    # ---- nuisances: all drawn up front, in a fixed order (see module docstring)
    u = rng.random(52)
    z = rng.standard_normal(12)
    bg_field = rng.random((5, 5, 3))
    hair_field = rng.random((30, 30))
    noise = rng.standard_normal((FACE_SIZE, FACE_SIZE, 3))

    fr, body = _pose(u, z)
    skin = _skin_tone(u, z)
    head = _head_shape(A, u)
    hair = _hairstyle(A, u, z)
    lay = _feature_layout(A, u, z)

    img = _canvas(u, z, bg_field)
    d = ImageDraw.Draw(img, "RGBA")
    tex = _hair_texture(fr, hair.color, hair.straight, hair.wavy, hair.part_u, head.top - hair.vol, u, hair_field)
    back, front = _hair_masks(fr, head, hair, A, u)
    _paste(img, tex, back)
    _clothes_and_neck(d, fr, body, head, skin, A, u)
    _ears(d, fr, head, skin)
    _face_skin(d, fr, head, skin)
    _cheeks(d, fr, skin, lay, A)
    _beard(d, fr, head, skin, hair, lay, A, u)
    _eyes(d, fr, skin, hair, lay, A, u, z)
    nose = _nose(d, fr, skin, lay, A, u, z)
    if A["Smiling"]:
        _smile_lines(d, fr, skin, lay, nose)
    _mouth(d, fr, skin, lay, A, u)
    _paste(img, tex, front)                     # hair in front of the face

    # ---- to 64 px, then photographic nuisances
    out = np.asarray(img.reduce(_K), dtype=np.float32)      # 4x4 area average = antialiasing
    return _photo(out, u, z, noise)


# --------------------------------------------------------------------------- stages: what the face is

class _Hair(NamedTuple):
    """One hairstyle, in face units."""
    name: str                   # "black" | "blond" | "brown" | "gray" | "auburn"
    color: np.ndarray           # RGB [3], float
    wavy: bool
    straight: bool
    long: bool
    bald: bool
    vol: float                  # how far the hair stands off the head
    length: float               # v where long hair ends
    part_u: float               # u of the parting


class _Layout(NamedTuple):
    """Where the features sit, in face units."""
    ex: float                   # eye centre's distance from the midline
    fu: float                   # horizontal offset of every feature (yaw: a hint of a turned head)
    mv: float                   # mouth height
    mw: float                   # mouth half width


def _pose(u, z) -> tuple[_Frame, _Frame]:
    """Head position, scale and tilt: the face's frame and the torso's, which follows the tilt only a little."""
    cx = 32 + np.clip(z[0], -2.5, 2.5) * 1.2
    cy = 29 + np.clip(z[1], -2.5, 2.5) * 1.0
    scale = 0.92 + 0.14 * u[0]
    theta = math.radians(np.clip(z[2], -2.5, 2.5) * 4.5)
    return _Frame(cx, cy, scale, theta), _Frame(cx, cy, scale, theta * 0.3)


def _skin_tone(u, z) -> np.ndarray:
    """Skin RGB [3] (float), interpolated along the ``_SKIN`` ramp, skewed light as CelebA is."""
    t_skin = 0.999 * u[1] ** 1.7 * (len(_SKIN) - 1)
    i0 = int(t_skin)
    skin = _SKIN[i0] * (1 - (t_skin - i0)) + _SKIN[i0 + 1] * (t_skin - i0)
    return np.clip(skin + z[4] * np.array([4, 3, 2]), 0, 255)


def _head_shape(A, u) -> _Head:
    """Head outline; men's is wider, squarer, with a longer jaw; high cheekbones hollow the cheeks."""
    male = A["Male"]
    a = 13.6 + 1.1 * u[3] + (0.9 if male else 0.0)
    top = -19.5 - 1.0 * u[4]
    chin = 23.0 + 1.6 * u[5] + (0.8 if male else 0.0)
    taper = (0.06 if male else 0.16) + (0.06 if A["High_Cheekbones"] else 0.0)
    return _Head(a, top, 2.0, chin, p=2.9 if male else 2.0, taper=taper)


def _hairstyle(A, u, z) -> _Hair:
    """Hair colour (attribute, else gray/auburn), texture, length, volume and baldness."""
    male = A["Male"]
    if A["Black_Hair"]:
        name = "black"
    elif A["Blond_Hair"]:
        name = "blond"
    elif A["Brown_Hair"]:
        name = "brown"
    else:
        name = "gray" if (u[6] < 0.6 if male else u[6] < 0.3) else "auburn"
    color = np.clip(np.array(_HAIR[name], float) * (0.85 + 0.3 * u[7]) + z[5] * 6, 0, 255)
    wavy = A["Wavy_Hair"]
    straight = A["Straight_Hair"] and not wavy
    long_hair = u[8] < (0.06 if male else 0.90)
    # Baldness only where no label needs hair to show (bangs, texture).
    bald = male and name == "gray" and u[9] < 0.45 and not (A["Bangs"] or wavy or straight)
    vol = (1.2 + 1.4 * u[10]) if (male and not long_hair) else (2.2 + 2.0 * u[10])
    if wavy:
        vol += 1.2                              # waves add body to the silhouette
    elif straight:
        vol *= 0.7                              # sleek hair hugs the head
    length = 30 + 14 * u[11] if not male else 24 + 6 * u[11]
    return _Hair(name, color, wavy, straight, long_hair, bald, vol, length, (u[12] - 0.5) * 8)


def _feature_layout(A, u, z) -> _Layout:
    """Eye spacing, sideways offset, mouth height and width (wider for men and for a smile)."""
    male = A["Male"]
    return _Layout(ex=6.4 + 0.6 * u[23],
                   fu=np.clip(z[3], -2, 2) * 0.7,
                   mv=14.2 + 1.2 * u[24] + (0.4 if male else 0.0),
                   mw=(5.1 + 0.8 * u[25]) * (1.08 if male else 1.0) * (1.2 if A["Smiling"] else 1.0))


# --------------------------------------------------------------------------- stages: painting, back to front

def _canvas(u, z, bg_field) -> Image.Image:
    """The 256-px canvas holding the background, made at 64 px and block-upsampled so the final reduce
    returns it unchanged."""
    return Image.fromarray(_background(u, z, bg_field)).resize((_S, _S), Image.NEAREST)


def _hair_masks(fr: _Frame, head: _Head, hair: _Hair, A, u) -> tuple[Image.Image, Image.Image]:
    """Where the hair texture shows (256-px "L" masks): behind the head, and in front of it."""
    waves = (lambda v: 1.3 * np.sin(0.55 * v + 6.28 * u[13])) if hair.wavy else (lambda v: 0 * v)
    cap = head.outline(grow=hair.vol)[:36]      # right -> top -> left, around the cranium
    if hair.wavy:
        ang = np.linspace(0, math.pi, len(cap))
        cap = cap + _pts(np.cos(ang), -np.sin(ang)) * (0.7 * np.sin(ang * 9 + 6.28 * u[13]))[:, None]
    return _hair_behind(fr, head, hair, cap, waves, u), _hair_in_front(fr, head, hair, cap, waves, A, u)


def _hair_behind(fr: _Frame, head: _Head, hair: _Hair, cap, waves, u) -> Image.Image:
    """Mask of the hair behind the head: the cap and, for long hair, its fall to the shoulders."""
    back = Image.new("L", (_S, _S), 0)
    db = ImageDraw.Draw(back)
    a, vol, hair_len = head.a, hair.vol, hair.length
    if not hair.bald:
        if hair.long:
            vs = np.linspace(head.vh, hair_len, 14)
            flare = (vs - head.vh) / (hair_len - head.vh) * (2.0 + 3.0 * u[14]) + (2.0 if hair.wavy else 0.0)
            right = _pts(a + vol + flare + waves(vs), vs)
            left = _pts(-(a + vol + flare + waves(vs + 2.1)), vs)
            bottom = _pts(np.linspace(-(a + vol), a + vol, 9), hair_len + 1.5 * np.sin(np.linspace(0, 9, 9)))
            db.polygon(fr(np.concatenate([cap, left, bottom, right[::-1]])), fill=255)
        else:
            db.polygon(fr(np.concatenate([cap, [[-(a + 0.5), 4.0], [a + 0.5, 4.0]]])), fill=255)
    else:
        for sgn in (-1, 1):                     # horseshoe fringe of a balding head
            db.polygon(fr(_ellipse(sgn * (a - 0.5), -1.5, 2.8, 6.5, 20)), fill=255)
    return back


def _hair_in_front(fr: _Frame, head: _Head, hair: _Hair, cap, waves, A, u) -> Image.Image:
    """Mask of the hair over the face: the cap down to the hairline (or bangs), then side locks for long
    hair, a framing cut for short female hair, sideburns for men."""
    front = Image.new("L", (_S, _S), 0)
    dfm = ImageDraw.Draw(front)
    male, a, vol, hair_len, part_u = A["Male"], head.a, hair.vol, hair.length, hair.part_u
    if hair.bald:
        for sgn in (-1, 1):
            dfm.polygon(fr(_ellipse(sgn * (a + 0.2), -1.5, 1.4, 5.0, 20)), fill=255)
        return front
    us = np.linspace(a + 0.6, -(a + 0.6), 25)
    edge = np.abs(us / a) ** 2.6
    if A["Bangs"]:
        hl = -6.2 + (-3.0 - -6.2) * edge + 0.5 * part_u / 4 * (us / a)
        hl = hl + 0.9 * np.abs(np.sin(us * 1.7 + 6.28 * u[15]))     # uneven fringe tips
        if hair.wavy:
            hl = hl + 0.8 * np.sin(us * 0.9)
    else:
        hl_c = -11.5 - (1.2 if male else 0.0) - 1.5 * u[16]
        hl = hl_c + (-3.2 - hl_c) * edge
        hl = hl - 1.6 * np.exp(-((us - part_u) / 1.2) ** 2) * (not male)   # parting notch
    temple = _pts(us, hl)
    dfm.polygon(fr(np.concatenate([cap, temple[::-1]])), fill=255)
    if hair.long:
        cover = 1.2 + 2.0 * u[17]
        for sgn in (-1, 1):
            vs = np.linspace(-4.0, hair_len, 16)
            inner = np.maximum(head.half_width(vs) - cover, head.neck_hw + 1.0) + waves(vs + sgn)
            flare = (np.clip((vs - head.vh) / (hair_len - head.vh), 0, 1) * (2.0 + 3.0 * u[14])
                     + (2.0 if hair.wavy else 0.0) * (vs > head.vh))
            outer = a + vol + flare + waves(vs + 2.1 * (sgn < 0))
            pts = np.concatenate([_pts(inner, vs), _pts(outer, vs)[::-1]])
            pts[:, 0] *= sgn
            dfm.polygon(fr(pts), fill=255)
    elif not male:
        for sgn in (-1, 1):                     # short female cut still frames the face
            dfm.polygon(fr(np.array([[sgn * (a - 0.8), -4], [sgn * (a + vol), -4], [sgn * (a + vol * 0.6), 7],
                                     [sgn * (a - 0.2), 6]])), fill=255)
    else:
        for sgn in (-1, 1):                     # sideburns
            dfm.polygon(fr(np.array([[sgn * (a - 0.3), -5], [sgn * (a + 0.6), -5], [sgn * (a + 0.3), 3.0],
                                     [sgn * (a - 1.1), 3.0]])), fill=255)
    return front


def _clothes_and_neck(d: ImageDraw.ImageDraw, fr: _Frame, body: _Frame, head: _Head, skin, A, u) -> None:
    """Shoulders in a plain top (men: sometimes shirt, jacket and tie), then the neck over them, so no cloth
    strip crosses the neck."""
    neck_hw, chin = head.neck_hw, head.chin
    neck_col = tuple(int(x) for x in skin * 0.84)
    cloth = _hsv(u[18], 0.15 + 0.6 * u[19], 0.2 + 0.75 * u[20])
    sv = chin + 4.5 + 2 * u[21]                 # where the shoulders meet the neck
    d.polygon(body(_ellipse(0, sv + 13, 36, 14.5, 40)), fill=_rgba(cloth, 255))
    d.polygon(body(_ellipse(0, sv + 15, 30, 10, 30)), fill=_rgba(cloth * 0.88, 255))
    neckline = u[22]
    if A["Male"] and neckline < 0.35:           # shirt and jacket
        d.polygon(body(np.array([[-neck_hw - 1.5, sv - 1], [neck_hw + 1.5, sv - 1], [neck_hw * 0.5, sv + 14],
                                 [-neck_hw * 0.5, sv + 14]])), fill=(232, 232, 228))
        if u[51] < 0.6:
            tie = _hsv(u[50], 0.6, 0.5)
            d.polygon(body(np.array([[-0.9, sv + 2], [0.9, sv + 2], [1.4, sv + 14], [-1.4, sv + 14]])),
                      fill=_rgba(tie, 255))
        bottom = sv + 1.5
    elif neckline < 0.65:
        bottom = sv + 3.5
    else:
        bottom = sv + 6.5
    # The neck hangs from the (tilted) head and ends in the (less tilted) neckline.
    neck = (fr(np.array([[-neck_hw, 10], [neck_hw, 10], [neck_hw * 1.05, sv - 1]]))
            + body(np.array([[neck_hw * 1.3, sv - 1], [0, bottom], [-neck_hw * 1.3, sv - 1]]))
            + fr(np.array([[-neck_hw * 1.05, sv - 1]])))
    d.polygon(neck, fill=neck_col)
    d.polygon(fr(np.array([[-neck_hw, chin - 2], [neck_hw, chin - 2], [neck_hw, chin + 3], [-neck_hw, chin + 3]])),
              fill=_rgba(skin * 0.6, 60))


def _ears(d: ImageDraw.ImageDraw, fr: _Frame, head: _Head, skin) -> None:
    """Ears with a shaded bowl (long hair pasted later hides them)."""
    a = head.a
    ear_col = tuple(int(x) for x in skin * 0.9)
    for sgn in (-1, 1):
        d.polygon(fr(_ellipse(sgn * (a - 0.4), 2.5, 2.3, 4.4, 20)), fill=ear_col)
        d.polygon(fr(_ellipse(sgn * (a + 0.2), 2.5, 1.0, 2.6, 14)), fill=_rgba(skin * 0.6, 90))


def _face_skin(d: ImageDraw.ImageDraw, fr: _Frame, head: _Head, skin) -> None:
    """The head, shaded towards its rim so it reads as a rounded volume."""
    d.polygon(fr(head.outline()), fill=tuple(int(x) for x in skin * 0.86))
    d.polygon(fr(head.outline(grow=-0.8)), fill=tuple(int(x) for x in skin * 0.94))
    inner = head.outline(grow=-2.2)
    inner[:, 1] -= 0.4
    d.polygon(fr(inner), fill=tuple(int(x) for x in skin))


def _cheeks(d: ImageDraw.ImageDraw, fr: _Frame, skin, lay: _Layout, A) -> None:
    """Cheek modelling: lit cheekbones over a hollow (High_Cheekbones), raised cheeks (Smiling), blush
    (Heavy_Makeup)."""
    fu = lay.fu
    if A["High_Cheekbones"]:
        for sgn in (-1, 1):
            rot = -sgn * 0.45
            _soft(d, fr, sgn * 8.4 + fu, 4.3, 4.6, 2.0, np.minimum(skin * 1.2 + 30, 255), 170, 4, rot)
            _soft(d, fr, sgn * 9.8 + fu, 9.6, 4.4, 2.0, skin * 0.6, 150, 4, rot)
    if A["Smiling"]:
        for sgn in (-1, 1):                     # raised cheeks ("apples")
            _soft(d, fr, sgn * 6.6 + fu, 7.8, 2.8, 2.2, np.minimum(skin * 1.1 + 10, 255), 90, 3)
    if A["Heavy_Makeup"]:
        blush = _mix(skin, (236, 96, 120), 0.75)
        for sgn in (-1, 1):
            _soft(d, fr, sgn * 8.0 + fu, 7.2, 3.8, 2.7, blush, 150, 4)


def _beard(d: ImageDraw.ImageDraw, fr: _Frame, head: _Head, skin, hair: _Hair, lay: _Layout, A, u) -> None:
    """Stubble or a beard around the jaw and over the lip: men only, a nuisance within Male."""
    if not (A["Male"] and u[26] < 0.45):
        return
    fu, mv, mw = lay.fu, lay.mv, lay.mw
    beard = u[26] < 0.12
    col = hair.color * 0.7 if beard else skin * 0.45 + np.array([10, 14, 22])
    alpha = 230 if beard else 70 + 50 * u[27]
    # Two nested layers, the inner one lower and narrower, fade the edge.
    for grow, top, k in ((-0.5, 6.0, 0.5), (-1.6, 7.5, 0.5)):
        jaw = head.outline(grow=grow)
        jaw = jaw[jaw[:, 1] > top]
        jaw = jaw[np.argsort(np.arctan2(jaw[:, 1] - top, jaw[:, 0]))]
        moust = np.array([[-mw - 1.0 + fu, mv - 1.2], [-2.3 + fu, mv - 3.9 + (top - 6) * 0.3],
                          [2.3 + fu, mv - 3.9 + (top - 6) * 0.3], [mw + 1.0 + fu, mv - 1.2]])
        d.polygon(fr(np.concatenate([jaw[::-1], moust[::-1]])), fill=_rgba(col, alpha * k))


def _eyes(d: ImageDraw.ImageDraw, fr: _Frame, skin, hair: _Hair, lay: _Layout, A, u, z) -> None:
    """Both eyes (narrowed by a smile, made up with Heavy_Makeup), each with its brow."""
    squint = 0.72 if A["Smiling"] else 1.0
    eye_col = _EYES[int(u[28] * len(_EYES))] * (0.9 + 0.2 * u[29])
    ew, eh = 3.0 + 0.3 * u[30], (1.45 + 0.25 * u[31]) * squint
    gaze = (np.clip(z[6], -2, 2) * 0.35, 0.0)
    brow_col = np.clip(hair.color * (0.55 if hair.name != "blond" else 0.5) + (40 if hair.name == "black" else 0),
                       0, 255)
    if hair.name == "gray":
        brow_col = hair.color * 0.6
    for sgn in (-1, 1):
        ec = sgn * lay.ex + lay.fu
        _eye(d, fr, ec, sgn, ew, eh, gaze, eye_col, skin, A["Heavy_Makeup"], u)
        _brow(d, fr, ec, sgn, brow_col, A["Male"], u)


def _eye(d: ImageDraw.ImageDraw, fr: _Frame, ec, sgn, ew, eh, gaze, eye_col, skin, makeup, u) -> None:
    """One eye centred at u = ``ec`` (``sgn``: -1 left, +1 right): socket shadow, eye shadow (makeup), the
    white between the lids, iris, pupil and catch light clipped to the lids, lash line (winged with makeup)."""
    _soft(d, fr, ec, -0.6, 4.3, 2.6, skin * 0.7, 70, 3)                      # socket
    if makeup:
        sh = _SHADOW[int(u[32] * len(_SHADOW))]
        _soft(d, fr, ec + sgn * 0.4, -1.6, 4.0, 2.3, sh, 300, 3)
    xs = np.linspace(-ew, ew, 15)
    up = -eh * (1 - (xs / ew) ** 2) ** 0.8 - 0.25 * sgn * xs / ew
    lo = eh * 0.75 * (1 - (xs / ew) ** 2)
    upper = _pts(ec + xs, up)
    lower = _pts(ec + xs, lo)
    d.polygon(fr(np.concatenate([upper, lower[::-1]])), fill=(236, 232, 228))

    def clip_to_eye(c):                         # keep iris/pupil inside the lids
        xx = np.clip(c[:, 0] - ec, -ew, ew)
        t = (1 - (xx / ew) ** 2)
        lo_ = -eh * np.maximum(t, 0) ** 0.8 - 0.25 * sgn * xx / ew
        hi_ = eh * 0.75 * t
        return _pts(xx + ec, np.clip(c[:, 1], lo_, hi_))
    ic = (ec + gaze[0], gaze[1])
    d.polygon(fr(clip_to_eye(_ellipse(ic[0], ic[1], 1.35, 1.35, 24))), fill=tuple(int(x) for x in eye_col))
    d.polygon(fr(clip_to_eye(_ellipse(ic[0], ic[1], 0.6, 0.6, 16))), fill=(12, 10, 10))
    d.polygon(fr(_ellipse(ic[0] + 0.4, ic[1] - 0.4, 0.28, 0.28, 8)), fill=(250, 250, 250))
    lid = (1.0 if makeup else 0.55)
    d.line(fr(upper), fill=_rgba((30, 20, 20), 255), width=fr.width(lid), joint="curve")
    if makeup:                                  # winged liner
        d.line(fr(np.array([[ec + sgn * ew, up[0 if sgn < 0 else -1]], [ec + sgn * (ew + 1.0), -eh - 0.4]])),
               fill=(30, 20, 20), width=fr.width(0.7))
    d.line(fr(lower[2:-2]), fill=_rgba(skin * 0.55, 110), width=fr.width(0.35))


def _brow(d: ImageDraw.ImageDraw, fr: _Frame, ec, sgn, brow_col, male, u) -> None:
    """The brow over the eye at u = ``ec``: thicker and flatter for men, thinner and arched for women."""
    bw = (1.55 + 0.3 * u[33]) if male else (0.85 + 0.25 * u[33])
    arch = 0.6 if male else 1.3
    t = np.linspace(0, 1, 10)
    bx = ec + sgn * (-3.2 + 7.0 * t)
    by = -4.2 - 0.3 * u[34] - arch * np.sin(t * math.pi * 0.9) + 0.4 * t - (0.3 if male else 0.0)
    th = bw * (1.15 - 0.6 * t)
    pts = np.concatenate([_pts(bx, by - th / 2), _pts(bx, by + th / 2)[::-1]])
    d.polygon(fr(pts), fill=_rgba(brow_col, 235))


class _Nose(NamedTuple):
    u: float                    # horizontal position (features slide with yaw, the nose most)
    tip: float                  # v of the tip
    wing: float                 # half width of the nostril wings


def _nose(d: ImageDraw.ImageDraw, fr: _Frame, skin, lay: _Layout, A, u, z) -> _Nose:
    """Nose: a shadowed bridge on the side the light does not reach, a lit tip, nostrils and wings."""
    nu = lay.fu * 1.4
    nt = 8.4 + 0.6 * u[35]
    nw = (1.7 + 0.3 * u[36]) * (1.12 if A["Male"] else 1.0)
    side = 1 if z[7] > 0 else -1                # the side the light does not reach
    d.line(fr(np.array([[side * 1.3 + nu * 0.5, 0.5], [side * 1.6 + nu * 0.8, 4.5], [side * 2.0 + nu, nt - 0.8]])),
           fill=_rgba(skin * 0.6, 70), width=fr.width(1.0), joint="curve")
    _soft(d, fr, nu, nt - 1.0, 1.2, 1.8, np.minimum(skin * 1.15 + 15, 255), 80, 2)
    _soft(d, fr, nu, nt + 1.3, 2.6, 0.8, skin * 0.55, 110, 3)
    for sgn in (-1, 1):
        d.polygon(fr(_ellipse(sgn * nw * 0.75 + nu, nt + 0.45, 0.75, 0.4, 12, rot=sgn * 0.3)),
                  fill=_rgba(skin * 0.35, 200))
        d.line(fr(_ellipse(sgn * nw + nu, nt - 0.1, 0.8, 1.1, 10, a0=-1.3 if sgn > 0 else math.pi - 0.4,
                           a1=0.4 if sgn > 0 else math.pi + 1.3)), fill=_rgba(skin * 0.55, 140), width=fr.width(0.4))
    return _Nose(nu, nt, nw)


def _smile_lines(d: ImageDraw.ImageDraw, fr: _Frame, skin, lay: _Layout, nose: _Nose) -> None:
    """Smile lines from the nose wings to the mouth corners."""
    mu, mv, mw = lay.fu * 1.1, lay.mv, lay.mw
    for sgn in (-1, 1):
        d.line(fr(np.array([[sgn * (nose.wing + 1.0) + nose.u, nose.tip + 0.3], [sgn * (mw * 0.95) + mu + sgn * 0.8, mv - 1.0],
                            [sgn * (mw + 0.9) + mu, mv + 1.2]])),
               fill=_rgba(skin * 0.55, 110), width=fr.width(0.5), joint="curve")


def _mouth(d: ImageDraw.ImageDraw, fr: _Frame, skin, lay: _Layout, A, u) -> None:
    """Lips (curved up by a smile, full with Big_Lips, red with lipstick), gloss, and either the closed
    line or the open gap (teeth when smiling)."""
    male, mu, mv, mw = A["Male"], lay.fu * 1.1, lay.mv, lay.mw
    smile = (2.5 + 0.8 * u[37]) if A["Smiling"] else (0.35 * (u[37] - 0.3))
    gap = (1.5 + 0.6 * u[38]) if A["Mouth_Slightly_Open"] else 0.0
    lip_k = 2.0 if A["Big_Lips"] else 1.0
    tu = (0.85 + 0.2 * u[39]) * lip_k * (0.8 if male else 1.0)
    tl = (1.15 + 0.25 * u[40]) * lip_k * (0.8 if male else 1.0)
    if A["Wearing_Lipstick"]:
        lip = _LIPSTICK[int(u[41] * len(_LIPSTICK))]
    else:
        # darker and redder than the skin, so the mouth reads on every skin tone
        lip = np.array(_mix(skin * 0.78, (180, 96, 96), 0.35), float)
    xs = np.linspace(-mw, mw, 23)
    q = xs / mw
    yc = mv + smile * (0.35 - q ** 2)
    prof = np.maximum(1 - q ** 2, 0) ** 0.6
    gprof = np.maximum(1 - (xs / (mw * 0.9)) ** 2, 0) ** 0.7
    bow = 1 - 0.35 * np.exp(-(xs / 0.7) ** 2)
    top_edge = yc - gap / 2 * gprof - tu * prof * bow
    bot_edge = yc + gap / 2 * gprof + tl * prof
    d.polygon(fr(np.concatenate([_pts(xs + mu, top_edge), _pts(xs + mu, bot_edge)[::-1]])), fill=_rgba(lip, 255))
    d.line(fr(_pts(xs[3:-3] + mu, bot_edge[3:-3] + 0.35)), fill=_rgba(skin * 0.6, 60), width=fr.width(0.5))
    _soft(d, fr, mu, yc[11] + gap / 2 + tl * 0.45, mw * 0.45, tl * 0.3, np.minimum(lip * 1.3 + 30, 255), 90, 2)   # lip gloss
    if gap > 0:
        g_top = yc - gap / 2 * gprof
        g_bot = yc + gap / 2 * gprof
        d.polygon(fr(np.concatenate([_pts(xs + mu, g_top), _pts(xs + mu, g_bot)[::-1]])), fill=(56, 18, 22))
        if A["Smiling"]:
            teeth_bot = g_top + (g_bot - g_top) * 0.62
            d.polygon(fr(np.concatenate([_pts(xs[2:-2] + mu, g_top[2:-2]), _pts(xs[2:-2] + mu, teeth_bot[2:-2])[::-1]])),
                      fill=(236, 232, 220))
    else:
        d.line(fr(_pts(xs + mu, yc)), fill=_rgba(lip * 0.35, 240), width=fr.width(0.6), joint="curve")


def _paste(img: Image.Image, tex: Image.Image, mask: Image.Image) -> None:
    box = mask.getbbox()                        # pasting only where the mask is set halves the cost
    if box:
        img.paste(tex.crop(box), box, mask.crop(box))


def _background(u, z, field) -> np.ndarray:
    c1 = _hsv(u[42], 0.05 + 0.5 * u[43] ** 2, 0.25 + 0.7 * u[44])
    c2 = np.clip(c1 * (0.6 + 0.8 * u[45]) + z[8] * 25, 0, 255)
    ang = u[46] * 2 * math.pi
    t = np.clip((_GX * math.cos(ang) + _GY * math.sin(ang)) * 0.5 + 0.5, 0, 1)[..., None]
    bg = c1.astype(np.float32) * (1 - t) + c2.astype(np.float32) * t
    # Mostly luminance blobs with a little colour: real backdrops are rarely psychedelic.
    field = field * 0.35 + field.mean(axis=2, keepdims=True) * 0.65
    blobs = Image.fromarray((field * 255).astype(np.uint8)).resize((FACE_SIZE, FACE_SIZE), Image.BICUBIC)
    bg = bg + (np.asarray(blobs, np.float32) - 127.5) * (0.1 + 0.6 * u[47])
    return np.clip(bg, 0, 255).astype(np.uint8)


def _hair_texture(fr, hair, straight, wavy, part_u, crown_v, u, field) -> Image.Image:
    """Hair colour field at 256 px: strands from the crown, bent if wavy, sleek with a sheen
    if straight, and blobby (curls/frizz) if neither."""
    n = FACE_SIZE                               # the output resolution: finer strands would only average out
    U, V = fr.grid(n)
    du, dv = U - part_u, V - crown_v
    phi = np.arctan2(du, dv + 4.0)
    r = np.sqrt(du * du + dv * dv)
    rough = np.asarray(Image.fromarray((field * 255).astype(np.uint8)).resize((n, n), Image.BICUBIC), np.float32) / 255 - 0.5
    if wavy:
        w = 0.62 * r + 6.28 * u[13]
        shade = 1 + 0.10 * np.sin(phi * 40 + 2.6 * np.sin(w)) + 0.26 * np.cos(w + 1.5 * phi)
        sheen = 0.0
    elif straight:
        shade = 1 + 0.14 * np.sin(phi * 48 + 2 * rough) + 0.06 * np.sin(phi * 17)
        sheen = np.exp(-((r - 8.0 - 3 * u[10]) / 2.6) ** 2) * (np.abs(phi) < 1.7)
    else:
        shade = 1 + 0.5 * rough + 0.05 * np.sin(phi * 40)   # 2-px grain: curls / frizz
        sheen = 0.0
    shade = shade * np.clip(1.08 - 0.012 * np.maximum(V - 5, 0), 0.7, 1.1)   # lower hair sits in shadow
    rgb = hair[None, None, :] * shade[..., None] + (55 + 0.3 * hair.mean()) * np.asarray(sheen)[..., None]
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((_S, _S), Image.NEAREST)


def _photo(img, u, z, noise) -> np.ndarray:
    """Lighting, colour cast, noise and blur of a casual photograph."""
    side = 1 if z[7] > 0 else -1                # matches the nose shadow side
    grad = 1 + np.float32(0.18 * abs(z[9]) * -side) * _GX + np.float32(0.06 * z[10]) * _GY
    gain = 0.86 + 0.26 * (0.5 + 0.5 * math.tanh(z[11]))
    cast = 1 + np.array([0.05, 0.0, -0.05], np.float32) * np.clip(z[5] * 0.5 + z[4] * 0.5, -2, 2)
    out = img * (grad[..., None] * (gain * cast).astype(np.float32))
    out += noise.astype(np.float32) * np.float32(1.0 + 2.5 * u[49])
    if u[48] > 0.75:                             # a softer lens
        p = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        out = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] + 4 * p[1:-1, 1:-1]) / 8
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- writing

def _make_one(job: tuple[int, int, int, str]) -> list[int]:
    seed, split_id, index, path = job
    rng = np.random.default_rng([seed, split_id, index])
    attrs = sample_attributes(rng)
    Image.fromarray(render_face(attrs, rng)).save(path, compress_level=1)   # speed over a few % of size
    return [attrs[k] for k in FACE_ATTRIBUTES]


def write_faces(root: str | Path, n_train: int, n_test: int, seed: int = 0, *,
                progress: bool = True, workers: int | None = None) -> Path:
    """Write ROOT/face/... ; return ROOT/face. Deterministic for a seed.

    The set is built in a temporary sibling folder and renamed into place only
    when complete, so an interrupted run never leaves a half-written ``face/``;
    an existing ``face/`` is replaced. ``workers`` (default: one per core, at
    most 8; a single process for tiny sets) only changes the speed, never the
    output.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / "face"
    tmp = root / f".face.tmp-{os.getpid()}"
    old = root / f".face.old-{os.getpid()}"
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    if workers is None:
        # Pool start-up costs more than it saves on tiny sets.
        workers = 1 if n_train + n_test < 256 else min(8, os.cpu_count() or 1)
    workers = max(1, workers)
    counts = {"train": n_train, "test": n_test}

    pool = None
    try:
        if workers > 1:
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            pool = ctx.Pool(workers)
        for split, n in counts.items():
            (tmp / split).mkdir(parents=True)
            jobs = [(seed, _SPLIT_IDS[split], i, str(tmp / split / f"{i:05d}.png")) for i in range(n)]
            chunk = max(1, min(32, n // (4 * workers)))
            results = pool.imap(_make_one, jobs, chunksize=chunk) if pool else map(_make_one, jobs)
            with open(tmp / f"{split}.csv", "w", newline="") as fh:
                w = csv.writer(fh, lineterminator="\n")
                w.writerow(["image_name", *FACE_ATTRIBUTES])
                for i, row in enumerate(tqdm(results, total=n, desc=f"face/{split}", disable=not progress)):
                    w.writerow([f"{i:05d}.png", *row])
        if pool:
            pool.close()
            pool.join()
            pool = None
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if pool:
            pool.terminate()
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
