"""JSON files read within bounds, array-file headers, paths kept inside their root, and room for a save."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import struct
import subprocess
import tempfile
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import limits
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.limits import (
    RANGE_SAMPLE_IMAGES,
    ArrayHeader,
    check_arrays,
    check_room,
    npy_headers,
    pixel_range,
    read_json_file,
    resolve_inside,
)

# Fixed examples (derandomize), no example database written into the checkout, no timing flakiness on a busy CI.
PROPERTY = settings(derandomize=True, max_examples=200, deadline=None, database=None)


# ---------------------------------------------------------------- JSON files


def test_read_json_file_checks_size_before_reading(tmp_path, monkeypatch):
    meta = tmp_path / "meta.json"
    meta.write_text('{"dataset": "mnist"}')
    assert read_json_file(meta) == {"dataset": "mnist"}
    meta.write_text(json.dumps({"history": [0.0] * 1000}))
    opened = []
    monkeypatch.setattr(limits, "open", lambda *a, **k: opened.append(a), raising=False)
    with pytest.raises(InvalidInput, match=f"meta.json has {meta.stat().st_size:,} bytes; the limit is 100$"):
        read_json_file(meta, max_bytes=100)
    assert opened == []


def test_read_json_file_refuses_deep_nan_missing_and_special_files(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InvalidInput, match="meta.json has 400,000 bytes; the limit is 100,000"):
        read_json_file(meta, max_bytes=100_000)
    with pytest.raises(InvalidInput, match="meta.json: the JSON document nests 200000 levels deep; the limit is 32"):
        read_json_file(meta)
    meta.write_text('{"loss": NaN}')
    with pytest.raises(InvalidInput, match="RFC 8259"):
        read_json_file(meta)
    with pytest.raises(NotFound):
        read_json_file(tmp_path / "absent.json")
    os.mkfifo(tmp_path / "fifo.json")  # open() on a FIFO without a writer would block forever
    with pytest.raises(InvalidInput, match="not a regular file"):
        read_json_file(tmp_path / "fifo.json")


def test_read_json_file_with_root_refuses_a_symlink_out(tmp_path):
    store, outside = tmp_path / "store", tmp_path / "secret.json"
    store.mkdir()
    outside.write_text('{"password": "x"}')
    (store / "meta.json").symlink_to(outside)
    with pytest.raises(InvalidInput, match="points outside store"):
        read_json_file(store / "meta.json", root=store)


# ---------------------------------------------------------------- array files


def write_npz_declaring(path: Path, shape: tuple[int, ...], dtype: str = "<f8", data: bytes = b"") -> None:
    """An .npz whose 'images' member declares ``shape`` but holds only ``data``: reading it would fail."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", header.getvalue() + data)
        archive.writestr("labels.npy", _npy_bytes(np.zeros(3, np.int64)))


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """The issue's bomb: 20,000 x 28 x 28 x 1 float64 zeros, 125 MB declared, ~120 kB on disk."""
    path = tmp_path_factory.mktemp("bomb") / "test_set.npz"
    np.savez_compressed(path, images=np.zeros((20_000, 28, 28, 1)), labels=np.zeros(20_000, np.int64))
    return path


def test_headers_of_npz_and_npy_without_the_data(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, images=np.zeros((4, 5, 5, 1), np.float32), labels=np.arange(4), raw=np.array(7, np.uint8))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("notes.txt", b"hello")
    headers = npy_headers(path)
    assert headers == {
        "images": ArrayHeader((4, 5, 5, 1), np.dtype(np.float32), 400),
        "labels": ArrayHeader((4,), np.dtype(np.int64), 32),
        "raw": ArrayHeader((), np.dtype(np.uint8), 1),
        "notes.txt": ArrayHeader((5,), np.dtype(np.uint8), 5),  # np.load would hand these bytes over
    }
    assert set(headers) == set(np.load(path).files)
    np.save(tmp_path / "test_imgs.npy", np.zeros((2, 3), ">f4"))
    assert npy_headers(tmp_path / "test_imgs.npy") == {"test_imgs": ArrayHeader((2, 3), np.dtype(">f4"), 24)}
    assert check_arrays(path, 10_000) == headers


