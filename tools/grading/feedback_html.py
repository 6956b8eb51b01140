"""The feedback page: nbconvert's HTML export of a feedback notebook, the same page as
`HTMLExporter` makes, with its two costliest filters remembered from one submission to the next.

Every submission of a class repeats the notebook's published cells, and nbconvert highlights
each code cell with pygments and then cleans the highlighted HTML with bleach: about a third of
the export (0.5 s for notebook 1's feedback on the course's machine). Both filters are pure
functions of their text, so a cell the last submission also had is taken from the cache.

    >>> page, _ = FeedbackExporter().from_notebook_node(feedback_nb)
"""
from __future__ import annotations

import functools
import json

from nbconvert import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.strings import clean_html

CACHED_CELLS = 8192  # highlighted cells and cleaned fragments kept, each (a few kB)


@functools.lru_cache(maxsize=CACHED_CELLS)
def _clean_html(html: str) -> str:
    return clean_html(html)


class _Highlighter:
    """nbconvert's `highlight_code` filter for the notebook being exported (its lexer comes
    from the notebook's metadata), remembered by lexer, source, language and cell metadata."""

    def __init__(self, parent: HTMLExporter):
        self.parent = parent
        self.lexer: str | None = None
        self._by_lexer: dict[str | None, Highlight2HTML] = {}
        self._cached = functools.lru_cache(maxsize=CACHED_CELLS)(self._highlight)

    def _highlight(self, lexer, source, language, metadata_json):
        if lexer not in self._by_lexer:
            self._by_lexer[lexer] = Highlight2HTML(pygments_lexer=lexer, parent=self.parent)
        metadata = json.loads(metadata_json) if metadata_json is not None else None
        return self._by_lexer[lexer](source, language, metadata)

    def __call__(self, source, language=None, metadata=None):
        key = None if metadata is None else json.dumps(metadata, sort_keys=True, default=str)
        return self._cached(self.lexer, source, language, key)


class FeedbackExporter(HTMLExporter):
    """`HTMLExporter` with the highlighting and the cleaning of code cells remembered."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._highlighter = _Highlighter(self)
        self.filters = {**self.filters, "highlight_code": self._highlighter}

    def default_filters(self):
        for name, jinja_filter in super().default_filters():
            yield name, _clean_html if name == "clean_html" else jinja_filter

    def from_notebook_node(self, nb, resources=None, **kw):
        info = nb.metadata.get("language_info", {})
        self._highlighter.lexer = info.get("pygments_lexer", info.get("name", None))
        return super().from_notebook_node(nb, resources, **kw)
