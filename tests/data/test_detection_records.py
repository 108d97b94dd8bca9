"""The checked records of a detection dataset."""

from __future__ import annotations

import pytest

from lightnets.data.detection.records import DetectionDataset, make_record


def test_a_label_beyond_the_classes_names_its_file():
    good = make_record(1, (32, 32), [[1, 1, 9, 9]], [3], [0], file="a.jpg")
    bad = make_record(2, (32, 32), [[1, 1, 9, 9]], [7], [0], file="b.jpg")
    DetectionDataset([good], None, 32, None, ["x", "y", "z"])
    with pytest.raises(ValueError, match=r"^b.jpg has label 7; labels must be 1..3") as error:
        DetectionDataset([good, bad], None, 32, None, ["x", "y", "z"])
    assert "\n" not in str(error.value)
