"""``vibe-check explain``: why a trained model heard a given emotion in audio files."""

from __future__ import annotations

import argparse
import json
import sys

from .._argtypes import int_at_least
from ..exceptions import VibeCheckError
from ._words import SPACE_UNITS, format_value

__all__ = ["add_explain_arguments", "run_explain", "format_explanation"]



def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    from ..models._cli import add_model_arguments  # the same model options as predict

    add_model_arguments(parser, verb="explain")
    parser.add_argument("--top", type=int_at_least(1), default=5, help="features listed on each side (default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object per file (JSON Lines), with its "file", as predict --json does')


def _fmt_signed(v: float) -> str:
    return f"{v:+.3f}" if abs(v) >= 0.001 else f"{v:+.1e}"


def format_explanation(result: dict, *, title: str = "") -> str:
    """The explanation dict as a readable text table.

    Examples
    --------
    >>> print(format_explanation(model.explain("clip.wav"), title="clip.wav"))  # doctest: +SKIP
    """
    unit = SPACE_UNITS.get(result["space"], result["space"])
    head = f"{title}: " if title else ""
    lines = [f"{head}{result['predicted']} (p = {result['probability']:.2f}) by {result.get('model') or 'the model'}",
             "  " + ", ".join(f"{c} {p:.2f}" for c, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1])),
             f"  contributions in {unit}: base value {result['base_value']:.3f} + all contributions = {result['output']:.3f}"]
    if result.get("rows", 1) > 1 or result.get("approximate"):
        lines.append(f"  the contributions explain {result['explains']}")
    rows = [("contrib", "feature", "value", "typical [q25, q75]", "group", "in words")]
    for side in ("towards", "away"):
        for item in result[side]:
            unit_s = f" {item['unit']}" if item["unit"] else ""
            rows.append((_fmt_signed(item["contribution"]), item["name"], f"{format_value(item['value'])}{unit_s}",
                         f"{format_value(item['typical'])} [{format_value(item['q25'])}, {format_value(item['q75'])}]",
                         item["group"], f"{item['label']} {item['level']}"))
        if side == "towards":
            rows.append(("", f"-- away from {result['predicted']} --", "", "", "", ""))
    rows.insert(1, ("", f"-- towards {result['predicted']} --", "", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(cell.ljust(w) if i else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))).rstrip())
    lines.append(f"  all other features together: {_fmt_signed(result['rest'])}")
    return "\n".join(lines)


def run_explain(args: argparse.Namespace) -> int:
    from ..models._cli import CommandFailed, audio_inputs, load_model_for_cli, note_too_long
    from ._local import explain_audio  # lazy: keeps `vibe-check --help` fast

    try:
        files, failed = audio_inputs(args, verb="explain")
        model = load_model_for_cli(args)
    except CommandFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    error_types = []
    for path in files:
        try:
            result = explain_audio(model, path, top_k=args.top)
        except VibeCheckError as exc:
            failed += 1
            error_types.append(type(exc).__name__)
            result = {"error": {"type": type(exc).__name__, "message": str(exc)}}
            if not args.json:
                print(f"{path}: error: {exc}", file=sys.stderr)
        if args.json:
            # One line per file whatever their number, as predict --json prints them.
            print(json.dumps({"file": path, **result}), flush=True)
        elif "error" not in result:
            print(format_explanation(result, title=path) + "\n", flush=True)
    note_too_long(error_types, args.max_duration)
    return 1 if failed else 0
