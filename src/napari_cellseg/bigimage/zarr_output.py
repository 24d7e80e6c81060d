"""The OME-Zarr a blockwise prediction writes, block by block.

Layout (OME-Zarr 0.4, zarr format 2, which napari-ome-zarr, Fiji/MoBIE and QuPath read)::

    OUT.zarr/             multiscale image: the maps (c: objects, boundaries; y; x), float32
    OUT.zarr/0, 1, ...    full resolution, then every other pixel of the level above, down
                          to a side of at most 1024 (napari shows a big image from these)
    OUT.zarr/labels/instances/0, 1, ...  the instance labels (y, x), uint32, image-label
                                    metadata, the same levels
    OUT.zarr/provisional            labels before merging across block faces, and
    OUT.zarr/seen_from_left, _above  what each block saw of its neighbours' first columns
                                    and rows, strip by strip (removed
                                    at the end)

The root attributes hold ``napari-cellseg``: the blocks done in each pass (so an
interrupted run resumes), and ``complete: true`` written last.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from napari_cellseg.errors import DataError

if TYPE_CHECKING:
    from napari_cellseg.bigimage.blockwise import BlockGrid

__all__ = [
    "OutputZarr",
    "PlaneView",
    "KEY",
    "plane_arrays",
    "read_output",
    "task_arrays",
    "writing",
]

KEY = "napari-cellseg"
LABELS = "instances"
PYRAMID_SIDE = 1024
"""The lowest resolution level of the outputs is at most this many pixels on a side."""
_SPACE = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
_ARRAYS = {
    "maps": "0",
    "provisional": "provisional",
    "seen_from_left": "seen_from_left",
    "seen_from_above": "seen_from_above",
    "labels": f"labels/{LABELS}/0",
}


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Turn a failed write into the output (a full disk, no permission) into a clear error."""
    try:
        yield
    except OSError as exc:
        raise DataError(
            f"Cannot write to '{path}' ({exc.strerror or exc}): free disk space there or "
            "choose another output; run the same job again to go on from the finished blocks."
        ) from None


def read_output(path: str | Path) -> dict[str, list]:
    """The levels of a finished output as lazy (dask) arrays, full resolution first.

    Returns ``{"objects": [...], "boundaries": [...], "labels": [...]}``; nothing is
    read until a region is asked for (napari asks only for what it shows).
    """
    import dask.array as da
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception:  # zarr raises several kinds for a folder that is no zarr
        group = None
    if group is None or not dict(group.attrs).get(KEY, {}).get("complete"):
        raise DataError(f"'{path}' is not a finished napari-cellseg output.")
    levels = [d["path"] for d in group.attrs["multiscales"][0]["datasets"]]
    maps = [da.from_zarr(group[level]) for level in levels]
    return {
        "objects": [m[0] for m in maps],
        "boundaries": [m[1] for m in maps],
        "labels": [da.from_zarr(group[f"labels/{LABELS}/{level}"]) for level in levels],
    }


class PlaneView:
    """Plane ``z`` of a (..., Z, Y, X) array, read and written as a (..., Y, X) one."""

    def __init__(self, array, z: int) -> None:
        self.array, self.z = array, z

    def _key(self, key) -> tuple:
        key = key if isinstance(key, tuple) else (key,)
        return (*key[:-2], self.z, *key[-2:])

    def __getitem__(self, key):
        return self.array[self._key(key)]

    def __setitem__(self, key, value) -> None:
        self.array[self._key(key)] = value

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.array.shape[:-3], *self.array.shape[-2:])


def plane_arrays(group, z: int) -> SimpleNamespace:
    """The arrays a blockwise run writes (``maps``, ``provisional``, ``seen_from_left``,
    ``seen_from_above``, ``labels``), of plane ``z`` of a z-stack's output."""
    arrays = {name: group[key] for name, key in _ARRAYS.items() if key in group}
    stacked = group[f"labels/{LABELS}/0"].ndim == 3
    return SimpleNamespace(
        **{name: PlaneView(array, z) if stacked else array for name, array in arrays.items()}
    )


def task_arrays(path: Path, z: int) -> SimpleNamespace:
    """:func:`plane_arrays` of the output at ``path``, opened where a block task runs."""
    import zarr

    return plane_arrays(zarr.open_group(str(path), mode="r+"), z)


