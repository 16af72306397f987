"""Reader for WebNLG-layout XML: WebNLG release 3.0, the 2017 challenge and DART's XML.

Each file has ``<benchmark><entries><entry>`` elements. An entry's input is its
``<modifiedtripleset>`` (``<mtriple>`` texts ``subject | property | object``) and
every non-empty ``<lex>`` text is a reference. Empty ``<lex/>`` elements are
skipped with a warning, because DART's test XML has one.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

from workloads.errors import WorkloadError
from workloads.tasks.example import Example, linearise_triples

logger = logging.getLogger(__name__)

EXPECTED_LAYOUT = ("expected WebNLG XML: <benchmark><entries><entry> with one "
                   "<modifiedtripleset> of <mtriple> and one or more <lex>")


def read_webnlg(path: str | Path) -> list[Example]:
    """Read one WebNLG-layout XML file, or every ``*.xml`` below a folder (sorted by path)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.xml"))
        if not files:
            raise WorkloadError(f"folder {path} contains no .xml files: {EXPECTED_LAYOUT}")
        return [example for file in files for example in _read_file(file)]
    if not path.is_file():
        raise WorkloadError(f"WebNLG file {path} not found: give an XML file or a folder "
                            f"of XML files")
    return _read_file(path)


def _read_file(path: Path) -> list[Example]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        line, column = error.position
        raise WorkloadError(f"XML file {path} is not well-formed at line {line}, column "
                            f"{column}: {EXPECTED_LAYOUT}") from None
    entries = root.findall("./entries/entry")
    if root.tag != "benchmark" or not entries:
        raise WorkloadError(f"XML file {path} has no <entry> under <benchmark><entries> "
                            f"(root is <{root.tag}>): {EXPECTED_LAYOUT}")
    examples = [_read_entry(path, number, entry) for number, entry in enumerate(entries, start=1)]
    empty = sum(1 for entry in entries for lex in entry.findall("lex") if not _lex_text(lex))
    if empty:
        logger.warning("XML file %s: skipped %d empty <lex> element(s)", path, empty)
    return examples


def _read_entry(path: Path, number: int, entry: ET.Element) -> Example:
    where = f"XML file {path} entry {number} (eid {entry.get('eid', '?')})"
    tripleset = entry.find("modifiedtripleset")
    if tripleset is None:
        raise WorkloadError(f"{where} has no <modifiedtripleset>: {EXPECTED_LAYOUT}")
    triples = [_split_triple(where, mtriple.text or "") for mtriple in tripleset.findall("mtriple")]
    if not triples:
        raise WorkloadError(f"{where} has an empty <modifiedtripleset>: {EXPECTED_LAYOUT}")

    references = tuple(text for text in map(_lex_text, entry.findall("lex")) if text)
    if not references:
        raise WorkloadError(f"{where} has no non-empty <lex> reference: {EXPECTED_LAYOUT}")
    return Example(linearise_triples(triples), references)


def _lex_text(lex: ET.Element) -> str:
    return (lex.text or "").strip()


def _split_triple(where: str, text: str) -> tuple[str, str, str]:
    parts = text.split(" | ")
    if len(parts) != 3:
        raise WorkloadError(f"{where} has <mtriple> {text!r} with {len(parts)} parts: "
                            f"expected 'subject | property | object'")
    return parts[0], parts[1], parts[2]
