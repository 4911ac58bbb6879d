"""The byte layout of a product's zip: STORED members, known CRCs, every offset computable in advance.

``$value`` of a directory product (SAFE, SEN3) used to be a zip written by :mod:`zipfile` onto a non-seekable
stream: each member followed by a data descriptor, so its length was known only once sent and never equal to
the catalog's ``ContentLength``. Here the members' CRC-32 and sizes are known before the first byte (the
catalog step computed them, :mod:`shared.catalog.archives`), so each local header carries them, no data
descriptor follows, and the archive is a fixed sequence of *segments*: header bytes made here, and the objects'
bytes as stored. The same members give the same bytes on every request, so the archive has one length and one
MD5, and a byte range maps to header slices and ranged reads of the objects it covers.

Fixed choices: members in the order given (the caller sorts by key), time stamp 1980-01-01 00:00 (the DOS
epoch: the archive does not change when an object is rewritten identically), mode ``rw-r--r--``, no
compression (the data is already compressed: JPEG2000, GeoTIFF, NetCDF), UTF-8 flag only for non-ASCII names.
Zip64 fields appear exactly where a value does not fit its 32-bit (16-bit for counts) field.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

LIMIT32 = 0xFFFFFFFF  # a 32-bit field holding this value says "see the zip64 extra field"
LIMIT16 = 0xFFFF
_DOS_TIME = 0
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
_VERSION = 20  # 2.0: STORED, directories
_VERSION_ZIP64 = 45  # 4.5: zip64
_MADE_BY_UNIX = 3 << 8
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_UTF8 = 0x0800

_LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes, then name and extra
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes, then name and extra
_END = struct.Struct("<IHHHHIIH")  # 22 bytes
_END64 = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
_LOCATOR64 = struct.Struct("<IIQI")  # 20 bytes


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # the path inside the archive
    size: int
    crc32: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the archive's bytes: ``header`` bytes, or (``header`` None) the data of member ``member``."""

    offset: int
    length: int
    header: bytes | None = None
    member: int = -1


@dataclass(frozen=True, slots=True)
class Layout:
    segments: tuple[Segment, ...]
    length: int
    offsets: tuple[int, ...]  # of each segment, for bisection

    def pieces(self, start: int, stop: int) -> Iterator[tuple[Segment, int, int]]:
        """The parts of bytes ``[start, stop)``: (segment, first byte within it, byte count), in order."""
        if not 0 <= start <= stop <= self.length:
            raise ValueError(f"range [{start}, {stop}) is outside the archive's {self.length} bytes")
        index = max(bisect_right(self.offsets, start) - 1, 0)
        while start < stop and index < len(self.segments):
            segment = self.segments[index]
            within = start - segment.offset
            count = min(segment.length - within, stop - start)
            if count > 0:
                yield segment, within, count
                start += count
            index += 1


def _name_bytes(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8


def local_header(member: Member) -> bytes:
    name, flags = _name_bytes(member.name)
    if member.size >= LIMIT32:
        # A local zip64 extra field holds both sizes whenever either overflows (APPNOTE 4.5.3).
        extra = struct.pack("<HHQQ", 1, 16, member.size, member.size)
        version, size32 = _VERSION_ZIP64, LIMIT32
    else:
        extra, version, size32 = b"", _VERSION, member.size
    fixed = _LOCAL.pack(
        0x04034B50, version, flags, 0, _DOS_TIME, _DOS_DATE, member.crc32, size32, size32, len(name), len(extra)
    )
    return fixed + name + extra


def central_header(member: Member, offset: int) -> bytes:
    name, flags = _name_bytes(member.name)
    # The central zip64 extra field holds only the values that overflow, in this order.
    values: list[int] = []
    if member.size >= LIMIT32:
        values += [member.size, member.size]
    if offset >= LIMIT32:
        values.append(offset)
    extra = struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *values) if values else b""
    version = _VERSION_ZIP64 if values else _VERSION
    size32 = min(member.size, LIMIT32)
    fixed = _CENTRAL.pack(
        0x02014B50,
        _MADE_BY_UNIX | version,
        version,
        flags,
        0,
        _DOS_TIME,
        _DOS_DATE,
        member.crc32,
        size32,
        size32,
        len(name),
        len(extra),
        0,
        0,
        0,
        _FILE_MODE,
        min(offset, LIMIT32),
    )
    return fixed + name + extra


def end_records(count: int, directory_offset: int, directory_size: int) -> bytes:
    """The end of central directory record, after the zip64 end record and locator when a value overflows."""
    zip64 = count >= LIMIT16 or directory_offset >= LIMIT32 or directory_size >= LIMIT32
    records = b""
    if zip64:
        end64_offset = directory_offset + directory_size
        records += _END64.pack(
            0x06064B50,
            _END64.size - 12,
            _MADE_BY_UNIX | _VERSION_ZIP64,
            _VERSION_ZIP64,
            0,
            0,
            count,
            count,
            directory_size,
            directory_offset,
        )
        records += _LOCATOR64.pack(0x07064B50, 0, end64_offset, 1)
    records += _END.pack(
        0x06054B50,
        0,
        0,
        min(count, LIMIT16),
        min(count, LIMIT16),
        min(directory_size, LIMIT32),
        min(directory_offset, LIMIT32),
        0,
    )
    return records


def layout(members: Sequence[Member]) -> Layout:
    """Every segment of the archive of ``members`` (in this order) and its total length."""
    segments: list[Segment] = []
    offset = 0
    offsets: list[int] = []
    for index, member in enumerate(members):
        if member.size < 0:
            raise ValueError(f"member {member.name!r} has a negative size")
        offsets.append(offset)
        header = local_header(member)
        segments.append(Segment(offset, len(header), header))
        offset += len(header)
        if member.size:
            segments.append(Segment(offset, member.size, None, index))
            offset += member.size
    directory_offset = offset
    directory = b"".join(central_header(m, o) for m, o in zip(members, offsets, strict=True))
    tail = directory + end_records(len(members), directory_offset, len(directory))
    segments.append(Segment(offset, len(tail), tail))
    return Layout(tuple(segments), offset + len(tail), tuple(s.offset for s in segments))


__all__ = ["LIMIT32", "Layout", "Member", "Segment", "layout"]
