"""The words of Gradient Lab, looked up by key from content/<lang>/<page>.toml.

Pages never hold prose: they ask for it by dotted key ("experiments.update.reading") and fill in
live numbers with str.format. Adding a language is adding a folder: a key missing there falls back
to English, and a key missing in English is a KeyError that names the file.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent
DEFAULT_LANG = "en"


@functools.cache
def _load(page: str, lang: str) -> dict[str, Any]:
    path = ROOT / lang / f"{page}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _dig(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]  # "predict.why.2": a list's item
    return node


class Words:
    """One page's words in one language, with English as the fallback."""

    def __init__(self, page: str, lang: str = DEFAULT_LANG):
        self.page, self.lang = page, lang

    def get(self, key: str, default: Any = None) -> Any:
        for lang in dict.fromkeys((self.lang, DEFAULT_LANG)):
            try:
                return _dig(_load(self.page, lang), key)
            except (KeyError, TypeError, IndexError, ValueError):
                continue
        return default

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(f"content/{DEFAULT_LANG}/{self.page}.toml has no key {key!r}")
        return value

    def __call__(self, key: str, /, **values: Any) -> str:
        """The text at key with live numbers filled in: words("reading", ratio=0.1)."""
        return self[key].format(**values)


def words(page: str, lang: str = DEFAULT_LANG) -> Words:
    return Words(page, lang)
