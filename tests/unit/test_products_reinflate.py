"""Re-inflated samples: the real product folders of ``../shared/samples`` made whole verify against their own
manifests, with their real object counts; products of a real shape; the corruption helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from shared.cli import main
from shared.products import ManifestError, ProductMetadata, extract_metadata, read_inventory, recognise, verify_product
from shared.products.integrity import LocalDirectory
from shared.products.reinflate import (
    REAL_SHAPES,
    _stand_in,
    add_unlisted,
    flip_byte,
    garble,
    reinflate,
    reinflate_samples,
    sample_products,
    unlisted_files,
    write_real_shape,
)
from shared.products.xml import local_name, parse_xml

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples"
T0 = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
S1_SLC = "S1A_IW_SLC__1SDH_20220414T102209_20220414T102236_042768_051AA4_E677.SAFE"
S2_L1C = "S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE"

# Data objects the manifests of some samples list (the product has one more object: the manifest).
KNOWN_COUNTS = {
    "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE": 242,
    S2_L1C: 97,
    S1_SLC: 33,
    "S1B_IW_SLC__1SDV_20210401T052622_20210401T052650_026269_032297_EFA4.SAFE": 27,
    "S3A_SL_1_RBT____20210930T220914_20210930T221214_20211002T102150_0180_077_043_5400_LN2_O_NT_004.SEN3": 97,
    "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE": 41,
    "S1B_WV_RAW__0ASV_20181001T115404_20181001T115416_012958_017EEF_95EE.SAFE": 1,
}


def _samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.fail(f"the team's samples are expected at {SAMPLES.resolve()} (../shared beside the checkout)")
    return SAMPLES


def _sample(name: str) -> Path:
    return next(p for p in sample_products(_samples_dir()) if p.name == name)


def _xfdu(folder: Path) -> bool:
    manifest = recognise(folder.name).manifest_name
    path = folder / manifest if manifest else None
    return path is not None and path.is_file() and local_name(parse_xml(path.read_bytes()).tag) == "XFDU"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _reader(root: Path) -> Callable[[str], bytes | None]:
    return lambda path: (root / path).read_bytes() if (root / path).is_file() else None


def _metadata(root: Path) -> ProductMetadata:
    product = recognise(root.name)
    assert product.manifest_name is not None
    return extract_metadata(product, (root / product.manifest_name).read_bytes(), _reader(root))


@pytest.fixture(scope="module")
def reinflated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Every sample product re-inflated once: name -> (sample, result)."""
    samples = sample_products(_samples_dir())
    made = reinflate_samples(tmp_path_factory.mktemp("reinflated"), samples_dir=_samples_dir())
    assert [p.name for p in made] == [p.name for p in samples]
    return {sample.name: (sample, result) for sample, result in zip(samples, made, strict=True)}


def test_every_sample_with_an_xfdu_manifest_verifies(reinflated: dict[str, tuple[Path, Path]]) -> None:
    failures, counts = [], []
    for name, (sample, result) in reinflated.items():
        if not _xfdu(sample):
            continue
        report = verify_product(LocalDirectory(result))
        listed = read_inventory((sample / str(recognise(name).manifest_name)).read_bytes())
        if not report.ok or report.listed != len(listed) or len(_files(result)) != len(listed) + 1:
            failures.append(f"{name}: {report}")
        counts.append(len(listed) + 1)
    assert not failures, "\n".join(failures)
    assert len(counts) >= 50  # 55 S1/S2/S3 SAFE and SEN3 products in the samples
    assert (min(counts), max(counts)) == (2, 243)


@pytest.mark.parametrize(("name", "count"), KNOWN_COUNTS.items())
def test_known_products_have_their_real_object_counts(
    reinflated: dict[str, tuple[Path, Path]], name: str, count: int
) -> None:
    _, result = reinflated[name]
    assert verify_product(LocalDirectory(result)).listed == count
    assert len(_files(result)) == count + 1


def test_the_manifest_changes_only_in_sizes_and_checksums(reinflated: dict[str, tuple[Path, Path]]) -> None:
    def skeleton(manifest: bytes) -> bytes:
        manifest = re.sub(rb'\ssize="\d+"', b' size=""', manifest)
        return re.sub(rb"(<checksum [^>]*>)[^<]*", rb"\1", manifest)

    for sample, result in reinflated.values():
        if _xfdu(sample):
            manifest = recognise(sample.name).manifest_name
            assert manifest is not None
            assert skeleton((result / manifest).read_bytes()) == skeleton((sample / manifest).read_bytes())


