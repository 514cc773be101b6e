"""Loaders for the shipped public data, labelled files and the moderators' decisions.

Every loader returns a :class:`Corpus`: texts, labels (1 = spam, 0 = ham), the
source of each text and its position in its file (the published protocols split
by file order). Anything malformed raises :class:`DataError` with a one-line
message naming the file and row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moderation.model_registry import sha256_file
from moderation.text import normalize

from .atomic import replacing

DATA_DIR = Path(__file__).resolve().parent / "data"
YOUTUBE_DIR = DATA_DIR / "youtube-spam-collection"
SMS_FILE = DATA_DIR / "sms-spam-collection" / "SMSSpamCollection"

#: The four shipped YouTube videos, by short name, in file order.
YOUTUBE_VIDEOS = {
    "Psy": "Youtube01-Psy.csv",
    "KatyPerry": "Youtube02-KatyPerry.csv",
    "LMFAO": "Youtube03-LMFAO.csv",
    "Eminem": "Youtube04-Eminem.csv",
}

_SPAM_LABELS = {"1", "spam", "true", "yes"}
_HAM_LABELS = {"0", "ham", "false", "no"}


class DataError(ValueError):
    """Bad input data; the message is one line naming the file (and row)."""


@dataclass
class Corpus:
    """Labelled texts; ``source`` says where each came from (e.g. ``youtube:Psy``)."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)

    def extend(self, other: Corpus) -> Corpus:
        self.texts += other.texts
        self.labels += other.labels
        self.sources += other.sources
        self.files.update(other.files)
        return self

    def subset(self, index: Iterable[int]) -> Corpus:
        index = list(index)
        return Corpus(
            [self.texts[i] for i in index],
            [self.labels[i] for i in index],
            [self.sources[i] for i in index],
            dict(self.files),
        )

    def where(self, source_prefix: str) -> list[int]:
        return [i for i, s in enumerate(self.sources) if s.startswith(source_prefix)]

    def groups(self) -> list[str]:
        """Group ids for splitting: texts equal after normalization share a group."""
        return [normalize(t) for t in self.texts]


#: 1.0 / 0.0 as pandas writes an integer column that has a gap (and other tools a
#: number): the integer label, not a probability (0.5 is refused, never rounded).
_INTEGRAL_FLOAT = re.compile(r"([01])\.0+")


def parse_label(value: object, where: str) -> int:
    """1 for spam, 0 for ham; anything else is a :class:`DataError`.

    JSON ``true`` / ``false`` read as the words "true" / "false" do (spam / ham);
    ``1.0`` / ``0.0`` (a JSON number or CSV text) as 1 / 0; any other number is refused.
    """
    text = str(value).strip().lower()
    if isinstance(value, float) and value in (0.0, 1.0):
        text = str(int(value))  # -0.0 too; NaN and inf are refused below
    elif match := _INTEGRAL_FLOAT.fullmatch(text):
        text = match.group(1)
    if text in _SPAM_LABELS:
        return 1
    if text in _HAM_LABELS:
        return 0
    raise DataError(f"{where}: unknown label {value!r} (expected spam/ham or 1/0)")


#: The longest text a labelled file may hold. The service takes comments of at most
#: MAX_COMMENT_CHARS (5000 by default); a longer "text" is a broken export, and one of
#: 50 MB would take the character n-grams many gigabytes of memory.
MAX_TEXT_CHARS = 100_000

#: An Excel "CSV" uses ";" where "," is the decimal mark; a few tools write tabs.
CSV_DELIMITERS = (",", ";", "\t")

UTF8_HINT = "save it as UTF-8 (in Excel: CSV UTF-8)"


