"""The concept pages that exist, in reading order: one name ties pages/<name>.py, core/<name>.py,
core/charts/<name>.py and content/<lang>/<name>.toml together. Register a page when it is built;
the navigation, the home page, the tests and the benchmark all read this tuple.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class PageInfo:
    name: str
    icon: str  # a Material Symbols name, as st.Page takes it

    @property
    def path(self) -> str:
        return f"pages/{self.name}.py"

    @property
    def core(self) -> ModuleType:
        return importlib.import_module(f"core.{self.name}")


PAGES: tuple[PageInfo, ...] = (
    PageInfo("loss_scaling", ":material/straighten:"),
    PageInfo("reduction", ":material/calculate:"),
    PageInfo("accumulation", ":material/stacks:"),
    PageInfo("explosion", ":material/trending_up:"),
    PageInfo("multi_objective", ":material/balance:"),
    PageInfo("accuracy_vs_loss", ":material/target:"),
)


def page(name: str) -> PageInfo:
    for info in PAGES:
        if info.name == name:
            return info
    raise ValueError(f"unknown page {name!r}; valid: {', '.join(p.name for p in PAGES)}")
