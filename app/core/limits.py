"""Resource checks: every outside file or save is bounded before it can cost memory, disk, time or a 500.

Pure functions, no Dash or Flask: the API and the pages call them and map the :mod:`app.core.errors` they raise.
Turning text into values is :mod:`app.core.parsing`'s job.

- :func:`read_json_file`: a JSON file (meta.json) checked with ``stat`` before a byte is read, then parsed by
  :func:`app.core.parsing.loads_json`.
- :func:`npy_headers` / :func:`check_arrays`: the declared size of every array in an ``.npz``/``.npy`` read from its
  header, so a 2 MB compressed file that expands to 2.5 GB is refused without reading its data; the file is read
  as ``np.load`` reads it, member by member, and names that leave it open which member it loads are refused.
- :func:`resolve_inside`: a path with its symlinks resolved, refused if it leaves its root folder.
- :func:`format_bytes`: a size for messages.
- :func:`check_room`: a folder is writable and has the free space a save needs, checked before hours of training.
- :func:`write_arrays`: arrays saved as an ``.npz`` that readers see whole or not at all.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.parsing import MAX_JSON_BYTES, MAX_JSON_DEPTH, loads_json, shown


def read_json_file(
    path: str | os.PathLike[str],
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    root: str | os.PathLike[str] | None = None,
) -> Any:
    """Read a JSON file such as meta.json, checking its size with ``stat`` before reading a byte.

    Args:
        path: the file.
        max_bytes, max_depth: as in :func:`app.core.parsing.loads_json`.
        root: if given, the file (symlinks resolved) must lie inside this folder (see :func:`resolve_inside`).

    Returns:
        The decoded value.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: not a regular file (a FIFO would block, /dev/zero never ends), too large, unreadable, or
            invalid JSON.
    """
    path = resolve_inside(root, path) if root is not None else Path(path)
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise NotFound(f"{path.name} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{path.name} is not a regular file")
    if info.st_size > max_bytes:
        raise InvalidInput(f"{path.name} has {info.st_size:,} bytes; the limit is {max_bytes:,}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat: never read more than the limit
    except OSError as exc:
        raise InvalidInput(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    try:
        return loads_json(data, max_depth=max_depth, max_bytes=max_bytes)
    except InvalidInput as exc:
        raise InvalidInput(f"{path.name}: {exc}") from exc


@dataclass(frozen=True)
class ArrayHeader:
    """What an array file declares about itself, read without its data.

    Attributes:
        shape: the declared shape (raw bytes members of an .npz: their length).
        dtype: the declared dtype (raw bytes members: uint8).
        nbytes: the memory loading it takes: product of the shape times the item size.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int

    def describe(self) -> str:
        """e.g. ``20000×28×28×1 float64 = 125.4 MB``."""
        return f"{'×'.join(str(d) for d in self.shape) or 'scalar'} {self.dtype} = {format_bytes(self.nbytes)}"


# What np.load reads first to tell the two formats apart (numpy's own test): a zip's local header, or the empty
# zip's end record; anything else must be .npy.
ZIP_PREFIXES = (b"PK\x03\x04", b"PK\x05\x06")


def _read_header(handle: IO[bytes]) -> ArrayHeader:
    """Parse the .npy header at the handle's position; numpy checks the header's own size (10 kB max).

    Any failure of numpy's parser is a ValueError here: it evaluates the header as a Python literal and, for
    version 1 and 2 headers that do not parse, tokenizes it, so hostile headers also raise ``TokenError``,
    ``RecursionError`` (thousands of nested signs), ``SyntaxError`` or ``TypeError``, none of them a ValueError.
    """
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:  # 3.0 only differs by UTF-8 field names, which a test set never has; numpy offers no public reader
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    except (OSError, EOFError):
        raise
    except ValueError as exc:
        raise ValueError(f"malformed .npy header: {str(exc)[:160]}") from exc
    except Exception as exc:  # noqa: BLE001 - see the docstring: the parser's failures have many types
        raise ValueError(f"malformed .npy header ({type(exc).__name__}: {str(exc)[:120]})") from exc
    if any(d < 0 for d in shape):  # numpy's header parser accepts them; a negative size would offset a bomb's
        raise ValueError(f"negative dimension in the declared shape {shape}")
    return ArrayHeader(tuple(int(d) for d in shape), dtype, math.prod(shape) * dtype.itemsize)


