"""The articles comments hang under.

The demo site ships one article (``content/seed-article.txt``, a bilingual news
page); the text format is the page as copied: title, a "Fecha de publicación:"
line followed by the date, optional "Imagen principal:", then paragraphs up to
"Add new comment".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CONTENT_DIR = Path(__file__).parent / "content"


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    date: str
    paragraphs: tuple[str, ...]


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")


def parse_article(text: str) -> Article:
    lines = [line.strip() for line in text.splitlines()]
    title = next(line for line in lines if line)
    date = ""
    paragraphs: list[str] = []
    skip = {title, "Imagen principal:", "Fecha de publicación:"}
    for index, line in enumerate(lines):
        if line == "Add new comment":
            break
        if line.startswith("Fecha de publicación:"):
            date = line.split(":", 1)[1].strip() or next(
                (later for later in lines[index + 1 :] if later), ""
            )
            skip.add(date)
            continue
        if line and line not in skip:
            paragraphs.append(line)
    return Article(slug=slugify(title), title=title, date=date, paragraphs=tuple(paragraphs))


@lru_cache(maxsize=1)
def all_articles() -> dict[str, Article]:
    """Every shipped article by slug, in file-name order (read once)."""
    files = sorted(CONTENT_DIR.glob("*.txt"))
    found = [parse_article(path.read_text(encoding="utf-8")) for path in files]
    return {article.slug: article for article in found}


def get_article(slug: str) -> Article | None:
    return all_articles().get(slug)


def default_article() -> Article:
    return next(iter(all_articles().values()))
