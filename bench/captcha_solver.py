"""How well does a cheap trained solver read our CAPTCHA? (issue 5, point 2)

The attacker has our drawing code, so they can render as many labelled images as
they like. This benchmark plays that attacker with a small budget:

1. render N training images with the drawing code under test, keeping each
   character's horizontal span (the attacker instruments the code they have);
2. train a sliding-window classifier (scikit-learn MLP on raw pixel windows of a
   height-normalised image; classes = the alphabet + "not a character centre");
3. read fresh images: slide the window, then pick the 5..7 (or fixed-length)
   character centres that maximise the summed "is a centre" log-odds with a
   dynamic programme, and take each centre's most likely character;
4. report the exact solve rate (all characters right) and the per-character rate.

It runs the same solver on the ``captcha`` package's default ``ImageCaptcha``
(same size, our alphabet, length 6 as the app had before hardening) as a same-run
baseline, so a weak solver cannot make our image look strong. It also reports
tesseract's exact rate when the binary is installed, and the median render time
of both generators.

    python -m bench.captcha_solver            # full run: 20,000 training images each
    python -m bench.captcha_solver --quick    # seconds, for smoke tests

Results go to bench/results/captcha_solver.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/captcha_solver.py` from anywhere
    sys.path.insert(0, str(ROOT))

from captcha.image import ImageCaptcha  # noqa: E402
from PIL import Image  # noqa: E402

from moderation.captcha import ALPHABET, random_text  # noqa: E402
from moderation.captcha_image import HardenedImageCaptcha  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "captcha_solver.json"
SAMPLES = ROOT / "docs" / "captcha-samples.png"
NORM_HEIGHT = 32  # images are scaled to this height before windowing
WINDOW = 20  # window width in scaled pixels
BACKGROUND = len(ALPHABET)  # class index for "not a character centre"
CLASSES = ALPHABET + "_"


class InstrumentedDefaultCaptcha(ImageCaptcha):
    """The package's default drawing code, unchanged, also returning character spans.

    ``create_captcha_image`` is the package's own code (captcha 0.7) with two lines
    added to record where each character was pasted.
    """

    def generate_image_with_spans(self, chars: str):
        from captcha.image import random_color

        background = random_color(238, 255)
        color = random_color(10, 200, secrets.randbelow(36) + 220)
        image, spans = self._draw_with_spans(chars, color, background)
        self.create_noise_dots(image, color)
        self.create_noise_curve(image, color)
        from PIL.ImageFilter import SMOOTH

        return image.filter(SMOOTH), spans

    def _draw_with_spans(self, chars, color, background):
        image = Image.new("RGB", (self._width, self._height), background)
        from PIL.ImageDraw import Draw

        draw = Draw(image)
        images, is_char = [], []
        for c in chars:
            if secrets.randbits(32) / (2**32) > self.word_space_probability:
                images.append(self._draw_character(" ", draw, color))
                is_char.append(False)
            images.append(self._draw_character(c, draw, color))
            is_char.append(True)
        text_width = sum(im.size[0] for im in images)
        width = max(text_width, self._width)
        image = image.resize((width, self._height))
        average = int(text_width / len(chars))
        rand = int(self.word_offset_dx * average)
        offset = int(average * 0.1)
        spans = []
        for im, char in zip(images, is_char, strict=True):
            w, h = im.size
            mask = im.convert("L").point(self.lookup_table)
            image.paste(im, (offset, int((self._height - h) / 2)), mask)
            if char:
                spans.append((offset, offset + w))
            offset = offset + w + (-secrets.randbelow(rand + 1))
        if width > self._width:
            scale = self._width / width
            image = image.resize((self._width, self._height))
            spans = [(int(a * scale), int(b * scale)) for a, b in spans]
        return image, spans


GENERATORS = {
    # The package's defaults at our image size, our alphabet, 6 characters.
    "default": {"factory": lambda: InstrumentedDefaultCaptcha(200, 70), "lengths": (6, 6)},
    # Our hardened image at its default settings, 5..7 characters.
    "ours": {"factory": lambda: HardenedImageCaptcha(), "lengths": (5, 7)},
}


# -- data --------------------------------------------------------------------------


def preprocess(image: Image.Image) -> np.ndarray:
    """Grey, ink = high, background ~0, scaled to NORM_HEIGHT; uint8."""
    w, h = image.size
    width = max(WINDOW, round(w * NORM_HEIGHT / h))
    grey = np.asarray(
        image.convert("L").resize((width, NORM_HEIGHT), Image.Resampling.BILINEAR), dtype=np.int16
    )
    ink = np.median(grey) - grey
    return np.clip(ink * 2, 0, 255).astype(np.uint8)


_worker_generator = None


def _init_worker(name: str) -> None:
    global _worker_generator
    _worker_generator = GENERATORS[name]["factory"]()


def _render_batch(args):
    name, count = args
    low, high = GENERATORS[name]["lengths"]
    out = []
    for _ in range(count):
        text = random_text(low + secrets.randbelow(high - low + 1))
        image, spans = _worker_generator.generate_image_with_spans(text)
        scale = NORM_HEIGHT / image.size[1]
        centres = [(a + b) / 2 * scale for a, b in spans]
        out.append((text, preprocess(image), centres))
    return out


def render_set(name: str, count: int, workers: int) -> list[tuple[str, np.ndarray, list[float]]]:
    """``count`` labelled images from generator ``name``: (text, scaled ink array, centres)."""
    chunk = max(1, min(500, count // max(1, workers * 4) or 1))
    jobs = [(name, min(chunk, count - i)) for i in range(0, count, chunk)]
    if workers > 1:
        with multiprocessing.get_context("fork").Pool(workers, _init_worker, (name,)) as pool:
            batches = pool.map(_render_batch, jobs)
    else:
        _init_worker(name)
        batches = [_render_batch(job) for job in jobs]
    return [sample for batch in batches for sample in batch]


def windows(arr: np.ndarray) -> np.ndarray:
    """Every window of the padded image, one per x position: shape (width, H*WINDOW)."""
    pad = WINDOW // 2
    padded = np.pad(arr, ((0, 0), (pad, pad)))
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW, axis=1)  # H, W, WINDOW
    return view[:, : arr.shape[1], :].transpose(1, 0, 2).reshape(arr.shape[1], -1)


def training_windows(samples, negatives_per_image: int = 3):
    xs, ys = [], []
    rng = np.random.default_rng(secrets.randbits(32))
    for text, arr, centres in samples:
        win = windows(arr)
        width = arr.shape[1]
        centre_px = np.array(centres)
        for char, cx in zip(text, centres, strict=True):
            for dx in (-1, 0, 1):  # the centre and its neighbours: a broad, stable peak
                x = min(width - 1, max(0, int(round(cx)) + dx))
                xs.append(win[x])
                ys.append(ALPHABET.index(char))
        far = [x for x in range(width) if np.min(np.abs(centre_px - x)) >= 3.5]
        for x in (
            rng.choice(far, size=min(negatives_per_image, len(far)), replace=False) if far else []
        ):
            xs.append(win[x])
            ys.append(BACKGROUND)
    return np.asarray(xs, dtype=np.float32) / 255.0, np.asarray(ys)


# -- solver ------------------------------------------------------------------------


class WindowSolver:
    """PCA of the raw window pixels, then a one-hidden-layer MLP (scikit-learn)."""

    def __init__(self, hidden: int, epochs: int, seed: int, components: int = 128) -> None:
        from sklearn.decomposition import PCA
        from sklearn.neural_network import MLPClassifier

        self.pca = PCA(n_components=components, random_state=seed, svd_solver="randomized")
        self.mlp = MLPClassifier(
            hidden_layer_sizes=(hidden,),
            batch_size=512,
            learning_rate_init=2e-3,
            max_iter=epochs,
            random_state=seed,
            early_stopping=False,
            n_iter_no_change=epochs + 1,
            tol=0.0,
        )

    def fit(self, x: np.ndarray, y: np.ndarray) -> WindowSolver:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        rng = np.random.default_rng(0)
        self.pca.n_components = min(self.pca.n_components, len(x) - 1, x.shape[1])
        self.pca.fit(x[rng.choice(len(x), size=min(len(x), 30_000), replace=False)])
        features = self.pca.transform(x).astype(np.float32)
        self.scale = features.std(axis=0) + 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.mlp.fit(features / self.scale, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        probs = self.mlp.predict_proba(self.pca.transform(x).astype(np.float32) / self.scale)
        full = np.zeros((len(x), len(CLASSES)), dtype=np.float32)  # classes never seen stay 0
        full[:, self.mlp.classes_] = probs
        return full


def train(samples, hidden: int, epochs: int, seed: int):
    x, y = training_windows(samples)
    return WindowSolver(hidden, epochs, seed).fit(x, y), len(y)


def decode(probs: np.ndarray, lengths: tuple[int, int], min_gap: int) -> str:
    """Pick 'lengths' centres maximising the summed centre log-odds, read each one."""
    eps = 1e-6
    p_bg = np.clip(probs[:, BACKGROUND], eps, 1 - eps)
    score = np.log(1 - p_bg) - np.log(p_bg)
    width = len(score)
    low, high = lengths
    neg = -1e18
    # best[k][x] = best total with k centres, the last one at x; back pointers in prev.
    best = np.full((high + 1, width), neg)
    prev = np.full((high + 1, width), -1, dtype=int)
    best[1] = score
    for k in range(2, high + 1):
        running, arg = neg, -1
        for x in range(width):
            j = x - min_gap
            if j >= 0 and best[k - 1][j] > running:
                running, arg = best[k - 1][j], j
            if arg >= 0:
                best[k][x] = running + score[x]
                prev[k][x] = arg
    candidates = [(best[k].max(), k) for k in range(low, high + 1)]
    _, k = max(candidates)
    x = int(best[k].argmax())
    centres = []
    while k >= 1 and x >= 0:
        centres.append(x)
        x, k = prev[k][x], k - 1
    centres.reverse()
    chars = []
    for cx in centres:
        around = probs[max(0, cx - 1) : cx + 2, :BACKGROUND].mean(axis=0)
        chars.append(ALPHABET[int(around.argmax())])
    return "".join(chars)


def evaluate(model, samples, lengths, min_gap: int) -> dict:
    exact = chars_right = chars_total = 0
    for text, arr, _ in samples:
        probs = model.predict_proba(windows(arr).astype(np.float32) / 255.0)
        guess = decode(probs, lengths, min_gap)
        exact += guess == text
        chars_total += len(text)
        chars_right += (
            sum(a == b for a, b in zip(guess, text, strict=False)) if len(guess) == len(text) else 0
        )
    n = len(samples)
    return {
        "exact": exact,
        "n": n,
        "exact_rate": exact / n,
        "char_rate": chars_right / max(1, chars_total),
    }


# -- tesseract and timing -----------------------------------------------------------


def tesseract_rate(name: str, count: int) -> dict:
    binary = shutil.which("tesseract")
    if binary is None:
        return {
            "available": False,
            "note": "tesseract not installed (apt-get install tesseract-ocr)",
        }
    generator = GENERATORS[name]["factory"]()
    low, high = GENERATORS[name]["lengths"]
    exact = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.png"
        for _ in range(count):
            text = random_text(low + secrets.randbelow(high - low + 1))
            image, _ = generator.generate_image_with_spans(text)
            image.save(path)
            result = subprocess.run(
                [
                    binary,
                    str(path),
                    "stdout",
                    "--psm",
                    "7",
                    "-c",
                    f"tessedit_char_whitelist={ALPHABET}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            exact += "".join(result.stdout.split()).upper() == text
    return {"available": True, "exact": exact, "n": count, "exact_rate": exact / max(1, count)}


def render_median_ms(name: str, count: int) -> float:
    """Median time of one full PNG render (what the /captcha/<id>.png view does)."""
    generator = GENERATORS[name]["factory"]()
    if name == "default":
        generator = ImageCaptcha(200, 70)
    if hasattr(generator, "warm"):
        generator.warm(ALPHABET)  # as the app does at start-up: time the steady state
    low, high = GENERATORS[name]["lengths"]
    times = []
    for _ in range(count):
        text = random_text(low + secrets.randbelow(high - low + 1))
        start = time.perf_counter()
        generator.generate(text, format="png")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# -- main --------------------------------------------------------------------------


def run(
    train_n: int = 20_000,
    test_n: int = 1_000,
    tesseract_n: int = 200,
    render_n: int = 300,
    hidden: int = 256,
    epochs: int = 6,
    workers: int | None = None,
    seed: int = 0,
    generators: tuple[str, ...] = ("default", "ours"),
) -> dict:
    workers = workers or min(2, os.cpu_count() or 1)
    results = {
        "train_images": train_n,
        "test_images": test_n,
        "tesseract_images": tesseract_n,
        "window": WINDOW,
        "norm_height": NORM_HEIGHT,
        "hidden": hidden,
        "epochs": epochs,
        "workers": workers,
        "python": platform.python_version(),
        "generators": {},
    }
    for name in generators:
        lengths = GENERATORS[name]["lengths"]
        start = time.perf_counter()
        train_set = render_set(name, train_n, workers)
        test_set = render_set(name, test_n, workers)
        render_s = time.perf_counter() - start
        start = time.perf_counter()
        model, windows_n = train(train_set, hidden, epochs, seed)
        train_s = time.perf_counter() - start
        spacing = [b - a for _, _, c in train_set for a, b in zip(c, c[1:], strict=False)]
        min_gap = max(2, int(np.percentile(spacing, 1))) if spacing else 4
        start = time.perf_counter()
        solver = evaluate(model, test_set, lengths, min_gap)
        solve_s = time.perf_counter() - start
        results["generators"][name] = {
            "lengths": list(lengths),
            "solver": solver | {"train_windows": windows_n, "min_gap": min_gap},
            "seconds": {
                "render_datasets": round(render_s, 1),
                "train": round(train_s, 1),
                "solve": round(solve_s, 1),
            },
            "tesseract": tesseract_rate(name, tesseract_n),
            "render_median_ms": round(render_median_ms(name, render_n), 3),
        }
    return results


def write_sample_grid(path: Path, count: int = 12, columns: int = 3) -> list[str]:
    """A grid of ``count`` fresh images at the default settings; returns their texts."""
    generator = HardenedImageCaptcha()
    width, height, gap = generator._width, generator._height, 8
    rows = -(-count // columns)
    grid = Image.new("RGB", (columns * (width + gap) - gap, rows * (height + gap) - gap), "white")
    texts = []
    for i in range(count):
        text = random_text(5 + secrets.randbelow(3))
        image, _ = generator.generate_image_with_spans(text)
        grid.paste(image, ((i % columns) * (width + gap), (i // columns) * (height + gap)))
        texts.append(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return texts


def print_table(results: dict) -> None:
    print(
        f"CAPTCHA solver benchmark: {results['train_images']} training images, "
        f"{results['test_images']} fresh test images, "
        f"MLP({results['hidden']}) x {results['epochs']} epochs"
    )
    print(
        f"{'generator':<10} {'solver exact':>14} {'per char':>9} {'tesseract':>12} "
        f"{'render ms':>10} {'train s':>8}"
    )
    for name, r in results["generators"].items():
        t = r["tesseract"]
        tess = f"{t['exact_rate']:.1%}" if t.get("available") else "n/a"
        print(
            f"{name:<10} {r['solver']['exact_rate']:>14.1%} {r['solver']['char_rate']:>9.1%} "
            f"{tess:>12} {r['render_median_ms']:>10.2f} {r['seconds']['train']:>8.1f}"
        )
    for name, r in results["generators"].items():
        if not r["tesseract"].get("available"):
            print(f"{name}: {r['tesseract']['note']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (seconds): for smoke tests"
    )
    parser.add_argument("--train", type=int, default=None, help="training images per generator")
    parser.add_argument("--test", type=int, default=None, help="fresh test images per generator")
    parser.add_argument("--tesseract", type=int, default=None, help="images for tesseract")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--samples",
        type=Path,
        default=None,
        help=f"sample grid PNG (default {SAMPLES.relative_to(ROOT)}; next to --out with --quick)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        sizes = {
            "train_n": 200,
            "test_n": 20,
            "tesseract_n": 2,
            "render_n": 20,
            "epochs": 2,
            "hidden": 32,
        }
    else:
        sizes = {}
    for key, value in (
        ("train_n", args.train),
        ("test_n", args.test),
        ("tesseract_n", args.tesseract),
        ("epochs", args.epochs),
    ):
        if value is not None:
            sizes[key] = value
    results = run(workers=args.workers, **sizes)
    results["quick"] = args.quick
    samples = args.samples or (args.out.with_suffix(".png") if args.quick else SAMPLES)
    results["samples"] = {"path": str(samples), "texts": write_sample_grid(samples)}
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
