"""Checkpoints that cannot execute code, are written atomically and are verified
before they are read.

A checkpoint is a folder ``DIR/step-00000123/`` (the number is the count of optimizer
steps taken) holding two files:

* ``arrays.eqx``: the array leaves of a pytree (model, optimizer state, ...), in
  order, each as one ``.npy`` record, written by :func:`equinox.tree_serialise_leaves`
  with ``np.save(..., allow_pickle=False)`` and read back with
  ``np.load(..., allow_pickle=False)``.  No pickle is involved, so loading a file
  can never run code; only numbers are read.
* ``manifest.json``: the format version, the step, the byte size and SHA-256 of
  ``arrays.eqx``, the path, shape and dtype of every array leaf (the skeleton), the
  caller's metadata (for training: position in the data, numpy generator state,
  configuration, metrics history), and ``manifest_sha256``, the SHA-256 of the
  manifest's own canonical JSON without that field.

Reading needs a ``like`` pytree with the structure of what was saved (for training:
the model that :func:`plastax.build_model` builds from the configuration and the
optimizer's ``init`` of it).  Non-array leaves (hyperparameters, functions) come from
``like``; array leaves come from the file, after their shapes and dtypes have been
checked against ``like``.

Writing: both files go into a temporary folder ``DIR/.tmp-step-...``, are fsynced,
and the folder is renamed to its final name, then ``DIR`` is fsynced.  A crash leaves
either a complete checkpoint or a temporary folder that is never read.  Only the
newest ``keep`` checkpoints are kept.

Reading: :func:`verify` checks the manifest's checksum, then the size and checksum of
``arrays.eqx``, before anything is deserialised.  A flipped byte or a truncated file
raises :class:`CheckpointError` naming the file and the newest older checkpoint that
is still good; :func:`restore_latest` falls back to that one by itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._io import fsync_dir

__all__ = [
    "ARRAYS",
    "FORMAT_VERSION",
    "MANIFEST",
    "CheckpointError",
    "Latest",
    "Restored",
    "estimate_bytes",
    "latest",
    "list_checkpoints",
    "load",
    "restore_latest",
    "save",
    "verify",
]

FORMAT = "plastax-checkpoint"
FORMAT_VERSION = 1
ARRAYS = "arrays.eqx"
MANIFEST = "manifest.json"
_NAME = re.compile(r"^step-(\d{8,})$")
_MANIFEST_SLACK = 1 << 16  # bytes reserved for manifest.json when estimating a size


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupted, truncated, of another format, or that
    does not fit the model it is loaded into."""


def _is_array(x) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def step_name(step: int) -> str:
    """``step-00000123``: the folder name of the checkpoint taken after ``step`` steps."""
    return f"step-{int(step):08d}"


