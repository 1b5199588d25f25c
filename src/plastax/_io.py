"""Small file helpers shared by the command line, training, checkpoints and benchmarks."""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["atomic_write_bytes", "atomic_write_text", "fsync_dir", "probe_writable", "write_json"]


def fsync_dir(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (new, renamed or deleted files) to disk.  A no-op where
    the platform cannot open folders (Windows)."""
    try:
        fd = os.open(os.fspath(folder), os.O_RDONLY)
    except OSError:  # pragma: no cover - platform without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder,
    flushed and fsynced, then renamed over the target, and the folder fsynced.  A
    crash leaves either the old file or the new one, never a truncated mix."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    """``json.dumps(obj, indent=2)`` written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


_PROBE_BLOCK = 1 << 20


def probe_writable(folder: str | os.PathLike, nbytes: int, what: str, hint: str) -> None:
    """Create ``folder`` and check that ``nbytes`` can be written into it: a probe
    file of that size is written, fsynced and deleted.  A full disk, a quota, a
    read-only file system or a missing permission fails here, with a ``ValueError``
    that names ``what`` (e.g. "the checkpoint directory") and ends with ``hint``,
    rather than hours later.

    The probe is random bytes, so that compressing or deduplicating file systems
    cannot store it in less space than the real file will need."""
    folder = os.fspath(folder)
    size = max(int(nbytes), 1)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=folder)
        block = os.urandom(min(size, _PROBE_BLOCK))
        with os.fdopen(fd, "wb") as f:
            left = size
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ValueError(
            f"cannot write to {what} {folder!r}: {reason} (a probe of {_size(size)}, the "
            f"expected size, was refused); {hint}"
        ) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _size(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes} bytes"  # pragma: no cover
