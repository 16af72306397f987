"""Reader for the E2E NLG Challenge CSV files (columns ``mr`` and ``ref``)."""

from __future__ import annotations

import csv
from pathlib import Path

from workloads.errors import WorkloadError
from workloads.tasks.example import Example

E2E_COLUMNS = ("mr", "ref")


def read_e2e(path: str | Path) -> list[Example]:
    """Read an E2E CSV file: one Example per distinct meaning representation.

    Rows that share an ``mr`` become one Example whose references keep the row
    order. Examples are in order of each ``mr``'s first row.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkloadError(f"E2E file {path} not found: expected a CSV file with columns "
                            f"'mr' and 'ref'")
    references: dict[str, list[str]] = {}
    # newline="" lets the csv module keep line breaks quoted inside a reference.
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        _check_header(path, reader.fieldnames)
        for row in reader:
            mr, ref = _row_fields(path, reader.line_num, row)
            references.setdefault(mr, []).append(ref)
    if not references:
        raise WorkloadError(f"E2E file {path} has a header but no data rows: expected one "
                            f"row per (mr, ref) pair")
    return [Example(mr, tuple(refs)) for mr, refs in references.items()]


def _check_header(path: Path, fieldnames: list[str] | None) -> None:
    if fieldnames is None:
        raise WorkloadError(f"E2E file {path} is empty: expected a CSV header 'mr,ref' and "
                            f"one row per (mr, ref) pair")
    missing = [column for column in E2E_COLUMNS if column not in fieldnames]
    if missing:
        raise WorkloadError(f"E2E file {path} has columns {fieldnames}, missing "
                            f"{missing}: expected a CSV header with columns 'mr' and 'ref'")


def _row_fields(path: Path, line_number: int, row: dict) -> tuple[str, str]:
    mr, ref = row.get("mr"), row.get("ref")
    if not mr or ref is None or not ref.strip():
        raise WorkloadError(f"E2E file {path} row ending on line {line_number} has an empty "
                            f"or missing 'mr' or 'ref': expected both fields filled")
    return mr, ref
