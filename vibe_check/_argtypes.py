"""argparse value types shared by the ``vibe-check`` subcommands: a bad value is a usage error
(exit 2) before any work starts."""

from __future__ import annotations

import argparse
from typing import Callable

__all__ = ["int_at_least", "positive_seconds"]


def int_at_least(minimum: int, why: str = "") -> Callable[[str], int]:
    """An argparse ``type`` for a whole number of at least ``minimum``; ``why`` words the refusal.

    Examples
    --------
    >>> int_at_least(2, "cross-validation needs at least 2 folds")("5")
    5
    >>> int_at_least(1)("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be at least 1, not 0
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{why or f'must be at least {minimum}'}, not {value}")
        return value
    return parse


def positive_seconds(text: str) -> float:
    """An argparse ``type`` for a positive number of seconds.

    Examples
    --------
    >>> positive_seconds("12.5")
    12.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value