def test_the_bomb_is_refused_without_reading_its_data(bomb):
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as info:
            check_arrays(bomb, 64_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # numpy reports its buffers to tracemalloc: the 125 MB array was never allocated
    assert str(info.value) == (
        "test_set.npz: array 'images' declares 20000×28×28×1 float64 = 125.4 MB; the arrays together need "
        "125.6 MB, the limit is 64.0 MB"
    )


def test_a_declared_petabyte_is_refused_from_the_header_alone(tmp_path):
    path = tmp_path / "test_set.npz"
    write_npz_declaring(path, (10**9, 1000, 1000, 1), data=b"\0" * 8)  # reading the data would fail: it is absent
    with pytest.raises(InvalidInput, match=r"'images' declares 1000000000×1000×1000×1 float64 = 8000.0 TB"):
        check_arrays(path, 10**9)


def test_a_negative_declared_size_cannot_offset_a_bomb(tmp_path):
    path = tmp_path / "test_set.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (-10**12,)})
    write_npz_declaring(path, (10**6, 100))  # 800 MB declared ...
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("offset.npy", header.getvalue())  # ... minus 8 TB would look small
    with pytest.raises(InvalidInput, match="negative dimension"):
        check_arrays(path, 10**6)


def test_object_arrays_and_broken_files_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, images=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InvalidInput, match="'images' has dtype object, which needs pickle"):
        check_arrays(path, 10**9)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidInput, match="cannot read the arrays in junk.npz"):
        check_arrays(tmp_path / "junk.npz", 10**9)
    truncated = tmp_path / "cut.npy"
    truncated.write_bytes(_npy_bytes(np.zeros(3))[:20])
    with pytest.raises(InvalidInput, match="cannot read the arrays in cut.npy"):
        npy_headers(truncated)
    with pytest.raises(NotFound):
        npy_headers(tmp_path / "absent.npz")


