"""Reviewing predicted objects, least confident first, and training on what was reviewed.

A labels layer's features (its table: one row per label value in ``index``) carry each
object's ``confidence`` (:mod:`.confidence`) and, once the review starts, its ``review``
state: "" (not reviewed yet), ``accepted``, ``deleted``, ``joined`` (into a neighbour),
``blob`` (marked as a blob, ignored in training) or ``added`` (painted by the user, so
known to be right).  :func:`ignore_unreviewed` turns a partly reviewed labels image into
training labels that teach only what a person has confirmed.

On disk the record is a CSV beside the label image, ``labels/<name>.review.csv``
(:func:`record_path`; columns ``label``, ``confidence``, ``review``), which the Review dock
saves with the image and its labels, and training from folders reads.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_cellseg.errors import DataError
from napari_cellseg.io_utils import atomic_write_text

__all__ = [
    "STATES",
    "CONFIRMED",
    "REVIEW_MARGIN",
    "REACH",
    "review_queue",
    "confirmed",
    "reconcile",
    "ignore_unreviewed",
    "reviewed_training_labels",
    "RECORD_SUFFIX",
    "record_path",
    "write_record",
    "read_record",
]

STATES = ("accepted", "deleted", "joined", "blob", "added")
"""A reviewed object's states; an empty string is an object not reviewed yet."""

CONFIRMED = ("accepted", "added")
"""The states of the objects that stay as they are: what training on a review learns from."""

REVIEW_MARGIN = 2
"""Pixels around an object not reviewed yet that are ignored too: its border with the
background is not known to be right either."""

REACH = 2.0
"""Background within this many (median) object diameters of a reviewed object trains:
in the review benchmark, fine-tuning on 25 and 100 reviewed objects scored AP@0.5 0.814 and
0.826 so, and 0.760 and 0.803 when all the background trained."""


def review_queue(index, confidence, review, present) -> list[int]:
    """The label values still to review, least confident first: every object the labels
    hold now that is not :data:`CONFIRMED` (an object whose deletion was undone is back).

    Parameters
    ----------
    index, confidence, review
        The features' columns: label values, their confidence, their review state.
    present
        The label values the labels image holds now.
    """
    present = set(np.asarray(present).tolist())
    rows = [
        (float(c) if np.isfinite(c) else -1.0, int(v))
        for v, c, r in zip(index, confidence, review, strict=True)
        if r not in CONFIRMED and int(v) in present
    ]
    return [value for _, value in sorted(rows)]


def confirmed(index, review, present) -> list[int]:
    """The label values of the objects a person confirmed that the labels hold now."""
    present = set(np.asarray(present).tolist())
    return [int(v) for v, r in zip(index, review, strict=True) if r in CONFIRMED and v in present]


def reconcile(index, present, blob_label: int | None = 1) -> list[int]:
    """The label values of ``present`` objects that have no row in ``index``: objects the
    user painted, reviewed by making them (0 and the blob value are not objects)."""
    known = set(np.asarray(index).tolist()) | {0}
    if blob_label is not None:
        known.add(blob_label)
    return sorted(set(np.asarray(present).tolist()) - known)


def ignore_unreviewed(
    labels: np.ndarray, reviewed, blob_label: int = 1, margin: int = REVIEW_MARGIN
) -> np.ndarray:
    """Training labels from a partly reviewed labels image: what a person confirmed trains,
    the rest becomes ``blob_label``, which the loss ignores.

    Confirmed are the ``reviewed`` objects and the background within :data:`REACH` object
    diameters of them (the region the reviewer looked at); ignored are the objects not
    reviewed yet (and ``margin`` pixels around them) and the background farther away, which
    may hold objects the model missed.

    Raises
    ------
    ValueError
        When no object is reviewed (nothing would train).
    """
    labels = np.asarray(labels)
    kept = np.isin(labels, np.fromiter((int(v) for v in reviewed), dtype=np.int64))
    if not kept.any():
        raise ValueError("no object of the labels is reviewed")
    values, areas = np.unique(labels[kept], return_counts=True)
    diameter = float(np.median(np.sqrt(4 * areas / np.pi)))
    near = ndi.distance_transform_edt(~kept) <= max(REACH * diameter, 16)
    unreviewed = (labels > 0) & (labels != blob_label) & ~kept
    if margin:
        unreviewed = ndi.binary_dilation(unreviewed, iterations=margin) & ~kept
    confirmed = kept | (near & (labels == 0) & ~unreviewed)
    return np.where(confirmed, labels, blob_label)


def reviewed_training_labels(
    labels: np.ndarray, index, review, blob_label: int | None, name: str, fix: str
) -> np.ndarray:
    """:func:`ignore_unreviewed` of ``labels`` with the record's confirmed objects; a
    DataError names ``name`` and ``fix`` (how to train on every object instead) when the
    record confirms no object or there is no blob label to ignore the rest with."""
    if blob_label is None:
        raise DataError(
            f"Training on the reviewed objects only ignores the others as blobs: set "
            f"'blob_label' to 1, or {fix}."
        )
    keep = confirmed(index, review, np.unique(labels))
    if not keep:
        raise DataError(
            f"No object of {name} is reviewed yet: accept some in the Review dock (A), or "
            f"{fix} to train on all of them."
        )
    return ignore_unreviewed(labels, keep, blob_label)


RECORD_SUFFIX = ".review.csv"
_RECORD_COLUMNS = ("label", "confidence", "review")


def record_path(labels_path: str | Path) -> Path:
    """The review record beside a label image: ``x.tif`` -> ``x.review.csv``."""
    path = Path(labels_path)
    return path.with_name(path.stem + RECORD_SUFFIX)


def write_record(path: str | Path, index, confidence, review) -> Path:
    """Write a review record (one row per object) atomically; returns the path."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(_RECORD_COLUMNS)
    for value, score, state in zip(index, confidence, review, strict=True):
        writer.writerow((int(value), "" if not np.isfinite(score) else f"{score:.4f}", state))
    return atomic_write_text(path, text.getvalue())


def read_record(path: str | Path) -> tuple[list[int], list[str]]:
    """The label values and review states of a record written by :func:`write_record`.

    Raises
    ------
    DataError
        Naming the file, when it lacks the ``label`` or ``review`` column or holds a
        label that is not a whole number or a state not in :data:`STATES`.
    """
    path = Path(path)
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    index, review = [], []
    for line, row in enumerate(rows, start=2):
        try:
            value, state = int(row["label"]), (row["review"] or "").strip()
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"'{path}' line {line} is not a review record row (label, confidence, "
                "review): save the review again from the Review dock, or delete the file "
                "to train on every object of its label image."
            ) from None
        if state and state not in STATES:
            raise DataError(
                f"'{path}' line {line}: '{state}' is not a review state ({', '.join(STATES)}, "
                "or empty for an object not reviewed yet)."
            )
        index.append(value)
        review.append(state)
    return index, review
