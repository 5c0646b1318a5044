"""The CLI's leaves never import the root app: the root joins them, so there is no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import shelfcast.cli

CLI = Path(shelfcast.cli.__file__).parent


def test_no_leaf_of_the_cli_imports_the_root() -> None:
    leaves = [p for p in CLI.glob("*.py") if p.name != "__init__.py"]
    assert len(leaves) >= 8
    offenders = []
    for leaf in leaves:
        for node in ast.walk(ast.parse(leaf.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "shelfcast.cli":
                offenders.append(leaf.name)
            if isinstance(node, ast.Import) and any(a.name == "shelfcast.cli" for a in node.names):
                offenders.append(leaf.name)
    assert offenders == []
