"""The ``vibe-check`` command line: subcommands are defined (and their stages imported) on demand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vibe_check.cli import COMMANDS, build_parser, main

_LIST_HEAVY_MODULES = """
import sys
from vibe_check.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("heavy:" + ",".join(sorted(m for m in ("sklearn", "scipy.signal", "matplotlib", "librosa", "vibe_check.training._cli")
                      if m in sys.modules)))
"""


def _heavy_modules_after(argv: list[str]) -> str:
    """Run ``main(argv)`` in a fresh interpreter; the heavy modules it imported, comma-separated."""
    out = subprocess.run([sys.executable, "-c", _LIST_HEAVY_MODULES.format(argv=argv)], capture_output=True,
                         text=True, check=True)
    return out.stdout.rsplit("heavy:", 1)[1].strip()


def test_top_level_help_imports_no_stage():
    assert _heavy_modules_after(["--help"]) == ""


def test_a_subcommand_imports_its_own_stage():
    assert "vibe_check.training._cli" in _heavy_modules_after(["-v", "train", "--help"])


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (*_, help_text) in COMMANDS.items():
        assert name in out and help_text in out


def test_an_unknown_command_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        main(["trian"])
    assert "invalid choice: 'trian'" in capsys.readouterr().err


def test_build_parser_defines_every_command_by_default():
    parser = build_parser()
    args = parser.parse_args(["train", "--models", "lda"])
    assert args.command == "train" and args.models == ["lda"]
    with pytest.raises(ValueError, match="unknown command"):
        build_parser(["trian"])


def test_output_piped_into_a_reader_that_stops_early():
    # `vibe-check features --describe | head -1`: the reader leaving is not an error.
    proc = subprocess.run(f'"{sys.executable}" -m vibe_check.cli features --describe | head -1', shell=True,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.startswith("name,group,description")
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
