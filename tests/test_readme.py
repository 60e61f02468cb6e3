"""The README's two set-up commands stay true: CI runs the same test command."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- setup -->\s*```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert block, "README.md lost its <!-- setup --> block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = _setup_commands()
    assert "genseq train folk-abc" in main_job and "genseq sample" in main_job
    test_command = tests.split("&&", 2)[-1].strip()
    assert "pytest" in test_command
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci


def test_readme_names_every_command():
    from genseq.commands.main import COMMANDS, GROUPS

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in [*COMMANDS, *GROUPS]:
        assert f"genseq {name}" in readme, name
