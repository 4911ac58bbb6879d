"""Reference families and bucket naming (production-common.md §2.1, §2.3)."""

from __future__ import annotations

import pytest

from shared.products import FAMILIES, bucket_for
from shared.products.families import compressed, is_compressed, uncompressed


@pytest.mark.parametrize(
    ("family", "bucket"),
    [
        ("AUXILIARY_FILE", "rs-s1-aux"),
        ("EDRS_SESSION", "rs-session-files"),
        ("SESSION_RETRANSFER", "rs-session-retransfer"),
        ("PLAN_AND_REPORT", "rs-s1-plans-and-reports"),
        ("L0_SLICE", "rs-s1-l0-slices"),
        ("L0_ACN", "rs-l0-acns"),  # sic, as in the reference
        ("L0_SEGMENT", "rs-s1-l0-segments"),
        ("L0_BLANK", "rs-s1-l0-blanks"),
        ("L1_SLICE", "rs-s1-l1-slices"),
        ("L1_ACN", "rs-s1-l1-acns"),
        ("L2_SLICE", "rs-s1-l2-slices"),
        ("L2_ACN", "rs-s1-l2-acns"),
        ("SPP_MBU", "rs-s1-spp-mbu"),
        ("SPP_OBS", "rs-s1-spp"),
        ("INVALID", "rs-s1-invalid"),
        ("GHOST", "rs-s1-ghost"),
        ("DEBUG", "rs-debug"),
        ("FAILED_WORKDIR", "rs-failed-workdir"),
        ("AUXILIARY_FILE_ZIP", "rs-s1-aux-zip"),
        ("L0_ACN_ZIP", "rs-s1-l0-acns-zip"),
        ("L1_SLICE_ZIP", "rs-s1-l1-slices-zip"),
        ("SPP_OBS_ZIP", "rs-s1-spp-zip"),
        ("PLAN_AND_REPORT_ZIP", "rs-s1-plans-and-reports-zip"),
        ("S2_L1C_TL", "rs-s2-l1c-tl"),
        ("S2_L0_GR", "rs-s2-l0-gr"),
        ("S2_HKTM_ZIP", "rs-s2-hktm-zip"),
        ("S2_SAD", "rs-s2-sad"),
        ("S3_GRANULES", "rs-s3-granules"),
        ("S3_L1_NRT", "rs-s3-l1-nrt"),
        ("S3_L2_NTC_ZIP", "rs-s3-l2-ntc-zip"),
        ("S3_PUG", "rs-s3-pug"),
    ],
)
def test_reference_buckets(family: str, bucket: str) -> None:
    assert bucket_for(family) == bucket


def test_prefix() -> None:
    assert bucket_for("L1_SLICE", prefix="test-") == "test-s1-l1-slices"
    assert bucket_for("L1_SLICE", prefix="") == "s1-l1-slices"


@pytest.mark.parametrize("family", ["NOPE", "EDRS_SESSION_ZIP", "SPP_MBU_ZIP", "BLANK", "L1_JOB", "S3_JOB", ""])
def test_unknown_or_unstored_families(family: str) -> None:
    with pytest.raises(ValueError):
        bucket_for(family)


def test_every_stored_family_has_a_distinct_bucket() -> None:
    buckets = [bucket_for(f) for f, info in FAMILIES.items() if info.bucket]
    buckets += [bucket_for(compressed(f)) for f, info in FAMILIES.items() if info.has_zip]
    assert len(buckets) == len(set(buckets))
    # S3 bucket names must stay valid S3 bucket names (lower case, digits, "-", 3..63 characters).
    for b in buckets:
        assert b == b.lower() and 3 <= len(b) <= 63 and all(c.isalnum() or c == "-" for c in b)


def test_compressed_helpers() -> None:
    assert compressed("L1_SLICE") == "L1_SLICE_ZIP"
    assert is_compressed("L1_SLICE_ZIP") and not is_compressed("L1_SLICE")
    assert uncompressed("L1_SLICE_ZIP") == "L1_SLICE" and uncompressed("L1_SLICE") == "L1_SLICE"
    with pytest.raises(ValueError):
        compressed("EDRS_SESSION")


def test_every_family_recognise_can_return_has_a_bucket() -> None:
    from tests.unit.test_products_naming import EXPECTED

    for _, _, _, _, family, _ in EXPECTED.values():
        assert bucket_for(family).startswith("rs-")
