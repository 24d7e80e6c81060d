"""Atomic writes: a failed write leaves the old file as it was and says why, naming the file."""

from __future__ import annotations

import errno
import re

import pytest

from napari_cellseg.errors import CellsegError
from napari_cellseg.io_utils import atomic_write, atomic_write_text


def test_a_write_replaces_the_file_whole(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize(
    "error, reason",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (  # what torch.save raises on a full disk
            RuntimeError(
                "[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0\n"
                "PytorchStreamWriter failed writing file data/0: file write failed"
            ),
            "[enforce fail at inline_container.cc:603]",
        ),
    ],
)
def test_a_full_disk_keeps_the_old_file_and_says_what_to_do(tmp_path, error, reason):
    path = atomic_write_text(tmp_path / "m.pt", "the model of yesterday")

    def fail(tmp):
        tmp.write_text("half")
        raise error

    expected = rf"Cannot write '.*m.pt' \({re.escape(reason)}.*Free space"
    with pytest.raises(CellsegError, match=expected):
        atomic_write(path, fail)
    assert path.read_text() == "the model of yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_other_errors_of_the_writer_stay_what_they_are(tmp_path):
    def bug(tmp):
        raise RuntimeError("expected input[2, 3, 32, 32] to have 1 channels")

    with pytest.raises(RuntimeError, match="channels"):
        atomic_write(tmp_path / "x", bug)
