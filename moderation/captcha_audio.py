"""The audio alternative to the image CAPTCHA (WCAG 2.x SC 1.1.1).

``captcha.audio.AudioCaptcha`` speaks a challenge's characters one recording at a
time. The package ships a single recording per character, which a bot can match
by template, so when ``espeak-ng`` is installed ``build_voice_library`` records
every character of our alphabet in several voices, speeds and pitches, in English
and Spanish, into ``CAPTCHA_VOICES_DIR`` (run ``flask --app moderation captcha
build-voices``). Without that library the shipped recordings are used (English
only) and a line in the log says so. Either way the package's own speed/volume
twists apply per character and louder noise is mixed in.

The library is a directory per language, each the package's "voice data library"
layout: one directory per character holding 8 kHz, 8-bit mono WAV files.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import numpy as np
from captcha.audio import BEEP, END_BEEP, SILENCE, WAVE_SAMPLE_RATE, AudioCaptcha
from flask import Flask, current_app

from .captcha import ALPHABET

log = logging.getLogger(__name__)

LANGUAGES = ("en", "es")

#: espeak-ng voices and variants per language: accents x variants give distinct voices.
VOICES = {
    "en": ["en-us+m1", "en-us+f2", "en-gb+m3", "en-gb+f4", "en-gb-scotland+m2", "en-029+f1"],
    "es": ["es+m1", "es+f2", "es-419+m3", "es-419+f4"],
}
SPEEDS = (120, 150)  # words per minute
PITCHES = (35, 65)  # 0..99


def _speed(body: np.ndarray, speed: float) -> np.ndarray:
    """The package's ``change_speed`` (nearest-sample stretch), vectorised."""
    length = max(1, int(len(body) * speed))
    return body[np.minimum((np.arange(length) / speed).astype(np.int64), len(body) - 1)]


def _level(body: np.ndarray, level: float) -> np.ndarray:
    """The package's ``change_sound`` (volume around the 128 midpoint), vectorised."""
    return np.clip(128 + (body.astype(np.float32) - 128) * level, 0, 255).astype(np.uint8)


def _mix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The package's ``mix_wave`` formula, vectorised; ``src`` no longer than ``dst``."""
    s = src.astype(np.float32)
    d = dst[: len(src)].astype(np.float32)
    both_low = (s < 128) & (d < 128)
    mixed = np.where(both_low, s * d / 128, 2 * (s + d) - s * d / 128 - 256)
    out = dst.copy()
    out[: len(src)] = np.clip(mixed.astype(np.int32), 0, 255).astype(np.uint8)
    return out


