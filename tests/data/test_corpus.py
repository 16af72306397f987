"""Pre-training corpus reader: files, folders, JSONL, the built-in corpus and bad input."""

from __future__ import annotations

import json

import pytest

from workloads.corpus import default_corpus, read_corpus
from workloads.errors import WorkloadError


def test_text_file_is_one_document(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("First line.\nSecond line.\n", encoding="utf-8")
    assert read_corpus(path) == ["First line.\nSecond line.\n"]


def test_folder_reads_txt_sorted(tmp_path):
    (tmp_path / "b.txt").write_text("bee", encoding="utf-8")
    (tmp_path / "a.txt").write_text("ay", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("sea", encoding="utf-8")
    (tmp_path / "notes.md").write_text("skipped", encoding="utf-8")
    assert read_corpus(tmp_path) == ["ay", "bee", "sea"]


def test_jsonl_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    lines = [json.dumps({"body": "one", "id": 1}), "", json.dumps({"body": "two\u2028x"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_corpus(path, field="body") == ["one", "two\u2028x"]


def test_several_paths_keep_order(tmp_path):
    (tmp_path / "x.txt").write_text("x", encoding="utf-8")
    (tmp_path / "y.txt").write_text("y", encoding="utf-8")
    assert read_corpus([tmp_path / "y.txt", str(tmp_path / "x.txt")]) == ["y", "x"]


def test_default_corpus_is_python_docs():
    documents = default_corpus()
    assert len(documents) > 50
    assert sum(map(len, documents)) > 100_000
    assert any("assert" in document for document in documents)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(WorkloadError, match="nothere.txt not found"):
        read_corpus(tmp_path / "nothere.txt")


def test_empty_file_names_path(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("  \n", encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"empty\.txt is empty"):
        read_corpus(path)


def test_folder_without_txt(tmp_path):
    with pytest.raises(WorkloadError, match="contains no .txt files"):
        read_corpus(tmp_path)


def test_not_utf8_names_path(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(WorkloadError, match=r"latin1\.txt is not valid UTF-8"):
        read_corpus(path)


def test_jsonl_bad_line_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{not json\n', encoding="utf-8")
    with pytest.raises(WorkloadError) as error:
        read_corpus(path)
    assert "bad.jsonl line 2 is not valid JSON" in str(error.value)
    assert "one JSON object per line" in str(error.value)


def test_jsonl_missing_field_names_line(tmp_path):
    path = tmp_path / "nofield.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"nofield\.jsonl line 2 has no field 'text'"):
        read_corpus(path)


def test_jsonl_field_not_string(tmp_path):
    path = tmp_path / "number.jsonl"
    path.write_text('{"text": 3}\n', encoding="utf-8")
    with pytest.raises(WorkloadError, match="field 'text' is int, expected a string"):
        read_corpus(path)


def test_shakespeare_and_gutenberg(data_root):
    shakespeare = read_corpus(data_root / "tinyshakespeare" / "input.txt")
    assert len(shakespeare) == 1
    assert len(shakespeare[0]) == 1_115_394
    assert len(set(shakespeare[0])) == 65
    valid = read_corpus(data_root / "gutenberg_fiction" / "valid.txt")
    assert len(valid[0]) == 1_094_354
