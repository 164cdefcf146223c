"""The test run itself: warnings fail it, and the whole suite measures branch coverage against a floor.

Both are configured in pyproject.toml; these tests run pytest on a throwaway test file with that
configuration, so a configuration that stops doing its job fails here.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pytest(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_warning_fails_the_run(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "import warnings\n\ndef test_warns():\n    warnings.warn('left behind', ResourceWarning)\n")
    assert run.returncode == 1, run.stdout
    assert "ResourceWarning: left behind" in run.stdout
    clean = _pytest(tmp_path, "def test_quiet():\n    assert True\n")
    assert clean.returncode == 0, clean.stdout


def test_the_whole_suite_has_a_branch_coverage_floor() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["coverage"]["run"]["branch"] is True
    assert config["tool"]["coverage"]["report"]["fail_under"] >= 93
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "--cov --cov-report=term" in script  # the no-argument run, which CI makes
