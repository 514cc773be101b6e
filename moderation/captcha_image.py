"""The CAPTCHA image: ``captcha.image.ImageCaptcha`` hardened against trained solvers.

The package's default image (one font, well separated characters, one thin curve,
a few dots, a smooth background) is read exactly by a small sliding-window
classifier most of the time (see ``bench/captcha_solver.py``). This subclass
keeps the package's per-character drawing and warping, and changes what makes
segmentation and classification easy:

* several shipped fonts (``moderation/fonts``) and a range of sizes per character,
  plus a random scale, horizontal squeeze/stretch and shear per character in
  every image, so character widths and slants vary;
* characters overlap their neighbours, so no column of background separates them;
* every character, interference stroke and speck is drawn in the *same* dark
  colour range, with strokes about as thick as the glyphs' own, so a threshold
  (or a colour filter) cannot strip the noise without stripping text;
* decoy strokes the size of glyph parts between and across the characters;
* a gentle vertical wave over the whole image, so rows are not straight.

How it stays cheap (about 2 ms per PNG instead of 12 ms; README, "CAPTCHA
strength"): the package's rotate-and-warp of each character is done ahead of
time into a per-process ``GlyphPool`` of small masks that renews itself as it is
used; an image is composed as one greyscale "ink" layer (one byte per pixel: the
paste, the strokes, the wave and the smoothing each touch a third of the bytes an
RGB image has) and coloured at the end by a palette, which also makes the PNG a
one-byte-per-pixel palette image, cheaper to compress. The layout of
every image (which drawing, scale, stretch, shear, overlap, position, strokes,
specks, wave and colours) comes from a generator seeded with 128 bits from
``secrets``, so no two images of the same text share their pixels.
"""

from __future__ import annotations

import io
import math
import random
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from captcha.image import ImageCaptcha
from PIL import Image, ImageDraw, ImageFilter
from PIL.ImageFont import FreeTypeFont, truetype

from .glyph_pool import GlyphPool

FONTS_DIR = Path(__file__).resolve().parent / "fonts"

#: Ink levels (of 255) for glyphs, strokes and specks: all drawn from one range.
INK_MIN, INK_MAX = 185, 255
#: zlib settings for the PNG: level 1 with the run-length strategy encodes a
#: 240x80 palette image in about half the time of the default (level 6) and the
#: file is ~9 KB either way (the old RGB image was ~19 KB).
PNG_COMPRESS_LEVEL = 1
PNG_COMPRESS_TYPE = zlib.Z_RLE
#: Pixel offsets of a 3x3 speck (a 2x2 one keeps those below 2).
_SPECK_DX = np.tile(np.arange(3), 3)
_SPECK_DY = np.repeat(np.arange(3), 3)
#: Per ink level: its fraction of full ink, and how far it is from the background
#: (levels below INK_MIN are glyph edges and smoothing: they blend into it).
_LEVEL_FRACTION = np.arange(256)[:, None] / 255
_LEVEL_ALPHA = np.minimum(1.0, np.arange(256)[:, None] / INK_MIN)


def shipped_fonts() -> list[str]:
    """The TTF files shipped in ``moderation/fonts`` (licences beside them)."""
    return sorted(str(path) for path in FONTS_DIR.glob("*.ttf"))


#: The glyph pools of this process, by (class, fonts, sizes).
_POOLS: dict[tuple, GlyphPool] = {}


class LayoutRandom(random.Random):
    """One image's layout randomness: seeded from ``secrets``, with cheap integer draws.

    ``random.Random.randint`` spends most of its time in Python-level argument
    checks; an image makes a few hundred draws, so they are taken from ``random()``
    (53 bits: the bias over ranges of a few hundred is far below anything visible).
    """

    def __init__(self) -> None:
        super().__init__(secrets.randbits(128))

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def randrange(self, n: int) -> int:  # type: ignore[override]  # only the 1-arg form
        return int(self.random() * n)


@dataclass(frozen=True)
class Difficulty:
    """The knobs an operator can turn (see config.py's CAPTCHA_* settings)."""

    font_size_min: int = 50
    font_size_max: int = 62
    #: Interference strokes crossing the text (0 disables them).
    noise_lines: int = 3
    #: Short glyph-like decoy strokes.
    noise_strokes: int = 5
    #: Specks in the text's colour range.
    noise_dots: int = 50
    #: How much neighbours overlap, as a fraction of a character's width.
    overlap_min: float = 0.08
    overlap_max: float = 0.25