def test_the_samples_own_metadata_files_are_kept(reinflated: dict[str, tuple[Path, Path]]) -> None:
    sample, result = reinflated[S2_L1C]
    for path in ("MTD_MSIL1C.xml", "GRANULE/L1C_T46RER_A032448_20210908T043714/MTD_TL.xml"):
        assert (result / path).read_bytes() == (sample / path).read_bytes()
    assert (
        _metadata(result).attributes["granuleIdentifier"]
        == "S2A_OPER_MSI_L1C_TL_VGS4_20210908T070248_A032448_T46RER_N03.01"
    )
    # The manifest of the S2B L2A sample lists an MTD_MSIL2A.xml of 444 bytes; the real one is restamped.
    sample, result = reinflated["S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE"]
    assert (result / "MTD_MSIL2A.xml").read_bytes() == (sample / "MTD_MSIL2A.xml").read_bytes()
    assert verify_product(LocalDirectory(result)).ok


def test_stand_ins_are_capped_and_xml_objects_stay_xml(reinflated: dict[str, tuple[Path, Path]]) -> None:
    sample, result = reinflated[S1_SLC]
    files = _files(result)
    assert all(len(data) <= 16 * 1024 for path, data in files.items() if not (sample / path).exists())
    annotation = next(p for p in files if p.startswith("annotation/s1a-iw1"))
    assert len(files[annotation]) == 16 * 1024  # listed 868146 bytes
    assert local_name(parse_xml(files[annotation]).tag) == "reinflated"
    assert len(files["preview/map-overlay.kml"]) == 1022  # small objects keep their listed size
    assert _stand_in("empty.dat", 0, 16, seed=0) == b""
    assert len(_stand_in("no-size.nc", None, 100, seed=0)) == 100


def test_every_described_sample_product_describes(reinflated: dict[str, tuple[Path, Path]]) -> None:
    for sample, result in reinflated.values():
        if _xfdu(sample):
            metadata = _metadata(result)
            assert metadata.validity_start is not None, sample.name


def test_placeholders_and_missing_sizes_are_kept(reinflated: dict[str, tuple[Path, Path]]) -> None:
    # An ESA test data set: no sizes, "dummy-checksum-value" checksums: verified for presence only.
    name = "S3B_OL_1_EFR____20040703T003000_20040703T003200_20160204T070933_DDDD_001_002_FFFF_WER_D_NR_NNN.SEN3"
    sample, result = reinflated[name]
    assert (result / "xfdumanifest.xml").read_bytes() == (sample / "xfdumanifest.xml").read_bytes()
    report = verify_product(LocalDirectory(result))
    assert report.ok and report.listed == 29 and report.checked_checksums == 0


def test_files_the_manifest_does_not_list_are_left_out(reinflated: dict[str, tuple[Path, Path]]) -> None:
    name = "S2A_OPER_MSI_L0__DS_SGS__20200420T205828_S20200322T173347_N02.08"
    sample, result = reinflated[name]
    assert unlisted_files(sample) == ["Inventory_Metadata.xml"]
    assert not (result / "Inventory_Metadata.xml").exists()
    assert verify_product(LocalDirectory(result)).ok


def test_folders_without_an_xfdu_manifest_and_single_files_are_copied(
    reinflated: dict[str, tuple[Path, Path]],
) -> None:
    copied = 0
    for sample, result in reinflated.values():
        if sample.is_file():
            assert result.read_bytes() == sample.read_bytes()
        elif not _xfdu(sample):
            assert _files(result) == _files(sample), sample.name
            copied += 1
    assert copied >= 10  # iif, Inventory_Metadata, L0U, Earth Explorer, session folders; S2 without manifest


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    sample = _sample("S1A_IW_GRDH_1SDV_20210809T173953_20210809T174018_039156_049F13_6FF8.SAFE")
    first = _files(reinflate(sample, tmp_path / "a", seed=3))
    assert _files(reinflate(sample, tmp_path / "b", seed=3)) == first
    other = _files(reinflate(sample, tmp_path / "c", seed=4))
    assert other.keys() == first.keys() and other != first
    with pytest.raises(FileExistsError):
        reinflate(sample, tmp_path / "a", seed=3)


