"""The CAPTCHA solver benchmark runs end to end at tiny sizes and writes its fields.

Only the harness is checked here; the figures come from a full run (README).
"""

from __future__ import annotations

import json

import pytest

from bench import captcha_solver


@pytest.mark.slow
def test_quick_run_writes_every_result_field(tmp_path, capsys):
    out = tmp_path / "captcha_solver.json"
    results = captcha_solver.main(["--quick", "--workers", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    assert results["quick"] is True and results["train_images"] == 200
    assert set(results["generators"]) == {"default", "ours"}
    for name, generator in results["generators"].items():
        solver = generator["solver"]
        assert solver["n"] == 20 and 0 <= solver["exact"] <= solver["n"], name
        assert 0.0 <= solver["exact_rate"] <= 1.0 and 0.0 <= solver["char_rate"] <= 1.0
        assert solver["train_windows"] > 200
        assert generator["render_median_ms"] > 0
        tesseract = generator["tesseract"]
        assert "exact_rate" in tesseract if tesseract["available"] else "note" in tesseract
    grid = results["samples"]["path"]
    assert grid.startswith(str(tmp_path)) and open(grid, "rb").read(4) == b"\x89PNG"
    table = capsys.readouterr().out
    assert "solver exact" in table and "default" in table and "ours" in table


def test_decoder_reads_a_clear_probability_track():
    """The dynamic programme picks the peaks and reads their classes."""
    import numpy as np

    width, text = 60, "K7PXW"
    probs = np.zeros((width, len(captcha_solver.CLASSES)), dtype=np.float32)
    probs[:, captcha_solver.BACKGROUND] = 0.98
    probs[:, 0] = 0.02
    for i, char in enumerate(text):
        x = 6 + 11 * i
        probs[x] = 0.0
        probs[x, captcha_solver.ALPHABET.index(char)] = 0.95
        probs[x, captcha_solver.BACKGROUND] = 0.05
    assert captcha_solver.decode(probs, (5, 7), min_gap=5) == text
