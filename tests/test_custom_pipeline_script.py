"""Runs the end-to-end script `test_custom_pipeline.py` inside the pytest suite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "test_custom_pipeline.py"


def test_end_to_end_script_passes(capsys):
    spec = importlib.util.spec_from_file_location("e2e_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "all checks passed" in out and "FAIL" not in out
