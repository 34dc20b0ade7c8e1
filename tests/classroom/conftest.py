"""The classroom tests need root (they create Unix users), JupyterHub (the `classroom` extra) and
configurable-http-proxy (npm); `make test-classroom` installs both and sets
DLCOURSE_CLASSROOM_TESTS=1. Without it (as in `make test`) every test in this folder is skipped.
"""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ENABLED = os.environ.get("DLCOURSE_CLASSROOM_TESTS") == "1"
sys.path.insert(0, str(HERE.parent))  # tests/_exchange_work.py, shared with test_exchange.py


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="classroom test: run it with `make test-classroom`")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(skip)