def _npz_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The member ``np.load(...)[key]`` opens for each key of ``.files``, refusing names that make it ambiguous.

    numpy answers a key with the member of exactly that name if there is one, else with ``key + ".npy"``: a raw
    member ``images`` wins over ``images.npy``, while ``.files`` names both ``images``. Checking one and loading
    the other would let a small decoy stand for a huge array, so two members that a key could mean (the same name
    twice, or ``x`` beside ``x.npy``) make the file refused.
    """
    by_exact: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.filename in by_exact:
            raise ValueError(f"two members are named {shown(info.filename, 60)}")
        by_exact[info.filename] = info
    members: dict[str, zipfile.ZipInfo] = {}
    for name, info in by_exact.items():
        key = name.removesuffix(".npy")
        if key != name and key in by_exact:
            raise ValueError(f"members {shown(key, 60)} and {shown(name, 60)} would both load as {shown(key, 60)}")
        members[key] = info
    return members


def npy_headers(path: str | os.PathLike[str]) -> dict[str, ArrayHeader]:
    """The declared shape, dtype and size of every array in an ``.npz`` (or of a single ``.npy``), data unread.

    The file is read as ``np.load`` reads it: as a zip if it starts like one, else as ``.npy`` (a file with an
    ``.npy`` header in front and a zip directory at its end is ``.npy`` to numpy, so it is to this check).
    Members are named as ``np.load(...).files`` names them (``images.npy`` -> ``images``), each with the header of
    the member ``np.load(...)[name]`` reads; a member that is not ``.npy`` data is what ``np.load`` would return
    as raw bytes: it is listed with its uncompressed size, which the zip directory declares and zipfile enforces
    while reading.

    Args:
        path: an ``.npz`` (zip) or ``.npy`` file.

    Returns:
        ``{name: ArrayHeader}``; a single ``.npy`` gives one entry named after the file's stem.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: not a readable zip or .npy, a malformed header, or member names that leave it open which
            member numpy would load.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path.name} does not exist")
    headers = {}
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(np.lib.format.MAGIC_PREFIX))
        if start.startswith(ZIP_PREFIXES):
            with zipfile.ZipFile(path) as archive:
                for name, info in _npz_members(archive).items():
                    with archive.open(info) as member:  # decompresses only the first block
                        is_npy = member.read(6) == np.lib.format.MAGIC_PREFIX
                    if not is_npy:
                        headers[name] = ArrayHeader((info.file_size,), np.dtype(np.uint8), info.file_size)
                        continue
                    with archive.open(info) as member:
                        try:
                            headers[name] = _read_header(member)
                        except ValueError as exc:
                            raise ValueError(f"member {shown(info.filename, 60)}: {exc}") from exc
        elif start == np.lib.format.MAGIC_PREFIX:
            with open(path, "rb") as handle:
                headers[path.stem] = _read_header(handle)
        else:
            raise ValueError("neither a zip (.npz) nor .npy data")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        # NotImplementedError: a zip compression method zipfile lacks
        raise InvalidInput(f"cannot read the arrays in {path.name}: {str(exc)[:240]}") from exc
    return headers


def check_arrays(path: str | os.PathLike[str], max_bytes: int) -> dict[str, ArrayHeader]:
    """Refuse an array file whose arrays would take more than ``max_bytes`` once loaded, or that needs pickle.

    Args:
        path: an ``.npz`` or ``.npy`` file.
        max_bytes: the most memory its arrays may declare together.

    Returns:
        The headers (see :func:`npy_headers`).

    Raises:
        InvalidInput: naming the largest array and its declared size, or the array with an object dtype.
    """
    headers = npy_headers(path)
    name = Path(path).name
    for key, header in headers.items():
        if header.dtype.hasobject:
            raise InvalidInput(f"{name}: array {key!r} has dtype {header.dtype}, which needs pickle; not loaded")
    total = sum(header.nbytes for header in headers.values())
    if total > max_bytes:
        key, biggest = max(headers.items(), key=lambda item: item[1].nbytes)
        raise InvalidInput(
            f"{name}: array {key!r} declares {biggest.describe()}; the arrays together need {format_bytes(total)}, "
            f"the limit is {format_bytes(max_bytes)}"
        )
    return headers


