"""Altair, faster where it repeats itself, with the same specs: what a worker spends building charts for a class.

One converter for the whole process, instead of one per encoding channel.

`SchemaBase.from_dict` (altair 6) builds a new `_FromDict` converter on every call, and building one hashes the
JSON schema of each of Altair's ~600 wrapper classes (a json.dumps each). `encode()` calls it for every channel
given as a string or a dict ("x:Q", a tooltip list), so a chart of five layers with tooltips paid for some
25,000 json.dumps of the same schemas: 40% of the time the app spent turning a DataFrame into a Vega-Lite spec.

The classes never change once Altair is imported, so the converter is made once (lazily, under a lock) and
reused. Everything else `from_dict` does is left as it is: its validation, and the conversion itself. A test
builds every figure's spec with and without this and requires the two to be equal.

A deep copy that does not run each object's __init__ again. Altair copies a chart whenever it is layered or given
properties, and its `_deep_copy` looked up `__deepcopy__` through each object's `__getattr__` (an exception each
time), entered a context manager and re-ran `__init__` with every Undefined keyword for every schema object it met:
some 30% of the time spent building a chart. Here the copy holds the same arguments, copied the same way.

A DataFrame's rows as Altair writes them into a spec (`to_values`), made column by column from NumPy instead of
through `sanitize_pandas_dataframe`, which copied the frame and ran several pandas operations per column: a third
of the time spent building a chart, for frames of a few rows as much as for large ones. Columns of the plain
kinds (floats, integers, booleans, strings, categories of strings) give the same Python values Altair's path
gives (floats as floats with NaN and infinities as None, integers as ints); a frame with any other column goes
to Altair's own. A test compares both on every figure and on frames of every kind.

A layered chart's hash of its parts without printing their data. Altair names each layer of a LayerChart by a hash
of its mark, encoding and data, and for a DataFrame it hashed `str(frame)`: pandas formatting the whole table as
text, once per layer, 8% of the time spent building a chart. The name is used only by a chart with parameters
(selections), which no figure here has, and then only as a unique, stable name: a digest of the frame's values,
index and columns serves the same.

Validation while a chart is built, in worker processes only (`unchecked`). Altair checks each schema object
against the JSON schema when it is made and each property when it is set; the workers build specs that are never
validated as a whole either (core.worker.chart_spec: `validate=False`), because the tests and the export validate
every figure's spec at every preset. A worker runs one job at a time, so the switch is that process's alone; the
server's own process, AppTest and the export keep Altair's checks.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from typing import Any

import narwhals.stable.v1 as nw
import numpy as np
import pandas as pd
from altair.utils import schemapi
from altair.utils.schemapi import SchemaBase, Undefined
from altair.vegalite import data as vegalite_data
from altair.vegalite.v6 import api as vegalite_api

_original = schemapi.SchemaBase.from_dict.__func__
_original_deep_copy = schemapi._deep_copy
_original_validate_property = schemapi.SchemaBase.validate_property.__func__
_original_to_values = vegalite_data.to_values
_original_compute_hash = vegalite_api.Chart._compute_hash
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


def _deep_copy(obj: Any, by_ref: set[str]) -> Any:
    """schemapi._deep_copy's result (keys in by_ref kept by reference), without re-running __init__."""
    if isinstance(obj, SchemaBase):
        if getattr(type(obj), "__deepcopy__", None) is not None:  # a class's own deep copy, as Altair calls it
            return obj.__deepcopy__(obj)
        new = object.__new__(type(obj))
        object.__setattr__(new, "_args", tuple(_deep_copy(arg, by_ref) for arg in obj._args))
        object.__setattr__(new, "_kwds", {k: v if k in by_ref or v is Undefined else _deep_copy(v, by_ref)
                                          for k, v in obj._kwds.items()})
        return new
    if isinstance(obj, list):
        return [_deep_copy(v, by_ref) for v in obj]
    if isinstance(obj, dict):
        return {k: v if k in by_ref else _deep_copy(v, by_ref) for k, v in obj.items()}
    return obj


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _column(series: pd.Series) -> list | None:
    """The column's values as Altair's sanitizer leaves them, or None for a kind it treats otherwise."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        values = series.to_numpy()
        finite = np.isfinite(values)
        out = values.tolist()
        return out if finite.all() else [v if ok else None for v, ok in zip(out, finite.tolist(), strict=True)]
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return series.to_numpy().tolist()
    if (isinstance(dtype, np.dtype) and dtype.kind == "O") or str(dtype) in ("str", "string", "category"):
        # Altair's own steps for text (its NaN-or-None outcome depends on pandas' `where`, so it is kept)
        text = series.astype(object)
        if not all(isinstance(v, str) or _missing(v) for v in text.tolist()):
            return None
        return text.where(text.notnull(), None).tolist()
    return None


def to_values(data: Any) -> dict[str, Any]:
    """altair's to_values: the same rows, made faster for a pandas DataFrame of plain columns."""
    frame = nw.to_native(data, pass_through=True)  # Altair hands the frame over wrapped by narwhals
    if type(frame) is pd.DataFrame and not isinstance(frame.columns, pd.MultiIndex | pd.RangeIndex) \
            and not isinstance(frame.index, pd.MultiIndex) and all(isinstance(c, str) for c in frame.columns) \
            and frame.columns.is_unique:
        columns = [_column(frame[name]) for name in frame.columns]
        if all(column is not None for column in columns):
            names = list(frame.columns)
            return {"values": [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
                    if names else [{} for _ in range(len(frame))]}
    return _original_to_values(data)


def compute_hash(self) -> str:
    """Chart._compute_hash (altair 6), a DataFrame's part of it a digest of its contents instead of its text."""
    data = getattr(self, "data", None)
    if self._kwds.get("_cached_hash") is not None or type(data) is not pd.DataFrame:
        return _original_compute_hash(self)
    digest = hashlib.sha256(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    digest.update(repr((list(data.columns), [str(t) for t in data.dtypes])).encode())
    hash_data = {"class": type(self).__name__, "mark": getattr(self, "mark", None),
                 "encoding": getattr(self, "encoding", None), "data": digest.hexdigest(),
                 "transform": getattr(self, "transform", None)}
    return "view_" + hashlib.sha256(json.dumps(hash_data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def install() -> None:
    """Replace SchemaBase.from_dict, the deep copy, the rows of a DataFrame and a layer's hash (idempotent)."""
    if schemapi.SchemaBase.from_dict.__func__ is not from_dict:
        schemapi.SchemaBase.from_dict = classmethod(from_dict)
    schemapi._deep_copy = _deep_copy
    vegalite_data.to_values = to_values
    vegalite_api.Chart._compute_hash = compute_hash


def uninstall() -> None:
    """Put Altair's own from_dict, deep copy, rows and hash back (the test compares the two)."""
    schemapi.SchemaBase.from_dict = classmethod(_original)
    schemapi._deep_copy = _original_deep_copy
    vegalite_data.to_values = _original_to_values
    vegalite_api.Chart._compute_hash = _original_compute_hash


def _no_check(cls, name: str, value: Any, schema: dict[str, Any] | None = None) -> None:
    return None


def unchecked() -> None:
    """In a worker process: no JSON-schema check of each object as it is made, nor of each property as it is set."""
    schemapi.DEBUG_MODE = False
    schemapi.SchemaBase.validate_property = classmethod(_no_check)


def checked() -> None:
    """Altair's own checks again (the tests compare specs built both ways)."""
    schemapi.DEBUG_MODE = True
    schemapi.SchemaBase.validate_property = classmethod(_original_validate_property)


install()