def _leaf_specs(tree) -> list[dict[str, Any]]:
    """Path, shape and dtype of every array leaf of ``tree``, in serialisation order."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [
        {"path": jax.tree_util.keystr(path), "shape": list(np.shape(x)), "dtype": str(x.dtype)}
        for path, x in leaves
        if _is_array(x)
    ]


def _is_numeric(dtype_name: str) -> bool:
    """Booleans and numbers (what ``.npy`` stores without pickle); not objects, PRNG
    keys or other extended dtypes."""
    try:
        return np.dtype(dtype_name).kind in "biufc"
    except TypeError:
        return False


def estimate_bytes(tree) -> int:
    """Bytes a checkpoint of ``tree`` takes on disk (arrays, headers and manifest)."""
    leaves = [x for x in jax.tree.leaves(tree) if _is_array(x)]
    header = 128  # bytes of a .npy header
    return int(sum(x.nbytes + header for x in leaves) + _MANIFEST_SLACK)


# --------------------------------------------------------------------------------------
# Serialisation: .npy records, never pickle


def _serialise_leaf(f, x) -> None:
    if _is_array(x):
        np.save(f, np.asarray(x), allow_pickle=False)


def _deserialiser(source: str, specs: list[dict[str, Any]]) -> Callable:
    counter = iter(range(len(specs) + 1))

    def load_leaf(f, like):
        if not _is_array(like):
            return like
        i = next(counter)
        try:
            value = np.load(f, allow_pickle=False)
        except ValueError as e:  # truncated or non-npy bytes
            raise CheckpointError(
                f"{source}: array {i} cannot be read ({e}); the file is corrupted"
            ) from None
        want_shape, want_dtype = tuple(np.shape(like)), np.dtype(like.dtype)
        if value.shape != want_shape or value.dtype != want_dtype:
            where = specs[i]["path"] if i < len(specs) else f"#{i}"
            raise CheckpointError(
                f"{source}: array {where} has shape {value.shape} and dtype {value.dtype}, "
                f"the model expects {want_shape} and {want_dtype}; load it into a model built "
                "with the configuration stored in its manifest.json"
            )
        if isinstance(like, np.generic):
            return value[()]
        if isinstance(like, np.ndarray):
            return value
        return jnp.asarray(value)

    return load_leaf


# --------------------------------------------------------------------------------------
# Writing


def save(
    directory: str | os.PathLike,
    step: int,
    tree,
    metadata: dict[str, Any] | None = None,
    *,
    keep: int | None = 3,
) -> str:
    """Write the array leaves of ``tree`` and ``metadata`` (JSON-able) as the
    checkpoint ``directory/step-<step>``, atomically; keep the newest ``keep``
    checkpoints (``None``: all).  Returns the checkpoint's path.

    A checkpoint of the same step that already exists is replaced.  Checkpoints of
    later steps are never deleted here.
    """
    directory = os.fspath(directory)
    specs = _leaf_specs(tree)
    for spec in specs:
        if not _is_numeric(spec["dtype"]):
            raise ValueError(
                f"checkpoint.save: array {spec['path']} has dtype {spec['dtype']}; expected "
                "booleans or numbers (store a PRNG key as jax.random.key_data(key))"
            )
    os.makedirs(directory, exist_ok=True)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, tree, filter_spec=_serialise_leaf)
    data = buffer.getvalue()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "arrays": {"file": ARRAYS, "bytes": len(data), "sha256": _sha256(data)},
        "leaves": specs,
        "metadata": metadata or {},
    }
    manifest["manifest_sha256"] = _sha256(_canonical(manifest))
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"

    name = step_name(step)
    final = os.path.join(directory, name)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=directory)
    try:
        for fname, payload in ((ARRAYS, data), (MANIFEST, text.encode("utf-8"))):
            with open(os.path.join(tmp, fname), "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
        fsync_dir(tmp)
        if os.path.exists(final):  # same step again: move the old one aside first
            old = tempfile.mkdtemp(prefix=f".old-{name}-", dir=directory)
            os.replace(final, os.path.join(old, name))
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep is not None:
        _prune(directory, int(step), int(keep))
    return final


def _prune(directory: str, step: int, keep: int) -> None:
    older = [(s, p) for s, p in list_checkpoints(directory) if s <= step]
    for _, path in older[: max(len(older) - keep, 0)]:
        shutil.rmtree(path, ignore_errors=True)
    fsync_dir(directory)


def clean_temporary(directory: str | os.PathLike) -> None:
    """Remove the temporary folders that an interrupted :func:`save` left behind."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if name.startswith((".tmp-step-", ".old-step-")):
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


# --------------------------------------------------------------------------------------
# Reading


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """``(step, path)`` of every ``step-*`` folder in ``directory``, oldest first,
    valid or not (see :func:`verify`)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if m and os.path.isdir(os.path.join(directory, name)):
            found.append((int(m.group(1)), os.path.join(directory, name)))
    return sorted(found)


def _read_manifest(path: str) -> dict[str, Any]:
    mpath = os.path.join(path, MANIFEST)
    try:
        with open(mpath, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{mpath}: missing; {path} is not a complete checkpoint") from None
    except OSError as e:
        raise CheckpointError(f"{mpath}: cannot be read ({e.strerror})") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{mpath}: not valid JSON ({e}); the file is truncated or corrupted"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{mpath}: not a plastax checkpoint manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{mpath}: format version {manifest.get('format_version')!r}, this plastax reads "
            f"version {FORMAT_VERSION}"
        )
    recorded = manifest.pop("manifest_sha256", None)
    actual = _sha256(_canonical(manifest))
    if recorded != actual:
        raise CheckpointError(
            f"{mpath}: checksum mismatch (recorded {recorded}, computed {actual}); the file "
            "was modified or corrupted"
        )
    return manifest


def verify(path: str | os.PathLike) -> dict[str, Any]:
    """Check the checkpoint folder ``path`` without deserialising anything: the
    manifest's own checksum, then the size and SHA-256 of ``arrays.eqx``.  Returns the
    manifest; raises :class:`CheckpointError` naming the bad file."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise CheckpointError(f"{path}: no such checkpoint folder")
    manifest = _read_manifest(path)
    apath = os.path.join(path, ARRAYS)
    expected = manifest["arrays"]
    try:
        with open(apath, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"{apath}: missing") from None
    except OSError as e:
        raise CheckpointError(f"{apath}: cannot be read ({e.strerror})") from None
    if len(data) != expected["bytes"]:
        raise CheckpointError(
            f"{apath}: {len(data)} bytes, the manifest records {expected['bytes']}; the file "
            "is truncated or corrupted"
        )
    digest = _sha256(data)
    if digest != expected["sha256"]:
        raise CheckpointError(
            f"{apath}: checksum mismatch (recorded {expected['sha256']}, computed {digest}); "
            "the file is corrupted"
        )
    return manifest


