"""One input of a data-to-text task with all of its reference texts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """A linearised input (``source``) and every human reference for it, in file order."""

    source: str
    references: tuple[str, ...]


# Separator between linearised triples. It never occurs inside a WebNLG or DART
# triple, so a model can tell where one triple ends.
TRIPLE_SEPARATOR = " && "


def linearise_triples(triples: list[tuple[str, str, str]]) -> str:
    """Join ``(subject, property, object)`` triples as ``"s | p | o && s | p | o"``."""
    return TRIPLE_SEPARATOR.join(" | ".join(part.strip() for part in triple) for triple in triples)