class OutputZarr:
    """The output container of one image or z-stack: created, or reopened to resume the
    same job."""

    def __init__(self, path: Path, grid: BlockGrid, job: dict, planes: int = 1) -> None:
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
            self.group = self._create(grid, job, planes)
        self.planes = planes

    def plane(self, z: int) -> SimpleNamespace:
        """The arrays of plane ``z`` (:func:`plane_arrays`)."""
        return plane_arrays(self.group, z)

    def _create(self, grid: BlockGrid, job: dict, planes: int):
        import zarr
        from ome_zarr.format import FormatV04
        from ome_zarr.writer import write_label_metadata

        try:
            group = zarr.open_group(str(self.path), mode="w-", zarr_format=2)
        except (OSError, zarr.errors.ContainsGroupError) as exc:
            raise DataError(
                f"Cannot create '{self.path}' ({exc}); choose a folder you can write to."
            ) from None
        (height, width), block, strip = grid.shape, grid.block, max(grid.after, 1)
        rows, cols = grid.counts
        z = ((planes,), (1,)) if planes > 1 else ((), ())  # a z axis for a stack

        def array(where, name, shape, chunks, dtype):
            where.create_array(name, shape=(*z[0], *shape), chunks=(*z[1], *chunks), dtype=dtype)

        with writing(self.path):
            group.create_array(
                "0", shape=(2, *z[0], height, width), chunks=(2, *z[1], block, block),
                dtype="float32",
            )  # fmt: skip
            array(group, "provisional", grid.shape, (block, block), "uint64")
            # the strips behind the faces, side by side: column block c's left strip is
            # seen_from_left[:, c * strip:][:, :strip], a chunk each
            array(group, "seen_from_left", (height, cols * strip), (block, strip), "uint64")
            array(group, "seen_from_above", (rows * strip, width), (strip, block), "uint64")
            labels = group.create_group("labels")
            labels.attrs["labels"] = [LABELS]
            instances = labels.create_group(LABELS)
            array(instances, "0", grid.shape, (block, block), "uint32")
            _write_levels_metadata(group, 1)
            write_label_metadata(labels, LABELS, fmt=FormatV04())
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
        with writing(self.path):
            self.group.attrs[KEY] = state

    def pyramid_levels(self) -> int:
        """How many levels of half the resolution of the one above :meth:`write_level` adds."""
        side, levels = max(self.group[f"labels/{LABELS}/0"].shape[-2:]), 0
        while side > PYRAMID_SIDE:
            side, levels = (side + 1) // 2, levels + 1
        return levels

    def write_level(self, level: int) -> None:
        """Write resolution ``level`` (1, 2, ...): every other pixel of ``level - 1`` (as
        ome-zarr's nearest scaler), a chunk at a time, each from the four chunks of the
        level above read one by one."""
        with writing(self.path):
            for group in (self.group, self.group[f"labels/{LABELS}"]):
                above = group[str(level - 1)]
                shape = (*above.shape[:-2], *((side + 1) // 2 for side in above.shape[-2:]))
                array = group.create_array(
                    str(level), shape=shape, chunks=above.chunks, dtype=above.dtype,
                    overwrite=True,
                )  # fmt: skip
                step = above.chunks[-1]  # even: a multiple of the tile step
                for z in range(self.planes):
                    source, target = (
                        (PlaneView(above, z), PlaneView(array, z))
                        if self.planes > 1
                        else (above, array)
                    )
                    for y in range(0, shape[-2], step):
                        for x in range(0, shape[-1], step):
                            target[..., y : y + step, x : x + step] = _half(source, y, x, step)
            _write_levels_metadata(self.group, level + 1)

    def finish(self, record: dict) -> None:
        """Drop the provisional labels and write the completion marker, last."""
        with writing(self.path):
            for name in ("provisional", "seen_from_left", "seen_from_above"):
                del self.group[name]
            state = dict(self.group.attrs)[KEY]
            self.group.attrs[KEY] = {**state, **record, "pass1": [], "pass2": [], "complete": True}


def _half(above, y: int, x: int, step: int):
    """Chunk (``y``, ``x``) of the level below ``above``: every other pixel of its four
    chunks there, read one at a time."""
    import numpy as np

    height = min(step, (above.shape[-2] + 1) // 2 - y)
    width = min(step, (above.shape[-1] + 1) // 2 - x)
    chunk = np.empty((*above.shape[:-2], height, width), above.dtype)
    for dy in range(0, height, step // 2):
        for dx in range(0, width, step // 2):
            rows = slice(2 * (y + dy), 2 * (y + dy) + step)
            cols = slice(2 * (x + dx), 2 * (x + dx) + step)
            half = np.asarray(above[..., rows, cols])[..., ::2, ::2]
            chunk[..., dy : dy + half.shape[-2], dx : dx + half.shape[-1]] = half
    return chunk


def _write_levels_metadata(group, levels: int) -> None:
    """The OME-Zarr 0.4 multiscales metadata of the maps and the labels, ``levels`` deep."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    def datasets(channel: list[float]) -> list[dict]:
        return [
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [*channel, 2.0**level, 2.0**level]}
                ],
            }
            for level in range(levels)
        ]

    stacked = group["0"].ndim == 4
    space = [{"name": "z", "type": "space"}, *_SPACE] if stacked else _SPACE
    lead = [1.0] if stacked else []
    write_multiscales_metadata(
        group,
        datasets([1.0, *lead]),
        fmt=FormatV04(),
        axes=[{"name": "c", "type": "channel"}, *space],
        name="probabilities (objects, boundaries)",
    )
    write_multiscales_metadata(
        group[f"labels/{LABELS}"], datasets(lead), fmt=FormatV04(), axes=space, name=LABELS
    )