def check_input_file(path: Path) -> None:
    """Raise :class:`DataError` unless ``path`` is a file or a pipe that can be read.

    A pipe (``--data <(zcat big.csv.gz)``, a FIFO) is read once, like a file.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory, not a file")
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
        raise DataError(f"{path}: not a regular file or a pipe")


def _not_utf8(path: Path, raw: bytes, exc: UnicodeDecodeError, first_line: int = 1) -> DataError:
    """The one-line error for bytes that are not UTF-8 (Latin-1, Windows-1252 ...)."""
    line = first_line + raw[: exc.start].count(b"\n")
    return DataError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                     f"{UTF8_HINT}")


def read_file(path: Path) -> tuple[str, str]:
    """(text, sha256) of a UTF-8 file (a BOM is dropped), read once: a pipe works too."""
    path = Path(path)
    check_input_file(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, raw, exc) from None
    if not content.strip():
        raise DataError(f"{path}: empty file")
    return content, hashlib.sha256(raw).hexdigest()


def _read_text(path: Path) -> str:
    return read_file(path)[0]


def load_youtube_file(path: Path, source: str | None = None) -> Corpus:
    """One TubeSpam CSV. Only CONTENT and CLASS are used: DATE and AUTHOR leak the label."""
    path = Path(path)
    content = _read_text(path)
    reader = csv.DictReader(io.StringIO(content, newline=""))
    missing = {"CONTENT", "CLASS"} - set(reader.fieldnames or ())
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    corpus = Corpus(files={str(path): sha256_file(path)})
    source = source or f"youtube:{path.stem}"
    for row_number, row in enumerate(reader, start=2):
        corpus.texts.append(row["CONTENT"] or "")
        corpus.labels.append(parse_label(row["CLASS"], f"{path}: row {row_number}"))
        corpus.sources.append(source)
    if not corpus.texts:
        raise DataError(f"{path}: no rows")
    return corpus


def load_youtube(directory: Path = YOUTUBE_DIR, videos: Sequence[str] | None = None) -> Corpus:
    """The shipped YouTube videos (all four unless ``videos`` names some), in file order."""
    corpus = Corpus()
    for name in videos or YOUTUBE_VIDEOS:
        corpus.extend(load_youtube_file(Path(directory) / YOUTUBE_VIDEOS[name], f"youtube:{name}"))
    return corpus


def load_sms(path: Path = SMS_FILE) -> Corpus:
    """The SMS Spam Collection: ``label<TAB>text`` per line, split on the FIRST tab only.

    ``csv`` readers merge lines at stray double quotes; splitting lines by hand keeps
    all 5,574 messages.
    """
    path = Path(path)
    content = _read_text(path)
    corpus = Corpus(files={str(path): sha256_file(path)})
    for line_number, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab:
            raise DataError(f"{path}: line {line_number}: no tab between label and text")
        corpus.texts.append(text)
        corpus.labels.append(parse_label(label, f"{path}: line {line_number}"))
        corpus.sources.append("sms")
    return corpus


def load_shipped() -> Corpus:
    """All shipped labelled data: the four YouTube videos, then the SMS collection."""
    return load_youtube().extend(load_sms())


#: The YouTube Spam Collection's own columns, accepted wherever ``text``/``label`` are:
#: an operator can evaluate on (or train with) another video of the collection as
#: downloaded. Its DATE and AUTHOR columns are never read (they leak the label).
YOUTUBE_COLUMNS = {"text": "CONTENT", "label": "CLASS"}


def csv_columns(path: Path, fieldnames: Sequence[str] | None) -> dict[str, int]:
    """Where ``text``, ``label`` (and ``source``, if any) are among ``fieldnames``, in any
    case ("Text", "LABEL"); else the collection's CONTENT and CLASS; else DataError."""
    # Reversed: of two columns named alike, the first is read.
    found = {str(name).strip().lower(): i
             for i, name in reversed(list(enumerate(fieldnames or ())))}
    for wanted in ({"text": "text", "label": "label"}, YOUTUBE_COLUMNS):
        if {name.lower() for name in wanted.values()} <= found.keys():
            columns = {role: found[name.lower()] for role, name in wanted.items()}
            if "source" in found and wanted is not YOUTUBE_COLUMNS:
                columns["source"] = found["source"]
            return columns
    missing = {"text", "label"} - found.keys()
    raise DataError(
        f"{path}: missing column(s) {', '.join(sorted(missing))} "
        f"(found: {', '.join(fieldnames or []) or 'none'}; the YouTube Spam Collection's "
        f"CONTENT and CLASS are also accepted)"
    )


def _header_delimiter(header: str) -> str:
    """The delimiter that splits ``header`` into known columns (a comma when none does)."""
    for delimiter in CSV_DELIMITERS:
        names = next(csv.reader([header], delimiter=delimiter), [])
        lowered = {name.strip().lower() for name in names}
        if {"text", "label"} <= lowered or {"content", "class"} <= lowered:
            return delimiter
    return ","


