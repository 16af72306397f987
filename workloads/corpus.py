"""Pre-training text: read documents from text files, folders and JSONL files.

A document is one string. A plain-text file is one document, a folder gives one
document per ``.txt`` file inside it, and a JSONL file gives one document per
line. ``default_corpus`` needs no download: it is the Python documentation text
that ships with CPython.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from workloads.errors import WorkloadError

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_corpus(paths: str | Path | Iterable[str | Path], field: str = "text") -> list[str]:
    """Read every document in ``paths``, in the order given.

    Each path is a folder (every ``*.txt`` below it, sorted by path), a JSONL
    file (``.jsonl`` or ``.ndjson``, the string ``field`` of each line) or any
    other file, read as one UTF-8 plain-text document.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    documents: list[str] = []
    for path in map(Path, paths):
        documents.extend(_read_path(path, field))
    return documents


def default_corpus() -> list[str]:
    """Return the CPython documentation topics (``pydoc_data.topics``), one document each.

    About 465,000 characters in 79 topics on CPython 3.11; the text differs between
    Python versions, so record the version with any result trained on it.
    """
    from pydoc_data.topics import topics

    return [topics[name] for name in sorted(topics)]


def _read_path(path: Path, field: str) -> list[str]:
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise WorkloadError(f"corpus folder {path} contains no .txt files: expected "
                                f"one or more UTF-8 text files")
        return [_read_text(file) for file in files]
    if not path.is_file():
        raise WorkloadError(f"corpus file {path} not found: give a .txt file, a .jsonl "
                            f"file or a folder of .txt files")
    if path.suffix.lower() in JSONL_SUFFIXES:
        return _read_jsonl(path, field)
    return [_read_text(path)]


def _decode(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise WorkloadError(f"corpus file {path} is not valid UTF-8 (byte {error.start}): "
                            f"expected UTF-8 text") from None


def _read_text(path: Path) -> str:
    text = _decode(path)
    if not text.strip():
        raise WorkloadError(f"corpus file {path} is empty: expected text to train on")
    return text


def _read_jsonl(path: Path, field: str) -> list[str]:
    documents = []
    for line_number, line in enumerate(_decode(path).split("\n"), start=1):
        if line.strip():
            documents.append(_jsonl_document(path, line_number, line, field))
    if not documents:
        raise WorkloadError(f"corpus file {path} is empty: expected one JSON object per "
                            f"line with a string field {field!r}")
    return documents


def _jsonl_document(path: Path, line_number: int, line: str, field: str) -> str:
    where = f"corpus file {path} line {line_number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise WorkloadError(f"{where} is not valid JSON ({error.msg}): expected one JSON "
                            f"object per line with a string field {field!r}") from None
    if not isinstance(record, dict) or field not in record:
        raise WorkloadError(f"{where} has no field {field!r}: expected a JSON object with "
                            f"the document text in {field!r}")
    text = record[field]
    if not isinstance(text, str):
        raise WorkloadError(f"{where}: field {field!r} is {type(text).__name__}, expected "
                            f"a string")
    return text
