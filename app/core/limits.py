"""Strict parsing and resource checks: every outside value is bounded before it can cost memory, time or a 500.

Pure functions, no Dash or Flask: the API and the pages call them and map the :mod:`app.core.errors` they raise.

- :func:`parse_int`: integers from query strings and JSON, ASCII digits only, range-checked.
- :func:`loads_json` / :func:`read_json_file`: JSON with a size and nesting bound checked *before* parsing, and
  RFC 8259 numbers only (no ``NaN``/``Infinity``); :func:`json_safe` makes our own responses RFC 8259 too.
- :func:`npy_headers` / :func:`check_arrays`: the declared size of every array in an ``.npz``/``.npy`` read from its
  header, so a 2 MB compressed file that expands to 2.5 GB is refused without reading its data; the file is read
  as ``np.load`` reads it, member by member, and names that leave it open which member it loads are refused.
- :func:`resolve_inside`: a path with its symlinks resolved, refused if it leaves its root folder.
- :func:`check_room`: a folder is writable and has the free space a save needs, checked before hours of training.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from app.core.errors import Conflict, InvalidInput, NotFound

# 18 digits stay below 2**63 (9.2e18), so every accepted value fits the int64 of numpy, SQLite and TensorFlow.
MAX_INT_DIGITS = 18
MAX_INT = 10**MAX_INT_DIGITS - 1
# re's [0-9] is ASCII only, unlike \d or int(), which accept "１" (full-width) and "1_0"; fullmatch, not $, so a
# trailing newline is refused too.
_INT_TEXT = re.compile(rf"[+-]?[0-9]{{1,{MAX_INT_DIGITS}}}")

# Our documents (meta.json, a training config) nest 4 levels; Python's json recurses once per level and raises
# RecursionError near 1,000, which is why the depth is checked on the text before json.loads sees it.
MAX_JSON_DEPTH = 32
# A meta.json with 500 epochs of history is ~60 kB; a training config well under 10 kB.
MAX_JSON_BYTES = 1_000_000

# A JSON string (escapes honoured, linear: no nested quantifier can backtrack), or an unterminated string, which
# swallows the rest of the text: json.loads then reports it as malformed.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"[\s\S]*')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def shown(raw: Any, limit: int = 40) -> str:
    """``repr(raw)`` cut to ``limit`` characters: error messages must stay short whatever the input was.

    Containers show their type only (their repr could be megabytes), and so does an int too long to print.
    """
    if not isinstance(raw, int | float | str | bytes | type(None)):
        return type(raw).__name__
    try:
        text = repr(raw)
    except ValueError:  # an int beyond Python's 4,300-digit printing limit
        return "a very long number"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f" between {low} and {high}"
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def parse_int(raw: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """Parse an integer parameter strictly.

    Accepted: a Python ``int`` (not ``bool``), or a ``str`` of an optional sign and 1-18 ASCII digits. Refused:
    full-width or other Unicode digits, ``1_0``, surrounding spaces, ``1.0``, ``""``, and any value beyond
    ±(10**18 - 1), so ``9223372036854775808`` never reaches int64 code.

    Args:
        raw: the value as received (query-string text or a decoded JSON value).
        name: the parameter's name, used in the error message.
        low, high: inclusive bounds; None leaves that side open.

    Returns:
        The integer.

    Raises:
        InvalidInput: a sentence naming the parameter and the valid range.
    """
    expected = f"{name} must be an integer{_range_text(low, high)}"
    if isinstance(raw, bool):
        raise InvalidInput(f"{expected}, got {shown(raw)}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and _INT_TEXT.fullmatch(raw):
        value = int(raw)
    else:
        raise InvalidInput(f"{expected}, got {shown(raw)}")
    if abs(value) > MAX_INT or (low is not None and value < low) or (high is not None and value > high):
        raise InvalidInput(f"{expected}, got {shown(value)}")
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidInput(f"JSON does not allow {name} (RFC 8259): send null or a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 is valid JSON syntax but overflows to inf
        raise InvalidInput(f"the JSON number {shown(text)} is too large for a float")
    return value


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON text, ignoring brackets inside strings.

    Linear time and no recursion: strings are removed by one regular expression, then the brackets left are
    counted with a cumulative sum.

    Args:
        text: JSON text (need not be valid: malformed text gives some depth and json.loads rejects it later).

    Returns:
        The maximal depth (0 for a scalar).
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _has_lone_surrogate(value: Any) -> bool:
    """True if a decoded JSON value holds a string with an unpaired ``\\ud800``-style escape (not valid Unicode)."""
    stack = [value]
    while stack:  # iterative: the value is depth-bounded already, but a walk should never depend on that
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def loads_json(data: str | bytes, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Decode JSON from an untrusted source, refusing what could exhaust memory or the stack.

    Checks, in order: size (bytes for ``bytes``, characters for an already decoded ``str``), UTF-8, nesting depth
    (on the text, before parsing), then parsing with RFC 8259 numbers only: ``NaN``, ``Infinity``, ``-Infinity``
    and numbers that overflow a float are refused, as are strings with unpaired surrogate escapes (they cannot be
    written back as UTF-8).

    Args:
        data: the document.
        max_depth: deepest allowed nesting of arrays and objects.
        max_bytes: largest allowed document.

    Returns:
        The decoded value.

    Raises:
        InvalidInput: saying which check failed.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > max_bytes:
            raise InvalidInput(f"the JSON document has {len(data):,} bytes; the limit is {max_bytes:,}")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the JSON document is not UTF-8 (byte {exc.start})") from exc
    elif isinstance(data, str):
        if len(data) > max_bytes:
            raise InvalidInput(f"the JSON document has {len(data):,} characters; the limit is {max_bytes:,}")
        if _SURROGATE.search(data):  # a str can hold them (surrogateescape); they cannot be written back as UTF-8
            raise InvalidInput("the JSON document holds an unpaired surrogate (not Unicode text)")
        text = data
    else:
        raise InvalidInput(f"a JSON document must be text or bytes, got {type(data).__name__}")
    depth = json_depth(text)
    if depth > max_depth:
        raise InvalidInput(f"the JSON document nests {depth} levels deep; the limit is {max_depth}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidInput:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digits limit; RecursionError as a backstop
        raise InvalidInput(f"invalid JSON: {str(exc)[:200]}") from exc
    if "\\u" in text and _has_lone_surrogate(value):
        raise InvalidInput("the JSON document holds a string with an unpaired surrogate escape (not Unicode text)")
    return value


def read_json_file(
    path: str | os.PathLike[str],
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
    root: str | os.PathLike[str] | None = None,
) -> Any:
    """Read a JSON file such as meta.json, checking its size with ``stat`` before reading a byte.

    Args:
        path: the file.
        max_bytes, max_depth: as in :func:`loads_json`.
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


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None and numpy values turned into Python ones.

    ``json.dumps`` writes NaN as a bare ``NaN``, which is not JSON (RFC 8259) and breaks ``JSON.parse`` in the
    browser; a test set with NaN pixels or a diverged loss would produce it.

    Args:
        value: dicts, lists, tuples, floats, numpy scalars and arrays, nested (as our responses are, a few levels).

    Returns:
        The same structure with lists for tuples and arrays, None for NaN and ±inf.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            as_objects = value.astype(object)
            as_objects[~np.isfinite(value)] = None
            return as_objects.tolist()
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, dict):
        return {json_safe(key) if isinstance(key, np.generic) else key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


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
