"""Task readers on the real E2E, WebNLG and DART files, and on wrong-shape files."""

from __future__ import annotations

import pytest

from workloads.errors import WorkloadError
from workloads.tasks import Example, load_task, read_dart, read_e2e, read_webnlg

# (task, split, examples, references), from the data folders' README record counts.
RECORD_COUNTS = [
    ("e2e", "train", 4_862, 42_061),
    ("e2e", "dev", 547, 4_672),
    ("e2e", "test", 630, 4_693),
    ("webnlg", "train", 6_940, 18_102),
    ("webnlg", "dev", 872, 2_268),
    ("webnlg", "test", 1_862, 4_928),
    ("webnlg", "test-unseen", 891, 2_433),
    ("webnlg-v3", "train", 13_211, 35_426),
    ("webnlg-v3", "dev", 1_667, 4_464),
    ("webnlg-v3", "test", 1_779, 5_150),
    ("dart", "dev", 2_768, 6_980),
    # The README lists 12,552 <lex> elements; one of them is empty and is skipped.
    ("dart", "test", 5_097, 12_551),
]


@pytest.mark.parametrize("task,split,examples,references", RECORD_COUNTS)
def test_record_counts(data_root, task, split, examples, references):
    loaded = load_task(task, split, data_root)
    assert len(loaded) == examples
    assert sum(len(example.references) for example in loaded) == references
    assert all(example.source and example.references for example in loaded)


def test_e2e_groups_references_in_order(data_root):
    first = load_task("e2e", "test", data_root)[0]
    assert first.source == "name[Blue Spice], eatType[coffee shop], area[city centre]"
    assert first.references == ("A coffee shop in the city centre area called Blue Spice.",
                                "Blue Spice is a coffee shop in city centre.")


def test_webnlg_linearises_triples(data_root):
    path = data_root / "webnlg/webnlg_challenge_2017/train/2triples/2triples_Airport_train_challenge.xml"
    first = read_webnlg(path)[0]
    assert first.source == ("Aarhus | leaderName | Jacob_Bundsgaard && "
                            "Aarhus_Airport | cityServed | Aarhus")
    assert len(first.references) == 3


def test_dart_json_matches_xml(data_root):
    from_json = read_dart(data_root / "dart/dart-v1.1.1-full-dev.json")
    from_xml = read_dart(data_root / "dart/dart-v1.1.1-full-dev.xml")
    assert from_json == from_xml


def test_dart_train_missing_is_clear(data_root):
    with pytest.raises(WorkloadError, match="split 'train' not found"):
        load_task("dart", "train", data_root)


def test_split_alias_and_env_root(data_root, monkeypatch):
    monkeypatch.setenv("SPDF_SIM_DATA", str(data_root))
    assert len(load_task("e2e", "validation")) == 547


def test_unknown_task_and_split(tmp_path):
    with pytest.raises(WorkloadError, match="task 'squad' is unknown"):
        load_task("squad", "train", tmp_path)
    with pytest.raises(WorkloadError, match="has no split 'holdout'"):
        load_task("e2e", "holdout", tmp_path)


def test_e2e_small_file(tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text('mr,ref\r\n"name[A], food[Thai]","A serves Thai."\r\n'
                    'name[B],"B is a pub,\nnear the river."\r\n'
                    '"name[A], food[Thai]",A has Thai food.\r\n', encoding="utf-8")
    assert read_e2e(path) == [
        Example("name[A], food[Thai]", ("A serves Thai.", "A has Thai food.")),
        Example("name[B]", ("B is a pub,\nnear the river.",)),
    ]


def test_e2e_wrong_columns(tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("meaning,text\nx,y\n", encoding="utf-8")
    with pytest.raises(WorkloadError) as error:
        read_e2e(path)
    message = str(error.value)
    assert "wrong.csv" in message
    assert "missing ['mr', 'ref']" in message
    assert "columns 'mr' and 'ref'" in message


def test_e2e_empty_ref_names_line(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("mr,ref\nname[A],fine\nname[B],\n", encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"blank\.csv row ending on line 3"):
        read_e2e(path)


def test_e2e_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"empty\.csv is empty"):
        read_e2e(path)


def test_xml_without_entries(tmp_path):
    path = tmp_path / "noentries.xml"
    path.write_text("<benchmark><something/></benchmark>", encoding="utf-8")
    with pytest.raises(WorkloadError) as error:
        read_webnlg(path)
    message = str(error.value)
    assert "noentries.xml has no <entry>" in message
    assert "<modifiedtripleset>" in message


def test_xml_not_well_formed_names_line(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text("<benchmark>\n<entries>\n<entry>\n</benchmark>", encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"broken\.xml is not well-formed at line 4"):
        read_webnlg(path)


def test_xml_entry_without_lex(tmp_path):
    path = tmp_path / "nolex.xml"
    path.write_text("<benchmark><entries><entry eid='Id7'><modifiedtripleset>"
                    "<mtriple>a | b | c</mtriple></modifiedtripleset></entry></entries>"
                    "</benchmark>", encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"nolex\.xml entry 1 \(eid Id7\) has no non-empty <lex>"):
        read_webnlg(path)


def test_xml_bad_triple(tmp_path):
    path = tmp_path / "pair.xml"
    path.write_text("<benchmark><entries><entry eid='Id1'><modifiedtripleset>"
                    "<mtriple>a | b</mtriple></modifiedtripleset><lex>t</lex></entry></entries>"
                    "</benchmark>", encoding="utf-8")
    with pytest.raises(WorkloadError, match="expected 'subject | property | object'"):
        read_webnlg(path)


def test_xml_folder_reads_all_files(tmp_path):
    entry = ("<benchmark><entries><entry eid='Id1'><modifiedtripleset><mtriple>{0} | p | o"
             "</mtriple></modifiedtripleset><lex>{0} text</lex></entry></entries></benchmark>")
    (tmp_path / "2triples").mkdir()
    (tmp_path / "2triples" / "B.xml").write_text(entry.format("b"), encoding="utf-8")
    (tmp_path / "A.xml").write_text(entry.format("a"), encoding="utf-8")
    assert [example.source for example in read_webnlg(tmp_path)] == ["b | p | o", "a | p | o"]


def test_dart_json_not_list(tmp_path):
    path = tmp_path / "dict.json"
    path.write_text('{"tripleset": []}', encoding="utf-8")
    with pytest.raises(WorkloadError) as error:
        read_dart(path)
    message = str(error.value)
    assert "dict.json contains a dict, not a non-empty list" in message
    assert "'tripleset'" in message


def test_dart_record_without_annotations(tmp_path):
    path = tmp_path / "noref.json"
    path.write_text('[{"tripleset": [["a", "b", "c"]], "annotations": [{"text": "ok"}]},'
                    ' {"tripleset": [["a", "b", "c"]]}]', encoding="utf-8")
    with pytest.raises(WorkloadError, match=r"noref\.json record 1 has no 'annotations' list"):
        read_dart(path)


def test_dart_bad_triple(tmp_path):
    path = tmp_path / "short.json"
    path.write_text('[{"tripleset": [["a", "b"]], "annotations": [{"text": "ok"}]}]',
                    encoding="utf-8")
    with pytest.raises(WorkloadError, match="record 0 has triple"):
        read_dart(path)