def _previous_good(path: str) -> str | None:
    """The newest valid checkpoint older than ``path`` in the same folder."""
    directory, name = os.path.split(os.path.normpath(path))
    m = _NAME.match(name)
    if m is None:
        return None
    for step, other in reversed(list_checkpoints(directory)):
        if step < int(m.group(1)):
            try:
                verify(other)
            except CheckpointError:
                continue
            return other
    return None


def _with_previous(error: CheckpointError, path: str) -> CheckpointError:
    previous = _previous_good(path)
    hint = (
        f"the previous good checkpoint is {previous}"
        if previous
        else "there is no older valid checkpoint beside it"
    )
    return CheckpointError(f"{error}; refusing to load {path}; {hint}")


def load(path: str | os.PathLike, like) -> tuple[Any, dict[str, Any]]:
    """Verify the checkpoint ``path`` and read it into the structure of ``like``.

    Returns ``(tree, manifest)``.  Raises :class:`CheckpointError` (a ``ValueError``)
    for a corrupted or truncated checkpoint, naming the bad file and the previous good
    checkpoint, and for arrays whose shapes or dtypes differ from ``like``'s.
    """
    path = os.fspath(path)
    try:
        manifest = verify(path)
    except CheckpointError as e:
        raise _with_previous(e, path) from None
    specs = manifest["leaves"]
    want = _leaf_specs(like)
    apath = os.path.join(path, ARRAYS)
    if len(want) != len(specs):
        raise CheckpointError(
            f"{apath}: holds {len(specs)} arrays, the model and optimizer to load into have "
            f"{len(want)}; build them with the configuration stored in {MANIFEST}"
        )
    for saved, expected in zip(specs, want, strict=True):
        if saved["shape"] != expected["shape"] or saved["dtype"] != expected["dtype"]:
            raise CheckpointError(
                f"{apath}: array {saved['path']} has shape {tuple(saved['shape'])} and dtype "
                f"{saved['dtype']}, but {expected['path']} of the model to load into has "
                f"shape {tuple(expected['shape'])} and dtype {expected['dtype']}; build it "
                f"with the configuration stored in {MANIFEST}"
            )
    with open(apath, "rb") as f:
        data = f.read()
    buffer = io.BytesIO(data)
    tree = eqx.tree_deserialise_leaves(buffer, like, filter_spec=_deserialiser(apath, specs))
    if buffer.tell() != len(data):
        raise CheckpointError(f"{apath}: {len(data) - buffer.tell()} bytes left over after reading")
    return tree, manifest


class Latest(NamedTuple):
    """What :func:`latest` found."""

    path: str
    manifest: dict[str, Any]
    skipped: list[tuple[str, str]]  # (path, reason) of newer checkpoints that are bad


def latest(directory: str | os.PathLike) -> Latest | None:
    """The newest checkpoint in ``directory`` that passes :func:`verify` (nothing is
    deserialised); ``None`` if the folder holds no checkpoint.

    Newer checkpoints that fail verification are skipped and reported in
    ``Latest.skipped``.  If every checkpoint is bad, raises :class:`CheckpointError`
    listing them.  A partially written checkpoint is never found: it only exists as a
    temporary folder until it is complete.
    """
    skipped: list[tuple[str, str]] = []
    for _, path in reversed(list_checkpoints(directory)):
        try:
            manifest = verify(path)
        except CheckpointError as e:
            skipped.append((path, str(e)))
            continue
        return Latest(path, manifest, skipped)
    if skipped:
        reasons = "; ".join(reason for _, reason in skipped)
        raise CheckpointError(f"no valid checkpoint in {os.fspath(directory)}: {reasons}")
    return None


class Restored(NamedTuple):
    """What :func:`restore_latest` found."""

    tree: Any
    manifest: dict[str, Any]
    path: str
    skipped: list[tuple[str, str]]  # (path, reason) of newer checkpoints that were bad


def restore_latest(directory: str | os.PathLike, like) -> Restored | None:
    """:func:`latest`, then :func:`load` it into ``like``; ``None`` if ``directory``
    holds no checkpoint."""
    found = latest(directory)
    if found is None:
        return None
    tree, manifest = load(found.path, like)
    return Restored(tree, manifest, found.path, found.skipped)
