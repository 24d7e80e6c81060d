"""The OME-Zarr a blockwise prediction writes, block by block.

Layout (OME-Zarr 0.4, zarr format 2, which napari-ome-zarr, Fiji/MoBIE and QuPath read)::

    OUT.zarr/             multiscale image: the maps (c: objects, boundaries; y; x), float32
    OUT.zarr/0
    OUT.zarr/labels/instances/0     the instance labels (y, x), uint32, image-label metadata
    OUT.zarr/provisional            labels before merging across block faces, and
    OUT.zarr/seen_from_left, _above  what each block saw of its neighbour's edge (removed
                                    at the end)

The root attributes hold ``napari-cellseg``: the blocks done in each pass (so an
interrupted run resumes), and ``complete: true`` written last.
"""

from __future__ import annotations

from pathlib import Path

from napari_cellseg.errors import DataError

__all__ = ["OutputArrays", "OutputZarr", "KEY"]

KEY = "napari-cellseg"
LABELS = "instances"


class OutputArrays:
    """The arrays of an output being written, opened where a block task runs."""

    def __init__(self, path: Path) -> None:
        import zarr

        group = zarr.open_group(str(path), mode="r+")
        self.maps = group["0"]
        self.provisional = group["provisional"]
        self.seen_from_left = group["seen_from_left"]
        self.seen_from_above = group["seen_from_above"]


class OutputZarr:
    """The output container of one image: created, or reopened to resume the same job."""

    def __init__(self, path: Path, shape: tuple[int, int], block: int, job: dict) -> None:
        import zarr

        self.path = Path(path)
        if self.path.exists():
            try:
                group = zarr.open_group(str(self.path), mode="r+")
            except Exception:
                group = None
            state = dict(group.attrs).get(KEY) if group is not None else None
            if state is None or state.get("job") != job:
                raise DataError(
                    f"'{self.path}' exists and is not an unfinished run of this job: give a new "
                    "output path (or delete it)."
                )
            if state.get("complete"):
                raise DataError(f"'{self.path}' holds this job's finished results already.")
            self.group = group
        else:
            self.group = self._create(shape, block, job)
        self.maps = self.group["0"]
        self.provisional = self.group["provisional"]
        self.seen_from_left = self.group["seen_from_left"]
        self.seen_from_above = self.group["seen_from_above"]
        self.labels = self.group[f"labels/{LABELS}/0"]

    def _create(self, shape, block, job):
        import zarr
        from ome_zarr.format import FormatV04
        from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

        try:
            group = zarr.open_group(str(self.path), mode="w-", zarr_format=2)
        except (OSError, zarr.errors.ContainsGroupError) as exc:
            raise DataError(
                f"Cannot create '{self.path}' ({exc}); choose a folder you can write to."
            ) from None
        fmt = FormatV04()
        space = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
        transform = [{"type": "scale", "scale": [1.0, 1.0, 1.0]}]
        group.create_array("0", shape=(2, *shape), chunks=(2, block, block), dtype="float32")
        write_multiscales_metadata(
            group,
            [{"path": "0", "coordinateTransformations": transform}],
            fmt=fmt,
            axes=[{"name": "c", "type": "channel"}, *space],
            name="probabilities (objects, boundaries)",
        )
        for name in ("provisional", "seen_from_left", "seen_from_above"):
            group.create_array(name, shape=shape, chunks=(block, block), dtype="uint64")
        labels = group.create_group("labels")
        labels.attrs["labels"] = [LABELS]
        instances = labels.create_group(LABELS)
        instances.create_array("0", shape=shape, chunks=(block, block), dtype="uint32")
        write_multiscales_metadata(
            instances,
            [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1.0, 1.0]}]}],
            fmt=fmt,
            axes=space,
            name=LABELS,
        )
        write_label_metadata(labels, LABELS, fmt=fmt)
        group.attrs[KEY] = {"job": job, "pass1": [], "pass2": [], "complete": False}
        return group

    # --- the record of what is done -------------------------------------------------------

    def done(self, stage: str) -> set[int]:
        """The blocks finished in ``stage`` (``pass1``: predicted; ``pass2``: relabelled)."""
        return set(dict(self.group.attrs)[KEY][stage])

    def mark(self, stage: str, blocks: set[int]) -> None:
        """Record ``blocks`` as finished in ``stage``."""
        state = dict(self.group.attrs)[KEY]
        state[stage] = sorted(set(state[stage]) | blocks)
        self.group.attrs[KEY] = state

    def finish(self, record: dict) -> None:
        """Drop the provisional labels and write the completion marker, last."""
        for name in ("provisional", "seen_from_left", "seen_from_above"):
            del self.group[name]
        state = dict(self.group.attrs)[KEY]
        self.group.attrs[KEY] = {**state, **record, "pass1": [], "pass2": [], "complete": True}
