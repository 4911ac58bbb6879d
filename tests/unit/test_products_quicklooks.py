"""Browse images are found among a product's files: S1 preview/quick-look.png, S2 QI_DATA/*_PVI.jp2."""

import pytest

from shared.products import recognise
from shared.products.manifest import read_inventory
from shared.products.quicklooks import find_quicklooks
from tests.conftest import SAMPLES


def _listed(sample: str) -> tuple[str, list[str]]:
    root = SAMPLES / sample
    product = recognise(root.name if root.name.endswith((".SAFE", ".SEN3")) else root.name + ".SAFE")
    manifest = next(p for p in (root / "manifest.safe", root / "xfdumanifest.xml") if p.is_file())
    return product.mission, [o.path for o in read_inventory(manifest.read_bytes())]


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "sentinel1/S1A_IW_SLC__1SDH_20220414T102209_20220414T102236_042768_051AA4_E677.SAFE",
            ("preview/quick-look.png",),
        ),
        (
            "sentinel1/S1B_IW_GRDH_1SDV_20210401T052623_20210401T052648_026269_032297_ECC8.SAFE",
            ("preview/quick-look.png",),
        ),
        (
            "sentinel2/S2A_MSIL1C_20210908T042701_N0301_R133_T46RER_20210908T070248.SAFE",
            ("GRANULE/L1C_T46RER_A032448_20210908T043714/QI_DATA/T46RER_20210908T042701_PVI.jp2",),
        ),
    ],
)
def test_the_quicklook_a_sample_manifest_lists_is_found(sample: str, expected: tuple[str, ...]) -> None:
    mission, paths = _listed(sample)
    assert find_quicklooks(mission, paths) == expected


def test_sentinel3_samples_carry_no_browse_image() -> None:
    manifests = sorted((SAMPLES / "sentinel3").glob("*.SEN3/xfdumanifest.xml"))
    assert len(manifests) > 10
    for manifest in manifests:
        assert find_quicklooks("S3", [o.path for o in read_inventory(manifest.read_bytes())]) == (), manifest


def test_only_browse_images_are_taken() -> None:
    paths = [
        "preview/quick-look.png",
        "preview/map-overlay.kml",
        "support/s1-level-1-quicklook.xsd",  # a schema, not an image
        "GRANULE/L1C_T1/QI_DATA/MSK_CLOUDS_B00.gml",
        "GRANULE/L1C_T1/QI_DATA/T1_PVI.jp2",
        "GRANULE/L1C_T2/QI_DATA/S2A_OPER_PVI_L1C_TL_SGS__20180101T124911_A013190_T31TDH.jp2",  # old format
        "GRANULE/L1C_T1/IMG_DATA/T1_B04.jp2",
    ]
    assert find_quicklooks("S1", paths) == ("preview/quick-look.png",)
    assert find_quicklooks("S2", paths) == (
        "GRANULE/L1C_T1/QI_DATA/T1_PVI.jp2",
        "GRANULE/L1C_T2/QI_DATA/S2A_OPER_PVI_L1C_TL_SGS__20180101T124911_A013190_T31TDH.jp2",
    )
    assert find_quicklooks("S3", ["browse.jpg", "Oa01_radiance.nc", "quicklook.xsd"]) == ("browse.jpg",)
    assert find_quicklooks("S5", paths) == ()