def check_text(text: object, where: str) -> str:
    """``text`` if it is a string of at most :data:`MAX_TEXT_CHARS`, else DataError."""
    if not isinstance(text, str):
        raise DataError(f"{where}: text is not a string")
    if len(text) > MAX_TEXT_CHARS:
        raise DataError(f"{where}: text of {len(text):,} characters; at most "
                        f"{MAX_TEXT_CHARS:,} (a comment is at most MAX_COMMENT_CHARS)")
    return text


def csv_records(path: Path, lines: Iterator[str]) -> Iterator[tuple[str, dict]]:
    """(where, {text, label, source}) of each record of a labelled CSV read from ``lines``
    (kept line ends): comma, semicolon or tab delimited (told from the header), quoted
    fields over several lines, blank lines skipped. ``where`` names the row as a
    spreadsheet numbers it (the header is row 1) and the line where it starts, if another.
    """
    header = next(lines, "")
    if not header.strip():
        raise DataError(f"{path}: empty file" if not header else f"{path}: no header on line 1")
    delimiter = _header_delimiter(header)
    reader = csv.reader(itertools.chain([header], lines), delimiter=delimiter)
    fieldnames = next(reader, [])
    columns = csv_columns(path, fieldnames)
    # A video of the YouTube collection is a source of comments like the shipped ones.
    youtube = fieldnames[columns["text"]].strip().lower() == "content"
    source = f"youtube:{path.stem}" if youtube else None
    needed = max(columns["text"], columns["label"])
    row, line = 1, reader.line_num
    while True:
        start = line + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}: {_row_name(row + 1, start)}: {exc} (texts may have at "
                            f"most {MAX_TEXT_CHARS:,} characters)") from None
        row, line = row + 1, reader.line_num
        if not any(field.strip() for field in fields):
            continue  # a blank line (or one of empty cells, as a spreadsheet saves it)
        where = f"{path}: {_row_name(row, start)}"
        if len(fields) <= needed:
            raise DataError(f"{where}: {len(fields)} column(s), the header has "
                            f"{len(fieldnames)} (delimiter {delimiter!r})")
        given = columns.get("source")
        yield where, {"text": fields[columns["text"]], "label": fields[columns["label"]],
                      "source": (fields[given] if given is not None and given < len(fields)
                                 else None) or source}


def _row_name(row: int, line: int) -> str:
    return f"row {row}" if row == line else f"row {row} (line {line})"


def _labelled_rows(path: Path, content: str) -> Iterator[tuple[str, dict]]:
    """(where, row) pairs of a JSONL or CSV file with ``text`` and ``label`` columns."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for line_number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}: line {line_number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object")
            missing = {"text", "label"} - row.keys()
            if missing:
                raise DataError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
            yield where, row
        return
    yield from csv_records(path, iter(content.splitlines(keepends=True)))


def load_labelled(path: Path, *, require_both_classes: bool = True) -> Corpus:
    """A labelled JSONL or CSV file: ``text``, ``label`` (spam/ham or 1/0), optional ``source``."""
    path = Path(path)
    content, digest = read_file(path)
    corpus = Corpus()
    for where, row in _labelled_rows(path, content):
        corpus.texts.append(check_text(row["text"], where))
        corpus.labels.append(parse_label(row["label"], where))
        corpus.sources.append(str(row.get("source") or f"file:{path.name}"))
    if not corpus.texts:
        raise DataError(f"{path}: no labelled rows")
    if require_both_classes:
        check_both_classes(corpus, str(path))
    corpus.files[str(path)] = digest  # of the bytes read: a pipe cannot be read twice
    return corpus


def text_digest(text: str) -> str:
    """A short fingerprint of one text (sha256, 16 hex digits: no collision in practice)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_both_classes(corpus: Corpus, name: str) -> None:
    """Raise :class:`DataError` unless ``corpus`` holds both spam and ham."""
    present = set(corpus.labels)
    if present != {0, 1}:
        only = "spam" if present == {1} else "ham"
        raise DataError(f"{name}: only {only} examples; need both spam and ham")


def write_jsonl(corpus: Corpus, path: Path, extra: Sequence[dict] | None = None) -> None:
    """Write ``corpus`` as JSONL (text, label, source [+ extra fields]) in one step
    (:func:`training.atomic.replacing`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as handle:
        for i, (text, label, source) in enumerate(
            zip(corpus.texts, corpus.labels, corpus.sources, strict=True)
        ):
            row = {"text": text, "label": "spam" if label else "ham", "source": source}
            if extra is not None:
                row.update(extra[i])
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
