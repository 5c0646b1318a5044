"""Starting the command line imports none of the heavy libraries only some commands need.

Every command pays for what `import shelfcast.cli` imports: the models'
engines, scipy (drift tests), MLflow, the service and the flows are imported
by the commands that use them, when they run.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "sklearn", "pandas", "lightgbm", "xgboost", "mlflow", "fastapi", "uvicorn", "prefect", "duckdb")


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    code = f"import sys, shelfcast.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
