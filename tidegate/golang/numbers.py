"""Go's ``json.Number`` as a Python float that remembers its literal.

A module of its own: the JSON codec is compiled with mypyc, and a compiled class cannot
subclass ``float``; this one stays an ordinary Python class.
"""

from __future__ import annotations


class GoNumber(float):
    """A backend number kept as its literal text, as Go's ``json.Number`` (``1.50`` stays so)."""

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, literal: str) -> GoNumber:
        obj = float.__new__(cls, literal)
        obj.literal = literal
        return obj

    def __repr__(self) -> str:
        return f"GoNumber({self.literal!r})"

    def __reduce__(self) -> tuple[type[GoNumber], tuple[str]]:
        return (GoNumber, (self.literal,))
