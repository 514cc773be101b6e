"""The pool of pre-drawn CAPTCHA glyphs: lazy filling, renewal, its memory, and images
composed from it that still differ pixel by pixel."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from moderation.captcha import ALPHABET
from moderation.captcha_image import Difficulty, HardenedImageCaptcha, shipped_fonts
from moderation.glyph_pool import GlyphPool


class CountingDraw:
    """A draw function that numbers its drawings, so a test can tell them apart."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, char: str) -> Image.Image:
        self.calls += 1
        return Image.new("L", (self.calls, 1), 255)


def test_slots_fill_lazily_one_drawing_per_pick_then_are_reused():
    draw = CountingDraw()
    pool = GlyphPool(draw, variants=4, renew_every=10**9)
    first = [pool.pick("A", random.Random(1)) for _ in range(4)]
    assert draw.calls == 4 and len({g.width for g in first}) == 4
    later = [pool.pick("A", random.Random(i)) for i in range(200)]
    assert draw.calls == 4  # full: picks reuse the drawings
    assert {g.width for g in later} == {1, 2, 3, 4}
    assert len(pool) == 4 and pool.pick("B", random.Random(0)).width == 5


def test_picks_renew_their_slot_so_the_pool_changes_over_time():
    draw = CountingDraw()
    pool = GlyphPool(draw, variants=4, renew_every=4)
    rng = random.Random(7)
    for _ in range(4):
        pool.pick("A", rng)
    for _ in range(400):
        pool.pick("A", rng)
    assert 50 < draw.calls - 4 < 150  # about one pick in four redrew its slot
    assert len(pool) == 4  # renewal replaces, never grows
    assert {g.width for g in pool._slots["A"]}.isdisjoint({1, 2, 3, 4})


def test_bad_pool_sizes_are_refused():
    with pytest.raises(ValueError):
        GlyphPool(CountingDraw(), variants=0)
    with pytest.raises(ValueError):
        GlyphPool(CountingDraw(), renew_every=0)


def test_a_full_pool_for_the_alphabet_stays_within_a_few_megabytes():
    captcha = HardenedImageCaptcha()
    rng = random.Random(0)
    for char in ALPHABET:
        for _ in range(captcha.pool.variants):
            captcha.pool.pick(char, rng)
    assert len(captcha.pool) == len(ALPHABET) * captcha.pool.variants
    assert captcha.pool.nbytes() < 3_000_000
    masks = captcha.pool._slots["W"]
    assert all(m.mode == "L" and m.getbbox() == (0, 0, *m.size) for m in masks)
    assert len({m.tobytes() for m in masks}) == len(masks)  # every drawing differs


def test_pooled_glyphs_are_placed_afresh_so_two_images_of_a_text_differ_everywhere():
    """Same text, same pool: the ink differs over much of the text area, not in a few
    pixels, because scale, stretch, shear, position, noise and wave are per image."""
    captcha = HardenedImageCaptcha()
    for _ in range(300):  # fill the pool, so both images come from the same drawings
        captcha.generate_image("K7PXWM")
    first, second = (
        np.asarray(captcha.generate_image("K7PXWM").convert("L"), dtype=int) for _ in range(2)
    )
    assert (np.abs(first - second) > 40).mean() > 0.15


def test_the_png_is_a_palette_image_of_the_configured_size():
    png = HardenedImageCaptcha(width=200, height=70).generate("ABCDE").getvalue()
    image = Image.open(io.BytesIO(png))
    assert png[:4] == b"\x89PNG" and image.mode == "P" and image.size == (200, 70)
    colours = image.convert("RGB").getcolors(maxcolors=256 * 256)
    assert len(colours) > 20  # anti-aliased edges, not a two-colour stencil


def test_fill_draws_every_missing_slot_once():
    draw = CountingDraw()
    pool = GlyphPool(draw, variants=3)
    pool.pick("A", random.Random(0))
    pool.fill("AAB")
    assert draw.calls == 6 and len(pool) == 6
    pool.fill("AB")
    assert draw.calls == 6


def test_instances_with_the_same_drawing_settings_share_one_pool_per_process():
    fonts = shipped_fonts()[:2]
    first = HardenedImageCaptcha(fonts=fonts, difficulty=Difficulty(noise_dots=0))
    second = HardenedImageCaptcha(fonts=fonts, difficulty=Difficulty(noise_dots=300))
    other_fonts = HardenedImageCaptcha(fonts=fonts[:1])
    assert first.pool is second.pool  # noise settings do not change the glyphs
    assert other_fonts.pool is not first.pool


def test_the_app_starts_with_the_pool_drawn_for_the_whole_alphabet(make_app):
    pool = make_app().extensions["captcha"].image.pool
    assert all(len(pool._slots.get(char, [])) == pool.variants for char in ALPHABET)
