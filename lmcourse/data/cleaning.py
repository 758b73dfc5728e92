"""Wikipedia markup -> paragraphs of prose, and the Lee news file -> articles: the cleaning
behind the offline corpora of :mod:`lmcourse.data.corpus` (Chapter 1, Background).

The Wikipedia cleaner is a handful of rules on top of gensim's ``filter_wiki``: it drops tables,
galleries, images with their captions, sections of references and link lists, hatnotes, and
lines that are not sentences. Left out: templates that carried words (dates, foreign spellings)
leave small holes such as ``Apollo (, Apollōn)``; a full MediaWiki parser would be needed to
fill them.
"""

from __future__ import annotations

import bz2
import re
from pathlib import Path

__all__ = ["CLEAN_VERSION", "clean_wiki_article", "wiki_documents", "lee_documents"]

CLEAN_VERSION = 1  # bump when the cleaning rules change: invalidates disk caches

_DROP_SECTIONS = {  # sections of references and link lists, not prose
    "references", "external links", "see also", "further reading", "notes", "footnotes",
    "bibliography", "sources", "citations", "works cited", "gallery", "notes and references",
    "primary sources", "secondary sources", "filmography", "discography", "works",
    "publications", "selected works", "literature", "list of works",
}
_RE_GALLERY = re.compile(r"<gallery\b.*?</gallery>", re.S | re.I)
_RE_FILE_LINK = re.compile(r"\[\[\s*(?:file|image|media)\s*:", re.I)
_RE_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1$")
_RE_LIST_MARK = re.compile(r"^[*#:;]+\s*")
_RE_BOLD_ITALIC = re.compile(r"'{2,}")
_RE_EMPTY_PARENS = re.compile(r"\(\s*[,;:]*\s*\)")
_RE_PAREN_JUNK = re.compile(r"\(\s*[,;:]+\s*|\(\s+")  # "(;, Phoibos" -> "(Phoibos"
_RE_SPACE_PUNCT = re.compile(r"\s+([,.;:!?)])")
_RE_COMMAS = re.compile(r",(\s*,)+")
_RE_WS = re.compile(r"\s+")
_RE_PROSE_END = re.compile(r"[.!?\"')]$")
_RE_NOT_PROSE = re.compile(r"^(?:see also|main articles?|further information)\b|\bISBN\b", re.I)


def _strip_balanced(text: str, opening: re.Pattern[str], open_tok: str, close_tok: str) -> str:
    """Remove each match of `opening` up to its balanced `close_tok` (nesting counted)."""
    out, i = [], 0
    while m := opening.search(text, i):
        out.append(text[i:m.start()])
        depth, k = 1, m.end()
        while depth and k < len(text):
            if text.startswith(open_tok, k):
                depth, k = depth + 1, k + len(open_tok)
            elif text.startswith(close_tok, k):
                depth, k = depth - 1, k + len(close_tok)
            else:
                k += 1
        i = k
    out.append(text[i:])
    return "".join(out)


def clean_wiki_article(raw: str) -> list[str]:
    """One article's wikitext -> paragraphs of plain prose (one per line)."""
    from gensim.corpora.wikicorpus import filter_wiki

    raw = _RE_GALLERY.sub("", raw)
    raw = _strip_balanced(raw, re.compile(r"\{\|"), "{|", "|}")  # tables
    raw = _strip_balanced(raw, _RE_FILE_LINK, "[[", "]]")  # images with their captions
    text = filter_wiki(raw)  # gensim: templates, refs, tags, links -> their text
    paragraphs, skip_level = [], 0
    for line in text.split("\n"):
        line = line.strip()
        if heading := _RE_HEADING.match(line):
            level = len(heading.group(1))
            if not (skip_level and level > skip_level):  # a subsection of a dropped one
                skip_level = level if heading.group(2).lower() in _DROP_SECTIONS else 0
            continue
        if skip_level or not line or line[0] in "|!{}":  # table leftovers
            continue
        is_list_item = bool(_RE_LIST_MARK.match(line))
        line = _RE_LIST_MARK.sub("", line)
        line = _RE_BOLD_ITALIC.sub("", line).replace("{{", "").replace("}}", "")
        line = _RE_EMPTY_PARENS.sub("", line)
        line = _RE_PAREN_JUNK.sub("(", line)
        line = _RE_COMMAS.sub(",", line)
        line = _RE_SPACE_PUNCT.sub(r"\1", line)
        line = _RE_WS.sub(" ", line).strip()
        if _RE_NOT_PROSE.search(line):  # hatnotes and book references
            continue
        # keep sentences: end punctuation and a few words (list items need more)
        if len(line.split()) >= (8 if is_list_item else 5) and _RE_PROSE_END.search(line):
            paragraphs.append(line)
    return paragraphs


def wiki_documents(path: Path) -> list[tuple[str, list[str]]]:
    """``(title, paragraphs)`` of each article of a bz2 MediaWiki dump that is not a redirect,
    a disambiguation page or a stub (under 500 characters of prose)."""
    from gensim.corpora.wikicorpus import extract_pages

    documents = []
    with bz2.open(path) as f:
        for title, raw, _pageid in extract_pages(f, filter_namespaces=("0",)):
            if not raw or raw.lstrip().lower().startswith("#redirect"):
                continue
            if title.endswith("(disambiguation)"):
                continue
            paragraphs = clean_wiki_article(raw)
            if sum(map(len, paragraphs)) >= 500:  # drops stubs and lists of links
                documents.append((title, paragraphs))
    return documents


def lee_documents(path: Path) -> list[tuple[str, list[str]]]:
    """One article per line. The file repeats 7 articles verbatim (dropped here) and
    has 3 pairs that share their opening; keying by the first 100 characters keeps
    each pair in one split, so no held-out article is also in train."""
    groups: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line := line.strip():
            group = groups.setdefault(line[:100], [])
            if line not in group:
                group.append(line)
    return list(groups.items())
