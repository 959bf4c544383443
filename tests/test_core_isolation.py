"""DESIGN rule 1: core/ never imports streamlit, so the export and notebooks run without it."""

import pkgutil
import subprocess
import sys

import core
from tests.helpers import ROOT


def test_importing_every_core_module_does_not_import_streamlit():
    modules = [m.name for m in pkgutil.walk_packages(core.__path__, "core.")]
    assert "core.loss_scaling" in modules and "core.charts.loss_scaling" in modules
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    script += "assert 'streamlit' not in sys.modules, sorted(m for m in sys.modules if 'streamlit' in m)\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_core_source_mentions_streamlit_imports():
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import streamlit" not in text and "from streamlit" not in text, path
