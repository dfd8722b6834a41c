"""Label coding and parsing on made-up names and files: age groups, UTKFace names, CSV rows, Matlab dates."""
import numpy as np
import pytest

from agegender import labels, sources


def test_age_groups_presets_and_edges():
    assert labels.age_group_names() == ("0-29", "30-45", "46-59", "60+")
    assert labels.age_group([0, 29, 30, 45, 46, 59, 60, 100]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for count in (3, 4, 5, 8, 10, 12):
        assert len(labels.age_group_names(labels.parse_age_edges(str(count)))) == count
    assert labels.parse_age_edges("20,40") == (20, 40)
    for bad in ("40,20", "30,30", "0,30", "20,101", "-5", "twenty"):
        with pytest.raises(ValueError, match="age"):
            labels.parse_age_edges(bad)


def test_utkface_labels_come_from_the_file_names(tmp_path):
    names = {"25_0_2_20170116174525125.jpg.chip.jpg": (25, labels.MALE, 2, None),
             "8_1_20170109204615385.jpg.chip.jpg": (8, labels.FEMALE, -1, None),        # race missing
             "61_1_3_20170109141446186 .jpg.chip.jpg": (61, labels.FEMALE, 3, None),    # stray space
             "3_2_0_20170109194453945.jpg.chip.jpg": (None, None, -1, "unparsable_label"),  # gender 2
             "notes.txt": (None, None, -1, "unparsable_label")}
    for name in [*names, ".DS_Store"]:
        (tmp_path / name).write_bytes(b"")  # only the names are read here
    records = {record.key: record for record in sources.read_utkface(str(tmp_path))}
    assert sorted(records) == sorted("utkface/" + name for name in names)  # hidden files are skipped
    for name, expected in names.items():
        record = records["utkface/" + name]
        assert (record.age, record.gender, record.race, record.problem) == expected
    with pytest.raises(sources.SourceError, match="not a folder"):
        list(sources.read_utkface(str(tmp_path / "missing")))


def test_csv_rows_take_numbers_or_words_for_gender_and_flag_what_cannot_be_read(tmp_path):
    (tmp_path / "faces.csv").write_text("path,age,gender,race\n"
                                        "a.jpg,30,female,1\n"
                                        "b.jpg,41.0,M,\n"
                                        "c.jpg,12,,\n"
                                        "d.jpg,old,0,\n"
                                        "e.jpg,20,robot,\n")
    records = list(sources.read_csv(str(tmp_path / "faces.csv")))
    assert [(r.age, r.gender, r.race, r.problem) for r in records] == [
        (30, labels.FEMALE, 1, None), (41, labels.MALE, -1, None), (12, None, -1, None),
        (None, None, -1, "unparsable_label"), (None, None, -1, "unparsable_label")]
    assert records[0].path == str(tmp_path / "a.jpg") and records[0].key == "csv/a.jpg"
    (tmp_path / "bad.csv").write_text("file,age\nx.jpg,3\n")
    with pytest.raises(sources.SourceError, match="missing column"):
        list(sources.read_csv(str(tmp_path / "bad.csv")))
    with pytest.raises(sources.SourceError, match="unknown dataset"):
        sources.read_source("adience", str(tmp_path))


def test_matlab_serial_dates_become_calendar_days():
    days = sources.matlab_datenum_to_date([719529, 719529 + 7305, 719529.7, 1])
    assert days.astype(str).tolist() == ["1970-01-01", "1990-01-01", "1970-01-01", "0000-01-01"]
    assert days.dtype == np.dtype("datetime64[D]")
