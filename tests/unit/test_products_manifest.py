"""Inventory of manifest.safe / xfdumanifest.xml, checked against every real sample manifest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.products import DataObject, ManifestError, read_inventory
from shared.products.manifest import normalise_path

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
MANIFESTS = sorted([*SAMPLES.glob("*/*/manifest.safe"), *SAMPLES.glob("*/*/xfdumanifest.xml")])
needs_samples = pytest.mark.skipif(not MANIFESTS, reason="shared samples not available")

# An independent, regex-based reading of the same XML: one (href, size, checksum name, value) per byteStream.
_STREAM = re.compile(
    r"<byteStream\b(?P<attrs>[^>]*)>(?P<body>.*?)</byteStream>",
    re.DOTALL,
)


def _raw_streams(text: str) -> list[tuple[str, int | None, str, str]]:
    streams = []
    for m in _STREAM.finditer(text):
        size = re.search(r'size="(\d+)"', m["attrs"])
        href = re.search(r'href="([^"]+)"', m["body"])
        checksum = re.search(r'checksumName="([^"]+)"\s*>([^<]*)<', m["body"])
        assert href and checksum
        streams.append((href[1], int(size[1]) if size else None, checksum[1], checksum[2].strip().lower()))
    return streams


@needs_samples
def test_there_are_sample_manifests() -> None:
    assert len(MANIFESTS) >= 50


@needs_samples
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.parent.name[:60])
def test_inventory_matches_the_xml(manifest: Path) -> None:
    data = manifest.read_bytes()
    objects = read_inventory(data)
    raw = _raw_streams(data.decode("utf-8"))
    assert len(objects) == len(raw) > 0
    for obj, (href, size, checksum_name, value) in zip(objects, raw, strict=True):
        assert isinstance(obj, DataObject)
        assert obj.path == href.removeprefix("./")
        assert not obj.path.startswith(("/", "./", "../"))
        assert obj.size == size
        if checksum_name == "MD5" and re.fullmatch("[0-9a-f]{32}", value):
            assert obj.md5 == value and obj.digest("md5") == value
        elif checksum_name == "SHA3-256":
            assert obj.md5 is None and obj.digest("sha3_256") == value
        else:  # ESA test data set placeholders ("dummy-checksum-value")
            assert obj.md5 is None


@needs_samples
def test_known_values_of_the_grd_sample() -> None:
    data = SAMPLES / "sentinel1/S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE/manifest.safe"
    objects = {o.path: o for o in read_inventory(data.read_bytes())}
    assert len(objects) == 11
    tiff = objects["measurement/s1a-iw-grd-vv-20180227t145344-20180227t145413-020794-023a69-001.tiff"]
    assert tiff.size == 1001160228 and tiff.md5 == "5d8c67ed42452df643e00b7a4a22b0d2"
    assert "manifest.safe" not in objects


def _xfdu(streams: str) -> bytes:
    return (
        '<?xml version="1.0"?><xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><dataObjectSection>'
        f"{streams}</dataObjectSection></xfdu:XFDU>"
    ).encode()


def _stream(
    href: str, size: str = "10", checksum: str = '<checksum checksumName="MD5">' + "A" * 32 + "</checksum>"
) -> str:
    return (
        f'<dataObject ID="d"><byteStream mimeType="x" size="{size}">'
        f'<fileLocation locatorType="URL" href="{href}"/>{checksum}</byteStream></dataObject>'
    )


def test_paths_are_normalised_and_md5_lower_cased() -> None:
    objects = read_inventory(_xfdu(_stream("./a/./b//c.dat") + _stream("d.nc")))
    assert [o.path for o in objects] == ["a/b/c.dat", "d.nc"]
    assert objects[0].md5 == "a" * 32


def test_several_byte_streams_in_one_data_object() -> None:
    doc = _xfdu(
        '<dataObject ID="d">'
        '<byteStream size="1"><fileLocation href="./one"/><checksum checksumName="MD5">'
        + "1"
        * 32
        + "</checksum></byteStream>"
        '<byteStream size="2"><fileLocation href="./two"/></byteStream>'
        "</dataObject>"
    )
    assert read_inventory(doc) == [
        DataObject("one", 1, "1" * 32, (("md5", "1" * 32),)),
        DataObject("two", 2, None, ()),
    ]


def test_empty_section() -> None:
    assert read_inventory(_xfdu("")) == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<xfdu:XFDU xmlns:xfdu='urn:ccsds:schema:xfdu:1'><dataObjectSection>", "not well-formed"),
        (b"garbage", "not well-formed"),
        (b"<Earth_Explorer_File/>", "not an XFDU manifest"),
        (_xfdu(_stream("../../etc/passwd")), "outside the product root"),
        (_xfdu(_stream("/etc/passwd")), "not a path relative"),
        (_xfdu(_stream("http://example.com/x")), "not a path relative"),
        (_xfdu(_stream("./")), "outside the product root"),
        (_xfdu(_stream("a", size="-1")), "not a byte count"),
        (_xfdu(_stream("a", size="12.5")), "not a byte count"),
        (_xfdu('<dataObject ID="d"><byteStream size="1"/></dataObject>'), "no fileLocation"),
    ],
)
def test_manifest_errors(document: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        read_inventory(document)


def test_normalise_path() -> None:
    assert normalise_path("./measurement/x.tiff") == "measurement/x.tiff"
    assert normalise_path("a/../b") == "b"
    with pytest.raises(ManifestError):
        normalise_path("a/../../b")
