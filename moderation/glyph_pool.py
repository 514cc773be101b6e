"""A per-process pool of pre-drawn CAPTCHA glyphs, renewed as it is used.

Drawing one character the ``captcha`` package's way (render with a font, crop,
rotate, quad-warp) costs about a millisecond; an image has 5-7 of them. The pool
keeps ``variants`` such drawings per character as small greyscale masks (one byte
per pixel, about 3 KB each) and hands out a random one; the image code then
scales, stretches, shears and places it afresh for every image, so the pool only
saves the expensive part.

So that the set of shapes is not fixed for the life of a worker (an attacker who
collects many images could otherwise learn every variant), each pick redraws the
slot it took with probability ``1 / renew_every``: the whole pool turns over
every ``variants * renew_every`` picks of a character. The app fills the pool
for the challenge alphabet when it starts (``fill``, ~0.6 s of CPU); any other
character gets its slots lazily, one new drawing per pick until it has them all.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image

#: Drawings kept per character: 31 characters x 24 = 744 masks, about 2.5 MB.
DEFAULT_VARIANTS = 24
#: A pick redraws its slot with probability 1/64 (amortised: one drawing per ~11 images).
DEFAULT_RENEW_EVERY = 64


class GlyphPool:
    """Random pre-drawn masks ('L' images, ink = 255) per character."""

    def __init__(
        self,
        draw: Callable[[str], Image.Image],
        *,
        variants: int = DEFAULT_VARIANTS,
        renew_every: int = DEFAULT_RENEW_EVERY,
    ) -> None:
        if variants < 1 or renew_every < 1:
            raise ValueError("variants and renew_every must be at least 1")
        self._draw = draw
        self.variants = variants
        self.renew_every = renew_every
        self._slots: dict[str, list[Image.Image]] = {}

    def pick(self, char: str, rng: random.Random) -> Image.Image:
        """One drawing of ``char``; callers must not modify it (it is shared)."""
        slots = self._slots.setdefault(char, [])
        if len(slots) < self.variants:
            glyph = self._draw(char)
            slots.append(glyph)
            return glyph
        index = rng.randrange(self.variants)
        if rng.randrange(self.renew_every) == 0:
            # A list item assignment is atomic under the GIL: a thread reading the
            # old drawing at the same time still holds a complete image.
            slots[index] = self._draw(char)
        return slots[index]

    def fill(self, chars: str) -> None:
        """Draw every missing slot of ``chars`` now (at start-up), not on first use."""
        for char in dict.fromkeys(chars):
            slots = self._slots.setdefault(char, [])
            while len(slots) < self.variants:
                slots.append(self._draw(char))

    def nbytes(self) -> int:
        """Pixel bytes held (one byte per pixel); Python object overhead not included."""
        return sum(g.width * g.height for slots in self._slots.values() for g in slots)

    def __len__(self) -> int:
        return sum(len(slots) for slots in self._slots.values())
