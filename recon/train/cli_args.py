"""Argument parsing shared by the ``recon`` command line and ``recon train`` / ``python -m recon.train``.

* :class:`OneLineParser`: an :class:`argparse.ArgumentParser` whose usage errors are one line on
  stderr, ``<prog>: error: <message> (see '<prog> --help')``, with exit status 2 (argparse's
  default prints the whole usage block first).
* :class:`NumberList`: the one list syntax of ``--accelerations`` and ``--center-fractions``:
  ``4 8``, ``4,8`` and ``4, 8`` all give ``[4.0, 8.0]``; every number is checked against the
  option's bounds (finite, ``>= 1`` for accelerations, in ``[0, 1]`` for fractions) and a bad
  one is reported naming the option.

Example:
    >>> parser = OneLineParser(prog="demo")
    >>> _ = parser.add_argument("--accelerations", action=NumberList, low=1.0)
    >>> parser.parse_args(["--accelerations", "4,8"]).accelerations
    [4.0, 8.0]
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Callable, NoReturn, Sequence

__all__ = ["OneLineParser", "NumberList", "parse_numbers", "number_type", "print_error"]


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are a single line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


def parse_numbers(text: str) -> list[float]:
    """``"4,8"`` / ``"4 8"`` / ``"4, 8"`` -> ``[4.0, 8.0]``.

    Raises:
        ValueError: an empty list or an item that is not a number.
    """
    items = [item for item in str(text).replace(",", " ").split() if item]
    if not items:
        raise ValueError(f"expected numbers such as 4,8 or '4 8', got {text!r}")
    values = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(f"expected numbers such as 4,8 or '4 8', got {item!r}") from None
    return values


class NumberList(argparse.Action):
    """``nargs='+'`` action collecting numbers written with spaces and/or commas, with bounds.

    Args (to ``add_argument``, besides argparse's own):
        low: smallest allowed value (inclusive), or None.
        high: largest allowed value (inclusive), or None.

    Non-finite values (``inf``, ``nan``) are always refused.
    """

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        nargs: Any = "+",
        low: float | None = None,
        high: float | None = None,
        **kwargs: Any,
    ) -> None:
        if nargs != "+":
            raise ValueError("NumberList takes nargs='+' (the default)")
        kwargs.setdefault("metavar", "N")
        super().__init__(option_strings, dest, nargs="+", **kwargs)
        self.low, self.high = low, high

    def _bounds(self) -> str:
        if self.low is not None and self.high is not None:
            return f"finite numbers in [{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f"finite numbers >= {self.low:g}"
        if self.high is not None:
            return f"finite numbers <= {self.high:g}"
        return "finite numbers"

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        numbers: list[float] = []
        for text in values if isinstance(values, (list, tuple)) else [values]:
            try:
                numbers.extend(parse_numbers(text))
            except ValueError as err:
                raise argparse.ArgumentError(self, str(err)) from None
        bad = [
            v for v in numbers
            if not math.isfinite(v)
            or (self.low is not None and v < self.low)
            or (self.high is not None and v > self.high)
        ]
        if bad:
            shown = ", ".join(f"{v:g}" for v in bad)
            raise argparse.ArgumentError(self, f"expected {self._bounds()}, got {shown}")
        setattr(namespace, self.dest, numbers)


def number_type(kind: type = float, *, minimum: float | None = None, greater_than: float | None = None) -> Callable[[str], Any]:
    """An argparse ``type=`` for one finite number of ``kind`` (``int`` or ``float``) with a bound.

    Example:
        >>> positive_int = number_type(int, minimum=1)
        >>> positive_int("3")
        3
    """
    noun = "an integer" if kind is int else "a number"
    if greater_than is not None:
        expect = f"{noun} > {greater_than:g}"
    elif minimum is not None:
        expect = f"{noun} >= {minimum:g}"
    else:
        expect = noun if kind is int else "a finite number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}") from None
        if (
            not math.isfinite(value)
            or (minimum is not None and value < minimum)
            or (greater_than is not None and value <= greater_than)
        ):
            raise argparse.ArgumentTypeError(f"expected {expect}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__}_number"
    return parse


def print_error(prog: str, message: object, stream=None) -> None:
    """Print ``<prog>: error: <message>`` as one line (whitespace, newlines collapsed)."""
    text = " ".join(str(message).split()) or "error"
    if len(text) > 600:
        text = text[:597] + "..."
    print(f"{prog}: error: {text}", file=stream or sys.stderr)
