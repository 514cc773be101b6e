"""The articles comments hang under.

The demo site ships one article (``content/seed-article.txt``, a bilingual news
page); the text format is the page as copied: title, a "Fecha de publicación:"
line followed by the date, optional "Imagen principal:", then paragraphs up to
"Add new comment". A site adds its own as ``.txt`` files in that format in the
folder ``ARTICLES_DIR``, read at start-up; the shipped article stays the first
(the front page), and an article's slug comes from its title.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, has_app_context

CONTENT_DIR = Path(__file__).parent / "content"


class ArticleError(ValueError):
    """Article files that cannot be served: the first line says how many, then one
    line per file names it and what is wrong (all of them, so one restart fixes all)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} article file{'' if len(problems) == 1 else 's'}"
        super().__init__("\n".join([f"{count} cannot be served (ARTICLES_DIR):", *problems]))


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
    title = next((line for line in lines if line), "")
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


def load_articles(folders: Iterable[Path]) -> dict[str, Article]:
    """Every article in ``folders`` by slug, folder by folder, files in name order.

    Raises :class:`ArticleError` naming every file that cannot be served.
    """
    found: dict[str, Article] = {}
    origin: dict[str, Path] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"{folder}: not a folder of articles")
            continue
        for path in sorted(folder.glob("*.txt")):
            try:
                article = parse_article(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path}: cannot read it as UTF-8 text: {exc}")
                continue
            if not article.slug:
                problems.append(f"{path}: no title (the first non-empty line, with letters)")
            elif article.slug in found:  # one URL, two texts: refuse rather than pick one
                problems.append(f"{path}: its title gives the slug '{article.slug}', "
                                f"like {origin[article.slug]}")
            else:
                found[article.slug], origin[article.slug] = article, path
    if problems:
        raise ArticleError(problems)
    return found


@lru_cache(maxsize=1)
def shipped_articles() -> dict[str, Article]:
    return load_articles([CONTENT_DIR])


def all_articles() -> dict[str, Article]:
    """The app's articles (shipped, then ``ARTICLES_DIR``); outside an app, the shipped."""
    if has_app_context():
        return current_app.extensions["articles"]
    return shipped_articles()


def get_article(slug: str) -> Article | None:
    return all_articles().get(slug)


def default_article() -> Article:
    return next(iter(all_articles().values()))


def init_app(app: Flask) -> None:
    folders = [CONTENT_DIR]
    if app.config.get("ARTICLES_DIR"):
        folders.append(Path(app.config["ARTICLES_DIR"]))
    app.extensions["articles"] = load_articles(folders)