@pytest.mark.parametrize(("kind", "objects", "algorithm"), [("S2_L1C", 97, "sha3_256"), ("S1_SLC", 33, "md5")])
def test_real_shapes_make_distinct_products_that_verify_and_describe(
    tmp_path: Path, kind: Literal["S2_L1C", "S1_SLC"], objects: int, algorithm: str
) -> None:
    starts = [T0 + timedelta(minutes=7 * i) for i in range(4)]
    roots = [write_real_shape(tmp_path, kind, start, seed=i) for i, start in enumerate(starts)]
    assert len({r.name for r in roots}) == len(roots)
    for start, root in zip(starts, roots, strict=True):
        product = recognise(root.name)
        assert product.validity_start == start.replace(microsecond=0)
        report = verify_product(LocalDirectory(root))
        assert report.ok and report.listed == objects == report.checked_checksums, report
        inventory = read_inventory((root / "manifest.safe").read_bytes())
        assert {a for item in inventory for a, _ in item.digests} == {algorithm}
        metadata = _metadata(root)
        assert metadata.validity_start is not None
        assert metadata.validity_start.replace(microsecond=0) == product.validity_start
        assert metadata.footprint is not None
    assert REAL_SHAPES[kind].endswith({"S2_L1C": S2_L1C, "S1_SLC": S1_SLC}[kind])


def test_real_shape_paths_and_metadata_follow_the_new_times(tmp_path: Path) -> None:
    s2 = write_real_shape(tmp_path, "S2_L1C", T0)
    assert s2.name == "S2A_MSIL1C_20240501T100000_N0301_R133_T46RER_20240501T123547.SAFE"
    assert (s2 / "GRANULE/L1C_T46RER_A032448_20240501T101013/IMG_DATA/T46RER_20240501T100000_B8A.jp2").is_file()
    attributes = _metadata(s2).attributes
    assert attributes["productGroupId"] == "GS2A_20240501T100000_032448_N03.01"
    assert attributes["processingDate"] == datetime(2024, 5, 1, 12, 35, 47, tzinfo=UTC)
    s1 = write_real_shape(tmp_path, "S1_SLC", T0)
    assert s1.name.startswith("S1A_IW_SLC__1SDH_20240501T100000_20240501T100027_042768_051AA4_")
    metadata = _metadata(s1)
    assert metadata.validity_stop == datetime(2024, 5, 1, 10, 0, 27, 888908, tzinfo=UTC)
    assert (s1 / "measurement/s1a-iw1-slc-hh-20240501t100002-20240501t100027-042768-051aa4-001.tiff").is_file()


@pytest.mark.parametrize(("kind", "algorithm"), [("S1_SLC", "md5"), ("S2_L1C", "sha3_256")])
def test_a_flipped_byte_is_reported_under_the_manifests_algorithm(
    tmp_path: Path, kind: Literal["S2_L1C", "S1_SLC"], algorithm: str
) -> None:
    root = write_real_shape(tmp_path, kind, T0)
    item = next(i for i in read_inventory((root / "manifest.safe").read_bytes()) if i.size and i.size > 100)
    assert [a for a, _ in item.digests] == [algorithm]
    flip_byte(root, item.path)
    report = verify_product(LocalDirectory(root))
    assert report.wrong_checksum == (item.path,) and not report.wrong_size and not report.ok
    assert (root / item.path).stat().st_size == item.size


def test_an_unlisted_file_is_extra(tmp_path: Path) -> None:
    root = write_real_shape(tmp_path, "S1_SLC", T0)
    add_unlisted(root, "measurement/stray.tiff")
    report = verify_product(LocalDirectory(root))
    assert report.extra == ("measurement/stray.tiff",) and not report.ok
    with pytest.raises(FileExistsError):
        add_unlisted(root, "manifest.safe")


def test_garbled_metadata_verifies_but_does_not_describe(tmp_path: Path) -> None:
    root = write_real_shape(tmp_path, "S2_L1C", T0)
    garble(root, "MTD_MSIL1C.xml")
    assert verify_product(LocalDirectory(root)).ok
    with pytest.raises(ManifestError, match=r"MTD_MSIL1C\.xml"):
        _metadata(root)
    with pytest.raises(ValueError, match="not listed"):
        garble(root, "not-in-the-manifest.xml")


def test_cli_reinflates_the_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["samples", "reinflate", str(tmp_path / "out"), "--samples-dir", str(_samples_dir())]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    totals = lines[-1]["totals"]
    assert totals["products"] == len(lines) - 1 == len(sample_products(_samples_dir()))
    assert totals["objects"] == sum(line["objects"] for line in lines[:-1])
    assert all(line.get("integrity", "ok") != "does not verify" for line in lines[:-1])
