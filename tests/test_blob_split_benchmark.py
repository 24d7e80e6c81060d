"""benchmarks/blob_split.py makes its blobs from groups of touching nuclei, as annotators do."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from blob_split import clusters, merge_into_blobs, score, touching  # noqa: E402


def test_touching_nuclei_become_one_blob_over_their_gaps():
    truth = np.zeros((20, 40), np.int32)
    for i, value in enumerate((2, 3, 4, 5)):  # a row of four, 1 px apart
        truth[5:10, 1 + 6 * i : 6 + 6 * i] = value
    truth[5:10, 34:39] = 6  # 10 px away: alone
    near = touching(truth, gap=2)
    assert near[3] == {2, 4} and near[6] == set()
    groups = clusters(near, np.random.default_rng(0))
    assert len(groups) == 1 and groups[0] <= {2, 3, 4, 5} and len(groups[0]) >= 3
    blobs = merge_into_blobs(truth, groups, gap=2)
    columns = np.flatnonzero(np.isin(truth, list(groups[0])).any(axis=0))
    assert (blobs[5:10, columns.min() : columns.max() + 1] == 1).all()  # nuclei and gaps
    assert (blobs == 6).sum() == 25 and (blobs[:5] == 0).all()


def test_score_counts_matches_and_what_the_proposal_leaves_of_the_blob():
    truth = np.zeros((4, 10), np.int32)
    truth[:, :5], truth[:, 5:] = 2, 3
    proposal = np.zeros_like(truth)
    proposal[:, :5] = 1  # one of two cells; the other half of the blob left
    proposal[0, 9] = 2  # and a 1-pixel piece
    row = score(truth, proposal, np.ones_like(truth, bool), min_size=3, estimate=2.5)
    assert (row["tp"], row["fp"], row["fn"]) == (1, 1, 1)
    assert (row["exact"], row["count_error"], row["estimate_error"]) == (True, 0, 0.5)
    assert (row["left"], row["fragments"]) == (19, 0)
