"""Model output is untrusted: reduce it to a safe markdown + HTML subset before it is rendered.

Tables and basic formatting stay; scripts, event handlers, styles, iframes and anything that loads
from elsewhere (images, including markdown `![]()` images) go.
"""

from __future__ import annotations

import re

import nh3

ALLOWED_TAGS = {
    "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup", "col",
    "p", "br", "hr", "b", "i", "u", "s", "strong", "em", "sub", "sup", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "span", "div",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}, "col": {"span"}}
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_IMAGE_REF = re.compile(r"!\[([^\]]*)\]\[[^\]]*\]")
_MD_LINK_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)


def safe_markdown(text: str) -> str:
    """Markdown with inline HTML cut down to the allowed tags; no images, no links that load anything."""
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_IMAGE_REF.sub(r"\1", text)
    text = _MD_LINK_DEF.sub("", text)
    return nh3.clean(text, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=set(), link_rel=None)