def resolve_inside(
    root: str | os.PathLike[str], path: str | os.PathLike[str], must_exist: bool = True
) -> Path:
    """``path`` (relative to ``root`` unless absolute) with symlinks resolved, refused if it leaves ``root``.

    A model folder symlinked to ``/etc``, a meta.json symlinked to a private file, ``../`` tricks and absolute
    paths all resolve to somewhere outside ``root`` and are refused. The message never shows the resolved target.

    Args:
        root: the folder that must contain the result (itself resolved, so a store reached through a symlink works).
        path: the path asked for.
        must_exist: refuse a path that does not exist (else only its location is checked, e.g. before creating it).

    Returns:
        The resolved absolute path.

    Raises:
        NotFound: ``must_exist`` and nothing is there.
        InvalidInput: the path leaves ``root``, loops, is too long (ENAMETOOLONG) or holds a NUL byte.
    """
    label = shown(str(path), 60)
    try:
        base = Path(root).resolve()
        resolved = (base / path).resolve(strict=must_exist)
    except FileNotFoundError as exc:
        raise NotFound(f"{label} does not exist") from exc
    except (OSError, RuntimeError, ValueError) as exc:  # ENAMETOOLONG, ELOOP (RuntimeError before 3.13), NUL
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise InvalidInput(f"{label} is not a usable path: {reason}") from exc
    if not resolved.is_relative_to(base):
        raise InvalidInput(f"{label} points outside {base.name or base}")
    return resolved


def format_bytes(n: int | float) -> str:
    """A size for messages, in decimal units: ``512 B``, ``4.7 kB``, ``5.2 GB``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def check_room(folder: str | os.PathLike[str], needed_bytes: int) -> int:
    """Check that ``folder`` can take a save of ``needed_bytes``, before work that would be lost if it cannot.

    The folder is created if absent; ``os.access`` is asked (it sees permissions and read-only mounts, but says yes
    to root whatever the mode bits), then a temporary file is really written, synced and removed (only a write
    finds ENOSPC, a full quota, or a folder root may not write in); finally ``shutil.disk_usage`` must show
    ``needed_bytes`` free.

    Args:
        folder: where the save will go.
        needed_bytes: the expected size of what will be written.

    Returns:
        The free bytes in ``folder``.

    Raises:
        Conflict: naming the folder and the cause (cannot create, not writable, read-only, free vs needed).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Conflict(f"cannot create {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):  # access() also answers EROFS: say which cause it is
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            raise Conflict(f"{folder} is on a read-only file system")
        raise Conflict(f"{folder} is not writable by this process")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".room-probe-") as probe:
            probe.write(b"\0")
            probe.flush()
            os.fsync(probe.fileno())  # tmpfs and ext4 report ENOSPC on write or flush; fsync catches delayed ones
    except OSError as exc:
        raise Conflict(f"cannot write in {folder}: {exc.strerror or exc}") from exc
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise Conflict(f"{folder} has {format_bytes(free)} free; saving needs {format_bytes(needed_bytes)}")
    return free


def write_arrays(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    """Save ``arrays`` as an uncompressed ``.npz`` at ``path`` atomically: written to a temporary file in the same
    folder, flushed to disk, then renamed, so a reader (another worker, after a crash or a kill) never sees half a
    file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# A test set's pixel range ("black" and "white" for attribution and for drawn images) is read from at most this many
# of its first images, a few at a time: all of the blog's 1,000; 0.6 GB of a 224 px set of 10,000, not 6 GB.
RANGE_SAMPLE_IMAGES = 1000
RANGE_CHUNK_IMAGES = 64


def pixel_range(images: np.ndarray, most: int = RANGE_SAMPLE_IMAGES) -> tuple[float, float] | None:
    """The smallest and largest finite value of the first ``most`` images [N, ...], read
    :data:`RANGE_CHUNK_IMAGES` at a time (a memory-mapped test set is never read whole nor copied); None when none
    is finite."""
    low, high = math.inf, -math.inf
    for start in range(0, min(len(images), most), RANGE_CHUNK_IMAGES):
        block = np.asarray(images[start:min(start + RANGE_CHUNK_IMAGES, most)])
        finite = block[np.isfinite(block)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return None if low > high else (low, high)
