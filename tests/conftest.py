"""Shared fixtures: synthetic data sets, the real nuclei data, a tiny training config."""

from __future__ import annotations

from pathlib import Path

import pytest
from small_runs import TINY_RUN

from napari_cellseg.config import TrainConfig

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dsb2018-fluo"


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> Path:
    """A data set folder (``images/`` + ``labels/``) of 4 synthetic PNG pairs, 96x96.

    Each image holds one blob region (label 1) besides objects 2, 3, ...  A second
    folder, ``synthetic_dir.parent / "multipage"``, holds one multipage TIFF pair of
    3 pages of 64x64 without blobs; ``f"{synthetic_dir}+{synthetic_dir.parent / 'multipage'}"``
    reads both.
    """
    from napari_cellseg.data.synthetic import write_dataset

    write_dataset(tmp_path / "multipage", 3, shape=(64, 64), seed=1, multipage=True)
    return write_dataset(tmp_path / "png", 4, shape=(96, 96), blobs=1, seed=0)


@pytest.fixture
def shared_data() -> Path:
    """The real fluorescence nuclei data (``train/`` and ``val/``); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_settings() -> dict:
    """TrainConfig fields that make a network and a run small enough for a test."""
    return dict(TINY_RUN)


@pytest.fixture
def tiny_train_config(tmp_path: Path, tiny_settings: dict) -> TrainConfig:
    """Settings of a training run small enough for a test (seconds on one CPU)."""
    return TrainConfig(**tiny_settings, epochs=2, augments=1, model=str(tmp_path / "model.pt"))