class NoisyAudioCaptcha(AudioCaptcha):
    """``AudioCaptcha`` with louder white noise, its loops done with numpy.

    The package's pure-Python sample loops take seconds per challenge; these
    overrides keep its recipe (beeps, a random 1-3 s pause between characters,
    per-character speed 0.9-1.2 and volume 0.8-1.2, reversed-speech babble) and
    add white noise of ``noise_level`` (0-255 peak to peak).
    """

    def __init__(self, voicedir: str | None = None, noise_level: int = 24) -> None:
        super().__init__(voicedir)
        self.noise_level = max(2, min(noise_level, 120))
        self._load_lock = threading.Lock()
        self._loaded = False

    def generate(self, chars: str) -> bytearray:
        """The package's generate, loading the library exactly once even when threads race."""
        if not self._loaded:
            with self._load_lock:
                if not self._loaded:
                    self.load()
                    self._loaded = True
        return super().generate(chars)

    def _voice(self, key: str) -> np.ndarray:
        return np.frombuffer(bytes(secrets.choice(self._cache[key])), dtype=np.uint8)

    def _twist_pick(self, key: str) -> np.ndarray:
        voice = _speed(self._voice(key), (secrets.randbelow(31) + 90) / 100)
        return _level(voice, (secrets.randbelow(41) + 80) / 100)

    def _noise_pick(self) -> np.ndarray:
        voice = self._voice(secrets.choice(self.choices))[::-1]
        voice = _speed(voice, (secrets.randbelow(9) + 8) / 10)
        return _level(voice, (secrets.randbelow(5) + 2) / 10)

    def create_background_noise(self, length: int, chars: str) -> np.ndarray:
        half = self.noise_level // 2
        rng = np.random.default_rng(
            secrets.randbits(64)
        )  # per call: Generators are not thread-safe
        noise = np.clip(128 + rng.integers(-half, half + 1, size=length), 0, 255).astype(np.uint8)
        pos = 0
        while pos < length:
            sound = self._noise_pick()[: length - pos]
            noise[pos:] = _mix(sound, noise[pos:])
            pos += len(sound) + 1 + secrets.randbelow(WAVE_SAMPLE_RATE // 10 + 1)
        return noise

    def create_wave_body(self, chars: str) -> bytearray:
        voices = [self._twist_pick(c) for c in chars]
        pauses = [secrets.randbelow(WAVE_SAMPLE_RATE * 2 + 1) + WAVE_SAMPLE_RATE for _ in chars]
        length = sum(len(v) + 1 for v in voices) + sum(pauses) + pauses[0]
        body = self.create_background_noise(length, chars)
        pos = pauses[0]
        for voice, pause in zip(voices, pauses, strict=True):
            body[pos:] = _mix(voice, body[pos:])
            pos += len(voice) + 1 + pause
        return BEEP + SILENCE + BEEP + SILENCE + BEEP + bytearray(body.tobytes()) + END_BEEP


class AudioChallenges:
    """Speaks challenge texts with a voice library per language (or the shipped voice)."""

    def __init__(self, voices_dir: str | Path | None, noise_level: int = 24) -> None:
        self.speakers: dict[str, NoisyAudioCaptcha] = {}
        root = Path(voices_dir) if voices_dir else None
        for language in LANGUAGES:
            directory = root / language if root else None
            if directory is not None and library_complete(directory):
                self.speakers[language] = NoisyAudioCaptcha(str(directory), noise_level)
        self.fallback = not self.speakers
        if self.fallback:
            # The package's own recordings cover 0-9 and A-Z (one file each, English).
            self.speakers["en"] = NoisyAudioCaptcha(None, noise_level)

    @property
    def languages(self) -> list[str]:
        return sorted(self.speakers)

    def spoken(self, language: str) -> str:
        """The language :meth:`render` speaks when asked for ``language``."""
        if language in self.speakers:
            return language
        return "en" if "en" in self.speakers else next(iter(self.speakers))

    def render(self, chars: str, language: str = "en") -> bytes:
        return bytes(self.speakers[self.spoken(language)].generate(chars))


def library_complete(directory: Path) -> bool:
    """Every alphabet character has at least one recording under ``directory``."""
    return directory.is_dir() and all(any((directory / c).glob("*.wav")) for c in ALPHABET)


def _to_package_format(source: Path, target: Path) -> None:
    """espeak-ng's 22 kHz 16-bit WAV -> trimmed, normalised 8 kHz 8-bit unsigned mono."""
    with wave.open(str(source)) as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(-1), dtype="<i2").astype(np.float32)
    loud = np.flatnonzero(np.abs(samples) > 500)
    if loud.size:
        samples = samples[max(0, loud[0] - rate // 50) : loud[-1] + rate // 50]
    count = max(1, int(len(samples) * WAVE_SAMPLE_RATE / rate))
    resampled = np.interp(np.linspace(0, len(samples) - 1, count), np.arange(len(samples)), samples)
    peak = float(np.max(np.abs(resampled))) or 1.0
    pcm = np.clip(128 + resampled / peak * 110, 0, 255).astype(np.uint8)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(WAVE_SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def build_voice_library(
    directory: str | Path, espeak: str | None = None, workers: int = 4
) -> dict[str, int]:
    """Record the alphabet with espeak-ng; return recordings per language.

    Raises FileNotFoundError when espeak-ng is not installed. Builds into a fresh
    directory and swaps it in, so a running service never sees half a library.
    """
    binary = espeak or shutil.which("espeak-ng")
    if binary is None:
        raise FileNotFoundError("espeak-ng is not installed")
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".voices-", dir=directory.parent))
    jobs = []
    for language, voices in VOICES.items():
        for char in ALPHABET:
            (staging / language / char).mkdir(parents=True, exist_ok=True)
            for voice in voices:
                for speed in SPEEDS:
                    for pitch in PITCHES:
                        name = f"{voice.replace('+', '_')}-s{speed}-p{pitch}.wav"
                        jobs.append((voice, speed, pitch, char, staging / language / char / name))

    def record(job) -> None:
        voice, speed, pitch, char, target = job
        raw = target.with_suffix(".raw.wav")
        # say-as characters: a letter is read by name ("A" is "ay", not the article).
        ssml = f'<speak><say-as interpret-as="characters">{char}</say-as></speak>'
        subprocess.run(
            [binary, "-m", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), ssml],
            check=True,
            capture_output=True,
            timeout=30,
        )
        _to_package_format(raw, target)
        raw.unlink()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(record, jobs))
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return {language: sum(1 for _ in (directory / language).rglob("*.wav")) for language in VOICES}


def voices_dir(config: Mapping[str, Any]) -> Path:
    return Path(config.get("CAPTCHA_VOICES_DIR") or Path(config["VAR_DIR"]) / "captcha-voices")


def init_app(app: Flask) -> AudioChallenges:
    """Load the voice library (or the shipped voice) and register the CLI command."""
    directory = voices_dir(app.config)
    audio = AudioChallenges(directory, app.config.get("CAPTCHA_AUDIO_NOISE", 24))
    if audio.fallback:
        hint = (
            "run `flask --app moderation captcha build-voices`"
            if shutil.which("espeak-ng")
            else "install espeak-ng and run `flask --app moderation captcha build-voices`"
        )
        log.info(
            "audio CAPTCHA: no voice library in %s; using the captcha package's shipped voice (%s)",
            directory,
            hint,
        )
    else:
        log.info("audio CAPTCHA: voice library %s (%s)", directory, ", ".join(audio.languages))
    app.cli.add_command(captcha_cli)
    return audio


@click.group("captcha", help="CAPTCHA maintenance commands.")
def captcha_cli() -> None:
    pass


@captcha_cli.command("build-voices")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to build the library (default: CAPTCHA_VOICES_DIR).",
)
def build_voices_command(directory: str | None) -> None:
    """Record the CAPTCHA alphabet with espeak-ng in several voices (English, Spanish)."""
    target = Path(directory) if directory else voices_dir(current_app.config)
    try:
        counts = build_voice_library(target)
    except FileNotFoundError as error:
        raise click.ClickException(f"{error}; the shipped voice stays in use") from None
    click.echo(
        f"built {target}: " + ", ".join(f"{lang} {n} recordings" for lang, n in counts.items())
    )
    click.echo("restart the service to load it")


def make_voices() -> int:
    """``make voices``: build the library once, when espeak-ng is installed.

    Returns the exit status; a bad setting is one line, as under gunicorn.
    """
    from .config import ConfigError, from_environment

    try:
        config = from_environment()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    target = voices_dir(config)
    if target.exists():
        return 0
    if not shutil.which("espeak-ng"):
        print("audio CAPTCHA: espeak-ng not installed, using the captcha package voice")
        return 0
    print("audio CAPTCHA voice library built:", build_voice_library(target), "in", target)
    return 0
