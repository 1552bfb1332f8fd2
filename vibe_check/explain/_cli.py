"""``vibe-check explain``: why a trained model heard a given emotion in audio files."""

from __future__ import annotations

import argparse
import json
import sys

from ..exceptions import VibeCheckError
from ._words import format_value

__all__ = ["add_explain_arguments", "run_explain", "format_explanation"]


def add_explain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="bundle (.pkl or .skops) to explain")
    parser.add_argument("files", nargs="+", help="audio file(s), or folders: every audio file under them")
    parser.add_argument("--top", type=int, default=5, help="features listed on each side (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the explanations as JSON")


def _fmt_signed(v: float) -> str:
    return f"{v:+.3f}" if abs(v) >= 0.001 else f"{v:+.1e}"


def format_explanation(result: dict, *, title: str = "") -> str:
    """The explanation dict as a readable text table.

    Examples
    --------
    >>> print(format_explanation(model.explain("clip.wav"), title="clip.wav"))  # doctest: +SKIP
    """
    unit = "probability points" if result["space"] == "probability" else "log-odds"
    head = f"{title}: " if title else ""
    lines = [f"{head}{result['predicted']} (p = {result['probability']:.2f}) by {result.get('model') or 'the model'}",
             "  " + ", ".join(f"{c} {p:.2f}" for c, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1])),
             f"  contributions in {unit}: base value {result['base_value']:.3f} + all contributions = {result['output']:.3f}"]
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
    from ..data import expand_audio_paths
    from ..models import CustomEmotionModel  # lazy: keeps `vibe-check --help` fast
    from ..models._cli import note_generated_speech
    from ._local import explain_audio

    if args.top < 1:
        print("error: --top must be at least 1", file=sys.stderr)
        return 2
    try:
        model = CustomEmotionModel(args.model)
    except VibeCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    note_generated_speech(model, args.model)
    files, empty = expand_audio_paths(args.files)
    for problem in empty:
        print(f"error: {problem}", file=sys.stderr)
    results, failed = {}, len(empty)
    for path in files:
        try:
            results[path] = explain_audio(model, path, top_k=args.top)
        except VibeCheckError as exc:
            failed += 1
            results[path] = {"error": {"type": type(exc).__name__, "message": str(exc)}}
            if not args.json:
                print(f"{path}: error: {exc}", file=sys.stderr)
            continue
        if not args.json:
            print(format_explanation(results[path], title=path) + "\n")
    if args.json:
        print(json.dumps(results if len(files) != 1 else results[files[0]], indent=2))
    return 1 if failed else 0
