"""One Altair converter for the whole process, instead of one per encoding channel.

`SchemaBase.from_dict` (altair 6) builds a new `_FromDict` converter on every call, and building one hashes the
JSON schema of each of Altair's ~600 wrapper classes (a json.dumps each). `encode()` calls it for every channel
given as a string or a dict ("x:Q", a tooltip list), so a chart of five layers with tooltips paid for some
25,000 json.dumps of the same schemas: 40% of the time the app spent turning a DataFrame into a Vega-Lite spec.

The classes never change once Altair is imported, so the converter is made once (lazily, under a lock) and
reused. Everything else `from_dict` does is left as it is: its validation, and the conversion itself. A test
builds every figure's spec with and without this and requires the two to be equal.
"""

from __future__ import annotations

import threading
from typing import Any

from altair.utils import schemapi

_original = schemapi.SchemaBase.from_dict.__func__
_converters: dict[type, Any] = {}
_lock = threading.Lock()


def _converter(cls: type) -> Any:
    """The _FromDict of cls's wrapper classes (for every Altair class: all SchemaBase subclasses), made once."""
    found = _converters.get(cls._default_wrapper_classes.__func__)  # type: ignore[attr-defined]
    if found is None:
        with _lock:
            key = cls._default_wrapper_classes.__func__  # type: ignore[attr-defined]
            found = _converters.get(key)
            if found is None:
                found = _converters[key] = schemapi._FromDict(cls._default_wrapper_classes())
    return found


def from_dict(cls, dct: dict[str, Any], validate: bool = True):
    """SchemaBase.from_dict with its converter made once."""
    if validate:
        cls.validate(dct)
    return _converter(cls).from_dict(dct, cls)


def install() -> None:
    """Replace SchemaBase.from_dict (idempotent)."""
    if schemapi.SchemaBase.from_dict.__func__ is not from_dict:
        schemapi.SchemaBase.from_dict = classmethod(from_dict)


def uninstall() -> None:
    """Put Altair's own from_dict back (the test compares the two)."""
    schemapi.SchemaBase.from_dict = classmethod(_original)


install()
