"""`make e2e`: the UI in headless Chromium. Shares the dagster dev helper of tests/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
