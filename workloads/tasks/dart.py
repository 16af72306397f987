"""Reader for DART v1.1.1: the JSON release and its WebNLG-layout XML."""

from __future__ import annotations

import json
from pathlib import Path

from workloads.errors import WorkloadError
from workloads.tasks.example import Example, linearise_triples
from workloads.tasks.webnlg import read_webnlg

EXPECTED_JSON = ("expected DART JSON: a list of records, each with 'tripleset' (a list of "
                 "[subject, relation, object]) and 'annotations' (a list of {'text': ...})")


def read_dart(path: str | Path) -> list[Example]:
    """Read a DART ``.json`` file or a DART ``.xml`` file (WebNLG layout)."""
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"DART file {path} not found: give a .json or .xml file")
    if path.suffix.lower() == ".xml":
        return read_webnlg(path)

    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise WorkloadError(f"DART file {path} is not valid UTF-8 JSON ({error}): "
                            f"{EXPECTED_JSON}") from None
    if not isinstance(records, list) or not records:
        raise WorkloadError(f"DART file {path} contains a {type(records).__name__}, not a "
                            f"non-empty list: {EXPECTED_JSON}")
    return [_read_record(path, index, record) for index, record in enumerate(records)]


def _read_record(path: Path, index: int, record) -> Example:
    where = f"DART file {path} record {index}"
    if not isinstance(record, dict):
        raise WorkloadError(f"{where} is a {type(record).__name__}: {EXPECTED_JSON}")
    triples = record.get("tripleset")
    annotations = record.get("annotations")
    if not isinstance(triples, list) or not triples:
        raise WorkloadError(f"{where} has no 'tripleset' list: {EXPECTED_JSON}")
    if not isinstance(annotations, list) or not annotations:
        raise WorkloadError(f"{where} has no 'annotations' list: {EXPECTED_JSON}")

    for triple in triples:
        if not (isinstance(triple, list) and len(triple) == 3
                and all(isinstance(part, str) for part in triple)):
            raise WorkloadError(f"{where} has triple {triple!r}: expected a list of three "
                                f"strings [subject, relation, object]")
    references = []
    for annotation in annotations:
        text = annotation.get("text") if isinstance(annotation, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise WorkloadError(f"{where} has annotation {annotation!r}: expected an object "
                                f"with a non-empty string 'text'")
        references.append(text.strip())
    return Example(linearise_triples(triples), tuple(references))