def npy_declaring(shape: tuple[int, ...], dtype: str = "<f4", data: bytes = b"") -> bytes:
    """.npy bytes whose header declares ``shape`` of ``dtype`` but which hold only ``data``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + data


def zip_of(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A zip of ``members`` in that order (the same name twice too: zipfile only warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return path


def test_numpy_loads_the_raw_member_so_a_decoy_npy_beside_it_is_refused(tmp_path):
    # numpy's own choice, on arrays small enough to load: a raw member "images" wins over "images.npy"
    small = zip_of(tmp_path / "small.npz", [("images", _npy_bytes(np.zeros(3, np.float32))),
                                            ("images.npy", _npy_bytes(np.zeros(2, np.float32)))])
    with np.load(small, allow_pickle=False) as data:
        assert data["images"].shape == (3,)
    with pytest.raises(InvalidInput, match="members 'images' and 'images.npy' would both load as 'images'"):
        npy_headers(small)
    # the file: 640,000 x 28 x 28 x 1 float32 (2 GB) declared by the raw member, a decoy after it
    bomb = zip_of(tmp_path / "test_set.npz", [("images", npy_declaring((640_000, 28, 28, 1))),
                                              ("images.npy", _npy_bytes(np.zeros((2, 28, 28, 1), np.float32))),
                                              ("labels.npy", _npy_bytes(np.zeros(2, np.int64)))])
    with pytest.raises(InvalidInput, match="would both load as 'images'"):
        check_arrays(bomb, 256 * 10**6)


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([("images.npy", b"1"), ("images.npy", b"2")], "two members are named 'images.npy'"),
        ([("x.npy", b"1"), ("x.npy.npy", b"2")], "members 'x.npy' and 'x.npy.npy' would both load as 'x.npy'"),
    ],
)
def test_member_names_that_leave_it_open_what_numpy_loads_are_refused(tmp_path, members, reason):
    with pytest.raises(InvalidInput, match=re.escape(reason)):
        npy_headers(zip_of(tmp_path / "set.npz", members))


def test_a_file_is_read_as_numpy_reads_it_whatever_is_appended(tmp_path):
    # .npy data in front of a small zip: zipfile finds the zip (its directory is at the end), np.load reads the
    # .npy (it looks at the first bytes), so the .npy header is what is checked
    archive = zip_of(tmp_path / "inner.npz", [("images.npy", _npy_bytes(np.zeros(2, np.float32)))]).read_bytes()
    disguised = tmp_path / "test_set.npz"
    disguised.write_bytes(npy_declaring((640_000, 28, 28, 1)) + archive)
    assert zipfile.is_zipfile(disguised)
    assert npy_headers(disguised) == {"test_set": ArrayHeader((640_000, 28, 28, 1), np.dtype("<f4"), 2_007_040_000)}
    with pytest.raises(InvalidInput, match="declares 640000×28×28×1 float32"):
        check_arrays(disguised, 256 * 10**6)
    (tmp_path / "neither.npz").write_bytes(b"GIF89a" + archive)
    with pytest.raises(InvalidInput, match="neither a zip"):
        npy_headers(tmp_path / "neither.npz")


def npy_with_header(text: str | bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    """.npy bytes with ``text`` as the header (its length field as numpy writes it for ``version``)."""
    header = text.encode("utf-8") if isinstance(text, str) else text
    size = struct.pack("<H" if version[0] == 1 else "<I", len(header))
    return np.lib.format.MAGIC_PREFIX + bytes(version) + size + header


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '''<f8\n",  # numpy re-reads a v1 header that does not parse with tokenize: TokenError
        "(" * 300 + "\n",  # TokenError too (too deep for the parser)
        "-" * 5000 + "1\n",  # RecursionError
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)*3}\n",  # an expression, not a literal
        "{'descr': {'names': 1}, 'fortran_order': False, 'shape': (1,)}\n",  # a descr numpy cannot unpack
        "\xff\xfe",
    ],
    ids=["unterminated string", "300 parentheses", "5000 signs", "expression", "odd descr", "not text"],
)
def test_a_malformed_header_of_any_kind_is_refused_with_the_reason(tmp_path, header):
    (tmp_path / "x.npy").write_bytes(npy_with_header(header))
    zip_of(tmp_path / "test_set.npz", [("images.npy", npy_with_header(header))])
    with pytest.raises(InvalidInput, match=r"cannot read the arrays in x.npy: malformed .npy header"):
        npy_headers(tmp_path / "x.npy")
    with pytest.raises(InvalidInput, match=r"test_set.npz: member 'images.npy': malformed .npy header"):
        check_arrays(tmp_path / "test_set.npz", 10**9)


_HEADER_PIECES = st.one_of(
    st.sampled_from(["'<f4'", "'|u1'", "'>i8'", "'O'", "'V0'", "'<U0'", "[('a', '<f8')]", "[('a', '<f8', (2, 3))]",
                     "True", "False", "None", "(3, 4)", "(0,)", "()", "(-1,)", "(10**9,)", "(1e3,)", "(True, 2)",
                     "'''", "(((", "-" * 3000 + "1", "{", "}", "b'x'", "[]", "'\\x00'", "9" * 5000]),
    st.text(max_size=12),
)
_VALID_PIECES = (
    st.sampled_from(["'<f4'", "'|u1'", "'>i8'", "'|b1'", "'<c16'", "'O'", "'V0'", "'<U3'",
                     "[('a', '<f8'), ('b', '|u1')]", "[('a', '<f8', (2, 3))]"]),
    st.sampled_from(["True", "False"]),
    st.lists(st.integers(-2, 60), max_size=4).map(lambda dims: repr(tuple(dims))),
)
_HEADERS = st.one_of(
    st.builds(lambda descr, order, shape: f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}\n",
              *_VALID_PIECES),
    st.builds(lambda descr, order, shape, end: f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
              f"{end}", _HEADER_PIECES, _HEADER_PIECES, _HEADER_PIECES, st.sampled_from(["\n", "", "    \n", "x"])),
    st.text(max_size=200),
    st.binary(max_size=200),
)


@PROPERTY
@given(header=_HEADERS, version=st.sampled_from([(1, 0), (2, 0), (1, 0), (3, 0), (0, 1), (255, 255)]))
def test_any_header_is_refused_with_invalid_input_or_declares_what_numpy_loads(header, version):
    data = npy_with_header(header, version)
    with tempfile.TemporaryDirectory() as folder:
        single = Path(folder) / "x.npy"
        single.write_bytes(data)
        for path in (single, zip_of(Path(folder) / "x.npz", [("x.npy", data)])):
            try:
                declared = npy_headers(path)["x"]
            except InvalidInput as exc:
                assert str(exc).startswith(f"cannot read the arrays in {path.name}: ")
                continue
            if declared.dtype.hasobject or declared.nbytes > 10**6:
                continue  # check_arrays refuses the first, the size limit the second: nothing is loaded
            # independently: numpy loads the file with the declared data appended, as declared
            full = data + b"\0" * declared.nbytes
            if path.suffix == ".npz":
                zip_of(path, [("x.npy", full)])
            else:
                path.write_bytes(full)
            with open(path, "rb") as handle:
                loaded = np.load(handle, allow_pickle=False)
                array = loaded["x"] if path.suffix == ".npz" else loaded
                assert (array.shape, array.dtype, array.nbytes) == (declared.shape, declared.dtype, declared.nbytes)


# ---------------------------------------------------------------- paths


def test_resolve_inside_keeps_paths_in_their_root(tmp_path):
    store, outside = tmp_path / "store", tmp_path / "private"
    (store / "good").mkdir(parents=True)
    outside.mkdir()
    (outside / "meta.json").write_text("{}")
    (store / "escape").symlink_to(outside, target_is_directory=True)
    (store / "good" / "meta.json").symlink_to(outside / "meta.json")
    (store / "good" / "inner").symlink_to(store / "good")  # a symlink that stays inside is fine

    assert resolve_inside(store, "good") == (store / "good").resolve()
    assert resolve_inside(store, "good/inner") == (store / "good").resolve()
    for bad in ("escape", "escape/meta.json", "good/meta.json", "../private", "/etc/passwd", str(outside)):
        with pytest.raises(InvalidInput, match="points outside store") as info:
            resolve_inside(store, bad)
        if "private" not in bad:
            assert "private" not in str(info.value)  # where a symlink leads is never told
    with pytest.raises(NotFound):
        resolve_inside(store, "absent")
    assert resolve_inside(store, "new-model", must_exist=False) == store.resolve() / "new-model"
    with pytest.raises(InvalidInput):
        resolve_inside(store, "../new", must_exist=False)


def test_resolve_inside_turns_os_errors_into_invalid_input(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for bad in ("x" * 50_000, "a\0b", "loop"):
        with pytest.raises(InvalidInput, match="not a usable path") as info:
            resolve_inside(tmp_path, bad)
        assert len(str(info.value)) < 200


# ---------------------------------------------------------------- room for a save


def test_check_room_creates_the_folder_and_reports_free_space(tmp_path):
    folder = tmp_path / "store" / "sub"
    free = check_room(folder, 1000)
    assert folder.is_dir() and free > 1000 and os.listdir(folder) == []  # the probe file is gone
    with pytest.raises(Conflict, match=r"sub has .* free; saving needs 1000.0 TB"):
        check_room(folder, 10**15)


def test_check_room_reports_an_uncreatable_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(Conflict, match="cannot create .*file/sub"):
        check_room(tmp_path / "file" / "sub", 1)


@pytest.mark.parametrize(("code", "words"), [(errno.EROFS, "Read-only file system"), (errno.ENOSPC, "No space")])
def test_check_room_reports_a_failing_write(tmp_path, monkeypatch, code, words):
    def failing(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", failing)
    with pytest.raises(Conflict, match=f"cannot write in .*: {words}"):
        check_room(tmp_path, 1)


@pytest.fixture
def tmpfs(tmp_path):
    """A 64 kB tmpfs mounted at a fresh folder (root only): real EROFS and ENOSPC, which chmod cannot give root."""
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_check_room_on_a_real_read_only_filesystem(tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    with pytest.raises(Conflict, match=f"^{tmpfs} is on a read-only file system$"):
        check_room(tmpfs, 1)
    with pytest.raises(Conflict, match="cannot create .*: Read-only file system"):
        check_room(tmpfs / "store", 1)


def test_check_room_on_a_real_full_filesystem(tmpfs):
    with pytest.raises(Conflict, match=r"has 65.5 kB free; saving needs 1.0 MB"):
        check_room(tmpfs, 1_000_000)
    with open(tmpfs / "filler", "wb", buffering=0) as handle, pytest.raises(OSError):
        while True:
            handle.write(b"\0" * 4096)
    with pytest.raises(Conflict, match=f"cannot write in {tmpfs}: No space left on device"):
        check_room(tmpfs, 1)


def test_format_bytes():
    assert [limits.format_bytes(n) for n in (0, 999, 1000, 5_200_000_000, 3 * 10**15)] == [
        "0 B", "999 B", "1.0 kB", "5.2 GB", "3000.0 TB"
    ]


def test_the_pixel_range_is_read_from_the_first_images_a_chunk_at_a_time(tmp_path):
    rng = np.random.default_rng(4)
    images = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.float32, shape=(1500, 5, 5, 1))
    images[:] = rng.random(images.shape, dtype=np.float32)
    images[3, 0, 0, 0], images[700, 1, 1, 0], images[900, 2, 2, 0] = np.nan, np.inf, -7.0
    images[1200] = 99.0  # past the first 1,000: not read
    images.flush()
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    first = np.asarray(mapped[:RANGE_SAMPLE_IMAGES], dtype=np.float64)
    finite = first[np.isfinite(first)]
    assert pixel_range(mapped) == (float(finite.min()), float(finite.max())) == (-7.0, float(finite.max()))
    assert pixel_range(mapped, most=3) == (float(mapped[:3].min()), float(mapped[:3].max()))
    assert pixel_range(np.full((2, 3, 3, 1), np.nan, np.float32)) is None
