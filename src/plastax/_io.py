"""Small file helpers shared by the command line, training and benchmarks."""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["atomic_write_text", "write_json"]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in the same folder,
    flushed and fsynced, then renamed over the target.  A crash leaves either the old
    file or the new one, never a truncated mix."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj) -> None:
    """``json.dumps(obj, indent=2)`` written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")
