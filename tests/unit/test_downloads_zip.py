"""The deterministic zip of a directory product: what zipfile and unzip read, the length and MD5 the catalog
stores equal to the bytes served, any byte range equal to the same slice of the whole, zip64 where needed."""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from shared.catalog.archives import ArchiveChanged, ArchiveIndex, build_index
from shared.catalog.odata.download import Unsatisfiable, archive_bytes, byte_range
from shared.catalog.ziplayout import LIMIT32, Member, layout
from shared.settings import Settings
from shared.storage.objects import ObjectStore

NAME = "S1A_IW_GRDH_1SDV_20240501T120000_20240501T120025_053000_066A1B_ABCD.SAFE"
BUCKET = "rs-zip"
PREFIX = f"inbox-a/{NAME}/"


def _contents() -> dict[str, bytes]:
    rng = random.Random(18)
    return {
        "manifest.safe": b"<?xml version='1.0'?><xfdu/>\n",
        "annotation/s1a-iw-grd-vv.xml": rng.randbytes(3000),
        "measurement/s1a-iw-grd-vv.tiff": rng.randbytes(70_000),
        "preview/empty.kml": b"",  # an empty member has no data segment
        "preview/quick-look.png": rng.randbytes(1234),
        "support/h\u00e9las.xsd": b"<xs/>",  # a non-ASCII name: the UTF-8 flag
    }


@pytest.fixture
def indexed() -> Iterator[tuple[ObjectStore, ArchiveIndex, dict[str, bytes]]]:
    with mock_aws():
        store = ObjectStore(Settings(s3_access_key="testing", s3_secret_key="testing"))
        store.ensure_bucket(BUCKET)
        contents = _contents()
        for path, data in contents.items():
            store.put(BUCKET, PREFIX + path, data)
        listing = sorted(store.list(BUCKET, PREFIX), key=lambda o: o.key)
        yield store, build_index(store, "id-1", NAME, BUCKET, listing, PREFIX), contents


def _whole(store: ObjectStore, index: ArchiveIndex) -> bytes:
    return b"".join(archive_bytes(index, store))


def test_the_served_zip_has_the_length_and_md5_the_catalog_stores(indexed, tmp_path: Path) -> None:
    store, index, contents = indexed
    data = _whole(store, index)
    assert len(data) == index.length
    assert hashlib.md5(data).hexdigest() == index.md5
    assert data == _whole(store, index)  # the same bytes on every request
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [f"{NAME}/{p}" for p in sorted(contents)]
        for path, expected in contents.items():
            info = archive.getinfo(f"{NAME}/{path}")
            assert archive.read(info) == expected
            assert info.compress_type == zipfile.ZIP_STORED and info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.flag_bits & 0x08 == 0  # no data descriptor: sizes and CRC in the local header
            assert info.external_attr >> 16 == 0o100644
    (tmp_path / "p.zip").write_bytes(data)
    tested = subprocess.run(["unzip", "-t", str(tmp_path / "p.zip")], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "No errors detected" in tested.stdout


def test_every_range_between_boundaries_is_the_same_slice_of_the_whole(indexed) -> None:
    store, index, _ = indexed
    whole = _whole(store, index)
    plan = index.layout()
    points = sorted({p for s in plan.segments for p in (s.offset - 1, s.offset, s.offset + 1)} | {plan.length})
    points = [p for p in points if 0 <= p <= plan.length]
    checked = 0
    for start in points:
        for stop in points:
            if start < stop:
                assert b"".join(archive_bytes(index, store, start, stop)) == whole[start:stop], (start, stop)
                checked += 1
    assert checked > 300
    # A resumed download: cut anywhere, the rest asked from there, reassembles the same bytes.
    cut = random.Random(3).randrange(1, plan.length)
    assert whole[:cut] + b"".join(archive_bytes(index, store, cut)) == whole


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 100)),
        ("bytes=100-", (100, 1000)),
        ("bytes=-10", (990, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=990-5000", (990, 1000)),
        ("bytes=999-999", (999, 1000)),
        ("bytes = 5-6", (5, 7)),
        ("bytes=0-1,5-6", None),  # several ranges: the whole is answered
        ("bytes=9-3", None),  # invalid: ignored
        ("items=0-1", None),
        ("bytes=abc", None),
        (None, None),
    ],
)
def test_a_range_header_reads_as_rfc_9110_says(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
def test_a_range_beyond_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, 1000)


def test_a_member_beyond_4_gib_gets_zip64_fields_and_reads_back(tmp_path: Path) -> None:
    """The >4 GiB member exists only as a hole in a sparse file: its bytes are never read."""
    small, after = b"before the big one", b"after the big one, at an offset beyond 4 GiB"
    members = [
        Member("P/a.bin", len(small), zlib.crc32(small)),
        Member("P/big.bin", LIMIT32 + 10, 0x12345678),
        Member("P/z.bin", len(after), zlib.crc32(after)),
    ]
    plan = layout(members)
    path = tmp_path / "sparse.zip"
    with path.open("wb") as out:
        for segment in plan.segments:
            out.seek(segment.offset)
            if segment.header is not None:
                out.write(segment.header)
            elif segment.member != 1:
                out.write((small, None, after)[segment.member])  # type: ignore[arg-type]
        out.truncate(plan.length)
    assert path.stat().st_size == plan.length > 2 * LIMIT32 // 2
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert [i.file_size for i in infos] == [m.size for m in members]
        assert infos[2].header_offset > LIMIT32  # found through the central zip64 extra field
        assert archive.read("P/z.bin") == after and archive.read("P/a.bin") == small
    big_header = plan.segments[2].header
    assert big_header is not None and big_header[4:6] == (45).to_bytes(2, "little")  # version needed: zip64
    assert plan.segments[0].header is not None and plan.segments[0].header[4:6] == (20).to_bytes(2, "little")


def test_more_than_65535_members_use_the_zip64_end_record() -> None:
    members = [Member(f"P/{i:05d}", 1, zlib.crc32(b"x")) for i in range(70_000)]
    plan = layout(members)
    data = bytearray(plan.length)
    for segment in plan.segments:
        chunk = segment.header if segment.header is not None else b"x"
        data[segment.offset : segment.offset + len(chunk)] = chunk
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert len(archive.infolist()) == 70_000
        assert archive.read("P/69999") == b"x"
    few = layout(members[:10]).segments[-1].header
    assert few is not None and b"PK\x06\x06" not in few  # zip64 records only when needed


def test_an_object_rewritten_after_the_listing_stops_the_indexing(indexed) -> None:
    store, _, _ = indexed
    listing = sorted(store.list(BUCKET, PREFIX), key=lambda o: o.key)
    store.put(BUCKET, PREFIX + "manifest.safe", b"<?xml version='1.0'?><xfdu>changed</xfdu>\n")
    with pytest.raises(ArchiveChanged):
        build_index(store, "id-1", NAME, BUCKET, listing, PREFIX)
