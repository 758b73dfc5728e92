"""A Sphinx extension of this book: every script appears once in a page.

Under Jupyter Book, sphinx-thebe and sphinx-togglebutton register their inline configuration
scripts twice (once with no file name, once with an empty one), and the second
``const THEBE_JS_URL = ...`` is a JavaScript error in the console of every page. This drops repeated
entries (the same file, or the same inline body, with the same attributes) from the page's script
list, keeping the first.
"""

from __future__ import annotations

from typing import Any


def _unique_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items()))
        key = (getattr(script, "filename", None) or "", attributes)  # None and "" both mean inline
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict:
    app.connect("html-page-context", _unique_scripts, priority=900)  # after the extensions that add scripts
    return {"parallel_read_safe": True, "parallel_write_safe": True}
