"""Errors of worker threads: out of memory names the fix; other runtime errors stay visible."""

from __future__ import annotations

import pytest

from napari_cellseg.errors import CellsegError
from napari_cellseg.widgets._worker import WorkerError, _reported_errors, report


@pytest.mark.parametrize(
    "error",
    [MemoryError(), RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")],
)
def test_out_of_memory_becomes_a_user_error_with_the_fix(error):
    with pytest.raises(CellsegError, match="Out of memory.*Lower 'batch'"):
        with _reported_errors("Lower 'batch'."):
            raise error


def test_other_runtime_errors_are_not_swallowed():
    # superqt's generator worker would take a RuntimeError for a deleted worker and only warn
    with pytest.raises(WorkerError, match="shape mismatch"):
        with _reported_errors("Lower 'batch'."):
            raise RuntimeError("shape mismatch")


def test_report_shows_user_errors_plainly_and_others_with_their_traceback(qtbot):
    from napari.utils.notifications import ErrorNotification, notification_manager

    shown = []
    notification_manager.notification_ready.connect(shown.append)
    try:
        report(CellsegError("Setting 'lr' is bad; fix it."))
        report(KeyError("boom"))
    finally:
        notification_manager.notification_ready.disconnect(shown.append)
    assert shown[0].message == "Setting 'lr' is bad; fix it."
    assert not isinstance(shown[0], ErrorNotification)  # no traceback for a user's mistake
    assert isinstance(shown[1], ErrorNotification) and isinstance(shown[1].exception, KeyError)
