import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("GRADIENT_LAB_WARM", "0")  # no background warming of the cache while tests run
# AppTest runs pages in this process, experiments too; tests/test_workers.py and the browser tests (a real
# server) hold the worker processes to the same results
os.environ.setdefault("GRADIENT_LAB_WORKERS", "0")
os.chdir(ROOT)  # AppTest resolves streamlit_app.py and pages/ against the working directory
sys.path.insert(0, str(ROOT))
logging.getLogger("streamlit").setLevel(logging.ERROR)

from hypothesis import HealthCheck, settings  # noqa: E402

# One fixed profile for `make test` and CI: a bounded number of examples per property (each example runs real
# experiments), derandomized so that a red run is the same red run on every machine. HYPOTHESIS_PROFILE=deep
# explores further on a developer's machine.
settings.register_profile("ci", max_examples=10, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("deep", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
