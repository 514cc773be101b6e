"""An evaluation report's Markdown as HTML that is safe to show and passes the site's CSP.

markdown-it-py (CommonMark with tables) with raw HTML off: any ``<script>`` or
``<img onerror>`` in a report comes out as text, and its link check refuses
``javascript:``, ``vbscript:`` and ``file:`` URLs. Two things are changed in the
token stream before rendering, both for the Content-Security-Policy
(``security_headers.py``):

* a table column's alignment, which markdown-it writes as an inline ``style``
  attribute (refused by ``style-src 'self'``), becomes a class;
* an image is kept only when its source is one of the report folder's own plots,
  pointed at the route that serves them; any other image (another site, another
  folder) becomes its alt text, since ``img-src 'self'`` would refuse it anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

#: markdown-it's alignment styles and the classes of moderate.css that replace them.
ALIGN_CLASSES = {
    "text-align:left": "align-left",
    "text-align:center": "align-center",
    "text-align:right": "align-right",
}


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


_MARKDOWN = _parser()


def _align_by_class(token: Token) -> None:
    style = token.attrs.pop("style", None)
    if style is not None and str(style) in ALIGN_CLASSES:
        token.attrJoin("class", ALIGN_CLASSES[str(style)])


def _own_images(children: Iterable[Token], image_url: Callable[[str], str | None]) -> None:
    for child in children:
        if child.type != "image":
            continue
        url = image_url(str(child.attrGet("src") or ""))
        if url is None:
            child.type, child.tag, child.nesting = "text", "", 0
            child.attrs = {}
            child.content = f"[image: {child.content}]" if child.content else "[image]"
            child.children = None
        else:
            child.attrSet("src", url)


def _lower_heading(token: Token, levels: int) -> None:
    level = min(6, int(token.tag[1]) + levels)
    token.tag = f"h{level}"


def render(markdown: str, image_url: Callable[[str], str | None],
           heading_levels_down: int = 0) -> Markup:
    """``markdown`` as HTML; ``image_url(src)`` gives the URL to show an image's source
    at, or None to drop the image (its alt text stays). ``heading_levels_down`` nests
    the report's headings under the page's own (2: its ``#`` becomes ``<h3>``)."""
    tokens = _MARKDOWN.parse(markdown)
    for token in tokens:
        if token.type in ("heading_open", "heading_close") and heading_levels_down:
            _lower_heading(token, heading_levels_down)
        elif token.type in ("th_open", "td_open"):
            _align_by_class(token)
        elif token.type == "inline" and token.children:
            _own_images(token.children, image_url)
    return Markup(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))
