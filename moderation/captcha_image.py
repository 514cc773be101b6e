"""The CAPTCHA image: ``captcha.image.ImageCaptcha`` hardened against trained solvers.

The package's default image (one font, well separated characters, one thin curve,
a few dots, a smooth background) is read exactly by a small sliding-window
classifier most of the time (see ``bench/captcha_solver.py``). This subclass
keeps the package's per-character drawing and warping, and changes what makes
segmentation and classification easy:

* several shipped fonts (``moderation/fonts``) and a range of sizes per character,
  plus a random horizontal squeeze/stretch, so character widths vary;
* characters overlap their neighbours, so no column of background separates them;
* every character, interference stroke and speck is drawn in a colour taken from
  the *same* dark range, with strokes about as thick as the glyphs' own, so a
  threshold (or a colour filter) cannot strip the noise without stripping text;
* decoy strokes the size of glyph parts between and across the characters;
* a gentle vertical wave over the whole image, so rows are not straight.

Rendering stays cheap (a few milliseconds, see the README); every call draws a
new random image for the same text.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from pathlib import Path

from captcha.image import ImageCaptcha
from PIL import Image, ImageDraw, ImageFilter
from PIL.ImageFont import FreeTypeFont, truetype

FONTS_DIR = Path(__file__).resolve().parent / "fonts"


def shipped_fonts() -> list[str]:
    """The TTF files shipped in ``moderation/fonts`` (licences beside them)."""
    return sorted(str(path) for path in FONTS_DIR.glob("*.ttf"))


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * secrets.randbits(32) / 2**32


def _randint(low: int, high: int) -> int:
    return low + secrets.randbelow(high - low + 1)


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
    ) -> None:
        self.difficulty = difficulty or Difficulty()
        d = self.difficulty
        if not 8 <= d.font_size_min <= d.font_size_max:
            raise ValueError("font size range must be 8 <= min <= max")
        sizes = tuple(range(d.font_size_min, d.font_size_max + 1, 2)) or (d.font_size_min,)
        super().__init__(width, height, fonts=fonts or shipped_fonts(), font_sizes=sizes)

    @property
    def truefonts(self) -> list[FreeTypeFont]:
        if not self._truefonts:
            self._truefonts = [
                truetype(name, size) for name in self._fonts for size in self._font_sizes
            ]
        return self._truefonts

    # -- colours -------------------------------------------------------------------

    @staticmethod
    def text_color() -> tuple[int, int, int, int]:
        """A dark, saturated-enough colour; text and noise share this range."""
        base = _randint(10, 90)
        return (
            min(255, base + _randint(0, 50)),
            min(255, base + _randint(0, 50)),
            min(255, base + _randint(0, 50)),
            255,
        )

    @staticmethod
    def background_color() -> tuple[int, int, int]:
        return (_randint(215, 255), _randint(215, 255), _randint(215, 255))

    # -- drawing hooks ---------------------------------------------------------------

    def _draw_character(self, c: str, draw, color) -> Image.Image:
        """The package's rotate-and-warp of one glyph, then a random width change."""
        im = super()._draw_character(c, draw, color)
        w, h = im.size
        stretch = _uniform(0.72, 1.2)
        return im.resize((max(1, int(w * stretch)), h), Image.Resampling.BILINEAR)

    def create_captcha_image(self, chars: str, color, background) -> Image.Image:
        image, _ = self.draw_text(chars, background)
        return image

    def draw_text(self, chars: str, background) -> tuple[Image.Image, list[tuple[int, int]]]:
        """Draw the overlapping characters; return the image and each one's (left, right)."""
        d = self.difficulty
        scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        glyphs = []
        for c in chars:
            glyph = self._draw_character(c, scratch, self.text_color())
            glyph = glyph.crop(glyph.getbbox() or (0, 0, 1, 1))
            glyphs.append(glyph)
        advances = [g.size[0] * (1 - _uniform(d.overlap_min, d.overlap_max)) for g in glyphs]
        text_width = int(sum(advances[:-1]) + glyphs[-1].size[0])
        canvas_w = max(self._width, text_width + 8)
        image = Image.new("RGB", (canvas_w, self._height), background)
        x = (canvas_w - text_width) / 2 + _uniform(-3, 3)
        spans = []
        for glyph, advance in zip(glyphs, advances, strict=True):
            w, h = glyph.size
            if h > self._height - 2:
                glyph = glyph.resize((w, self._height - 2))
                w, h = glyph.size
            y = int((self._height - h) / 2 + _uniform(-5, 5))
            y = max(0, min(self._height - h, y))
            image.paste(glyph, (int(x), y), glyph)
            spans.append((int(x), int(x) + w))
            x += advance
        if canvas_w > self._width:
            scale = self._width / canvas_w
            image = image.resize((self._width, self._height), Image.Resampling.BILINEAR)
            spans = [(int(a * scale), int(b * scale)) for a, b in spans]
        return image, spans

    def create_noise_curve(self, image: Image.Image, color=None) -> Image.Image:
        """Interference strokes across the text, as thick as the glyph strokes."""
        w, h = image.size
        draw = ImageDraw.Draw(image)
        for _ in range(self.difficulty.noise_lines):
            amplitude = _uniform(4, h / 4)
            period = _uniform(w / 2, 2 * w)
            phase = _uniform(0, 2 * math.pi)
            y0 = _uniform(h * 0.3, h * 0.7)
            slope = _uniform(-0.15, 0.15)
            x_start, x_end = _randint(0, w // 4), _randint(3 * w // 4, w)
            points = [
                (
                    x,
                    y0
                    + slope * (x - w / 2)
                    + amplitude * math.sin(2 * math.pi * x / period + phase),
                )
                for x in range(x_start, x_end + 1, 6)
            ]
            draw.line(points, fill=self.text_color(), width=_randint(2, 3), joint="curve")
        for _ in range(self.difficulty.noise_strokes):
            cx, cy = _randint(0, w), _randint(h // 5, 4 * h // 5)
            rx, ry = _randint(6, 16), _randint(8, 20)
            start = _randint(0, 359)
            draw.arc(
                (cx - rx, cy - ry, cx + rx, cy + ry),
                start,
                start + _randint(60, 200),
                fill=self.text_color(),
                width=_randint(2, 4),
            )
        return image

    def create_noise_dots(
        self, image: Image.Image, color=None, width: int = 2, number: int | None = None
    ):
        """Specks in the text's colour range (same darkness as the glyphs)."""
        draw = ImageDraw.Draw(image)
        w, h = image.size
        for _ in range(self.difficulty.noise_dots if number is None else number):
            x, y = secrets.randbelow(w), secrets.randbelow(h)
            size = _randint(1, width)
            draw.rectangle((x, y, x + size, y + size), fill=self.text_color())
        return image

    @staticmethod
    def wave(image: Image.Image) -> Image.Image:
        """Shift columns up and down along a random sine (x positions are kept)."""
        w, h = image.size
        amplitude = _uniform(1.5, 4.0)
        period = _uniform(w / 3, w)
        phase = _uniform(0, 2 * math.pi)
        step = 10
        mesh = []
        for x in range(0, w, step):
            x2 = min(w, x + step)
            dy1 = amplitude * math.sin(2 * math.pi * x / period + phase)
            dy2 = amplitude * math.sin(2 * math.pi * x2 / period + phase)
            # quad corners in the source: upper-left, lower-left, lower-right, upper-right
            mesh.append(((x, 0, x2, h), (x, dy1, x, h + dy1, x2, h + dy2, x2, dy2)))
        return image.transform(
            image.size,
            Image.Transform.MESH,
            mesh,
            Image.Resampling.BILINEAR,
            fillcolor=image.getpixel((0, 0)),
        )

    def generate_image_with_spans(self, chars: str) -> tuple[Image.Image, list[tuple[int, int]]]:
        """The finished image and each character's horizontal span (for benchmarks)."""
        background = self.background_color()
        image, spans = self.draw_text(chars, background)
        self.create_noise_curve(image)
        self.create_noise_dots(image)
        image = self.wave(image)
        return image.filter(ImageFilter.SMOOTH), spans

    def generate_image(self, chars: str, bg_color=None, fg_color=None) -> Image.Image:
        return self.generate_image_with_spans(chars)[0]
