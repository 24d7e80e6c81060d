"""Atomic file writes: a reader never sees a half-written file, a crash never destroys one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from napari_cellseg.errors import CellsegError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    Raises
    ------
    CellsegError
        When the folder cannot be created or written, naming the path.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CellsegError(
            f"Cannot write '{path}': {exc.strerror}. Choose a folder you can write to."
        ) from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; keep the usual permissions
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
        if isinstance(exc, RuntimeError) and "write" not in str(exc).lower():
            raise
        if isinstance(exc, IsADirectoryError) or path.is_dir():
            message = f"Cannot write '{path}': it is a folder; give a file name."
            raise CellsegError(message) from None
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise CellsegError(
            f"Cannot write '{path}' ({reason}); the file is as it was.  Free space on the "
            "disk, or choose a folder you can write to."
        ) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))