class HardenedImageCaptcha(ImageCaptcha):
    """``ImageCaptcha`` with several fonts, overlap and same-colour interference."""

    character_rotate = (-18, 18)
    character_offset_dx = (0, 2)
    character_offset_dy = (0, 2)
    character_warp_dx = (0.05, 0.2)
    character_warp_dy = (0.05, 0.2)

    def __init__(
        self,
        width: int = 240,
        height: int = 80,
        fonts: list[str] | None = None,
        difficulty: Difficulty | None = None,
        pool: GlyphPool | None = None,
    ) -> None:
        self.difficulty = difficulty or Difficulty()
        d = self.difficulty
        if not 8 <= d.font_size_min <= d.font_size_max:
            raise ValueError("font size range must be 8 <= min <= max")
        sizes = tuple(range(d.font_size_min, d.font_size_max + 1, 2)) or (d.font_size_min,)
        super().__init__(width, height, fonts=fonts or shipped_fonts(), font_sizes=sizes)
        # One pool per process and drawing setting: app instances in one process
        # (tests, the bench) share it instead of each drawing their own.
        key = (type(self), tuple(self._fonts), self._font_sizes)
        self.pool = pool or _POOLS.setdefault(key, GlyphPool(self.draw_glyph))

    def warm(self, chars: str) -> None:
        """Draw the pool's glyphs for ``chars`` now, so first images are not slower."""
        self.pool.fill(chars)

    @property
    def truefonts(self) -> list[FreeTypeFont]:
        if not self._truefonts:
            self._truefonts = [
                truetype(name, size) for name in self._fonts for size in self._font_sizes
            ]
        return self._truefonts

    # -- glyphs --------------------------------------------------------------------

    def draw_glyph(self, char: str) -> Image.Image:
        """The package's drawing of one character (random font, size, rotation, warp),
        as a cropped mask ('L', ink = 255): what the glyph pool stores."""
        scratch = ImageDraw.Draw(Image.new("L", (1, 1)))
        drawn = super()._draw_character(char, scratch, (0, 0, 0, 255))
        mask = drawn.getchannel("A")
        return mask.crop(mask.getbbox() or (0, 0, 1, 1))

    def _shape(self, mask: Image.Image, rng: random.Random) -> Image.Image:
        """This image's version of a pooled drawing: scaled, stretched and sheared."""
        w, h = mask.size
        scale = rng.uniform(0.84, 1.04)
        if h * scale > self._height - 4:
            scale = (self._height - 4) / h
        stretch = rng.uniform(0.72, 1.2)
        shear = rng.uniform(-0.22, 0.22)  # x shift per pixel of height, output pixels
        out_h = max(1, round(h * scale))
        slant = abs(shear) * out_h
        out_w = max(1, round(w * scale * stretch + slant))
        # Output (X, Y) -> source (x, y): y = Y / scale, and X = scale * stretch * x
        # + shear * (out_h - Y) + offset, where offset keeps X >= 0 for a negative shear.
        offset = slant if shear < 0 else 0.0
        sx = scale * stretch
        coefficients = (
            1 / sx,
            shear / sx,
            -(offset + shear * out_h) / sx,
            0.0,
            1 / scale,
            0.0,
        )
        return mask.transform(
            (out_w, out_h), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
        )

    # -- the ink layer -------------------------------------------------------------

    def _ink_text(
        self, chars: str, rng: random.Random
    ) -> tuple[Image.Image, list[tuple[int, int]]]:
        """Overlapping characters on an 'L' ink layer, and each one's (left, right)."""
        d = self.difficulty
        glyphs = [self._shape(self.pool.pick(c, rng), rng) for c in chars]
        advances = [g.width * (1 - rng.uniform(d.overlap_min, d.overlap_max)) for g in glyphs]
        text_width = int(sum(advances[:-1]) + glyphs[-1].width)
        canvas_w = max(self._width, text_width + 8)
        ink = Image.new("L", (canvas_w, self._height), 0)
        x = (canvas_w - text_width) / 2 + rng.uniform(-3, 3)
        spans = []
        for glyph, advance in zip(glyphs, advances, strict=True):
            w, h = glyph.size
            y = int((self._height - h) / 2 + rng.uniform(-5, 5))
            y = max(0, min(self._height - h, y))
            ink.paste(rng.randint(INK_MIN, INK_MAX), (int(x), y, int(x) + w, y + h), glyph)
            spans.append((int(x), int(x) + w))
            x += advance
        if canvas_w > self._width:
            scale = self._width / canvas_w
            ink = ink.resize((self._width, self._height), Image.Resampling.BILINEAR)
            spans = [(int(a * scale), int(b * scale)) for a, b in spans]
        return ink, spans

    def _ink_noise(self, ink: Image.Image, rng: random.Random) -> None:
        """Interference strokes as thick as the glyph strokes, and decoy arcs."""
        w, h = ink.size
        draw = ImageDraw.Draw(ink)
        for _ in range(self.difficulty.noise_lines):
            amplitude = rng.uniform(4, h / 4)
            period = rng.uniform(w / 2, 2 * w)
            phase = rng.uniform(0, 2 * math.pi)
            y0 = rng.uniform(h * 0.3, h * 0.7)
            slope = rng.uniform(-0.15, 0.15)
            x_start, x_end = rng.randint(0, w // 4), rng.randint(3 * w // 4, w)
            points = [
                (
                    x,
                    y0
                    + slope * (x - w / 2)
                    + amplitude * math.sin(2 * math.pi * x / period + phase),
                )
                for x in range(x_start, x_end + 1, 6)
            ]
            draw.line(
                points, fill=rng.randint(INK_MIN, INK_MAX), width=rng.randint(2, 3), joint="curve"
            )
        for _ in range(self.difficulty.noise_strokes):
            cx, cy = rng.randint(0, w), rng.randint(h // 5, 4 * h // 5)
            rx, ry = rng.randint(6, 16), rng.randint(8, 20)
            start = rng.randint(0, 359)
            draw.arc(
                (cx - rx, cy - ry, cx + rx, cy + ry),
                start,
                start + rng.randint(60, 200),
                fill=rng.randint(INK_MIN, INK_MAX),
                width=rng.randint(2, 4),
            )

    def _specks(self, ink: np.ndarray, rng: random.Random) -> None:
        """2x2 and 3x3 specks in the ink range, written into the array in one step.

        The random bytes come from one ``randbytes`` call: drawing 50 rectangles
        one by one (or 200 separate random numbers) costs several times more.
        """
        n = self.difficulty.noise_dots
        if n <= 0:
            return
        h, w = ink.shape
        raw = np.frombuffer(rng.randbytes(4 * n), dtype=np.uint8).reshape(4, n).astype(np.intp)
        xs, ys = (raw[0] * w) >> 8, (raw[1] * h) >> 8
        side = 2 + (raw[2] & 1)
        levels = INK_MIN + ((raw[3] * (INK_MAX - INK_MIN + 1)) >> 8)
        keep = (_SPECK_DX < side[:, None]) & (_SPECK_DY < side[:, None])
        rows = np.minimum(ys[:, None] + _SPECK_DY, h - 1)[keep]
        columns = np.minimum(xs[:, None] + _SPECK_DX, w - 1)[keep]
        ink[rows, columns] = np.broadcast_to(levels[:, None], keep.shape)[keep]

    @staticmethod
    def _wave(ink: np.ndarray, rng: random.Random) -> np.ndarray:
        """Shift columns up and down along a random sine (x positions are kept).

        Whole-pixel shifts (the smoothing afterwards softens the steps), done as one
        numpy gather: PIL's mesh transform needs one call per strip and costs about
        eight times more.
        """
        h, w = ink.shape
        amplitude = rng.uniform(1.5, 4.0)
        period = rng.uniform(w / 3, w)
        phase = rng.uniform(0, 2 * math.pi)
        pad = math.ceil(amplitude) + 1
        padded = np.zeros((h + 2 * pad, w), dtype=np.uint8)
        padded[pad : pad + h] = ink
        dy = np.rint(amplitude * np.sin(2 * np.pi * np.arange(w) / period + phase))
        rows = dy.astype(np.intp) + pad + np.arange(h)[:, None]  # source row per pixel
        return padded.ravel().take(rows * w + np.arange(w))

    # -- colour ----------------------------------------------------------------------

    @staticmethod
    def _palette(rng: random.Random) -> bytes:
        """Ink level -> colour: a light background, then two dark colours of one range.

        Full ink runs from one dark colour to the other (so characters and noise of
        different ink levels differ in hue, all equally dark); lighter ink (edges,
        smoothing) blends towards the background.
        """
        background = np.array([rng.randint(215, 255) for _ in range(3)])

        def dark() -> np.ndarray:
            base = rng.randint(10, 90)
            return np.minimum(255, [base + rng.randint(0, 50) for _ in range(3)])

        first, second = dark(), dark()
        full = first + (second - first) * _LEVEL_FRACTION
        return np.rint(background + (full - background) * _LEVEL_ALPHA).astype(np.uint8).tobytes()

    # -- the image -------------------------------------------------------------------

    def generate_image_with_spans(self, chars: str) -> tuple[Image.Image, list[tuple[int, int]]]:
        """The finished image ('P' mode) and each character's horizontal span."""
        rng = LayoutRandom()
        ink, spans = self._ink_text(chars, rng)
        self._ink_noise(ink, rng)
        pixels = np.array(ink)
        self._specks(pixels, rng)
        image = Image.fromarray(self._wave(pixels, rng)).filter(ImageFilter.SMOOTH)
        image.putpalette(self._palette(rng))  # 'L' -> 'P': the same bytes, now coloured
        return image, spans

    def generate_image(self, chars: str, bg_color=None, fg_color=None) -> Image.Image:
        return self.generate_image_with_spans(chars)[0]

    def generate(self, chars: str, format: str = "png", bg_color=None, fg_color=None):
        """The encoded image (a ``BytesIO``), like the package's ``generate``."""
        image = self.generate_image(chars)
        out = io.BytesIO()
        if format.lower() == "png":
            image.save(
                out,
                format="png",
                compress_level=PNG_COMPRESS_LEVEL,
                compress_type=PNG_COMPRESS_TYPE,
            )
        else:
            image.save(out, format=format)
        out.seek(0)
        return out
