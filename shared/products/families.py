"""Product families of the reference system and the bucket each one is stored in.

Family names are the reference ``ProductFamily`` names (production-common.md §2.1); bucket names follow
its ``obs-stream-parameters.properties`` (§2.3): ``rs-<mission>-<family suffix>[-zip]`` with the listed
exceptions. Compressed twins are the family name with ``_ZIP`` appended.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    mission: str | None  # "S1" | "S2" | "S3"; None for technical families shared by all missions
    bucket: str | None  # bucket name without prefix; None: the family is never stored (jobs, BLANK...)
    zip_bucket: str | None  # bucket of the compressed twin <name>_ZIP; None: there is no twin

    @property
    def has_zip(self) -> bool:
        return self.zip_bucket is not None


def _f(name: str, mission: str | None, bucket: str | None, has_zip: bool = False, zip_bucket: str = "") -> Family:
    twin = (zip_bucket or f"{bucket}-zip") if has_zip else None
    return Family(name, mission, bucket, twin)


_ALL: tuple[Family, ...] = (
    # -- Sentinel-1 (and the session/technical families the S1 chain introduced) --
    _f("EDRS_SESSION", "S1", "session-files"),
    _f("SESSION_RETRANSFER", "S1", "session-retransfer"),
    _f("AUXILIARY_FILE", "S1", "s1-aux", True),
    _f("PLAN_AND_REPORT", "S1", "s1-plans-and-reports", True),
    _f("L0_SLICE", "S1", "s1-l0-slices", True),
    _f("L0_ACN", "S1", "l0-acns", True, "s1-l0-acns-zip"),  # sic: only the zip twin has "s1-"
    _f("L0_BLANK", "S1", "s1-l0-blanks", True),
    _f("L0_SEGMENT", "S1", "s1-l0-segments", True),
    _f("L1_SLICE", "S1", "s1-l1-slices", True),
    _f("L1_ACN", "S1", "s1-l1-acns", True),
    # The reference has no default bucket for L1_ETAD; we apply its general rule.
    _f("L1_ETAD", "S1", "s1-l1-etad", True),
    _f("L2_SLICE", "S1", "s1-l2-slices", True),
    _f("L2_ACN", "S1", "s1-l2-acns", True),
    _f("SPP_MBU", "S1", "s1-spp-mbu"),
    _f("SPP_OBS", "S1", "s1-spp", True),
    _f("INVALID", "S1", "s1-invalid"),
    _f("GHOST", "S1", "s1-ghost"),
    _f("DEBUG", None, "debug"),
    _f("FAILED_WORKDIR", None, "failed-workdir"),
    _f("BLANK", None, None),
    _f("JOB_ORDER", None, None),
    *(
        _f(job, "S1", None)
        for job in (
            "L0_JOB", "L0_SEGMENT_JOB", "L1_JOB", "L1_ETAD_JOB", "L2_JOB", "SPP_MBU_JOB", "SPP_OBS_JOB",
            "L0_REPORT", "L0_SEGMENT_REPORT", "L1_REPORT", "L2_REPORT",
        )
    ),
    # -- Sentinel-2: rs-s2-<suffix> and a zip twin for every product family --
    *(
        _f(f"S2_{suffix.upper().replace('-', '_')}", "S2", f"s2-{suffix}", True)
        for suffix in (
            "aux", "sad", "hktm", "l0-gr", "l0-ds", "l1a-gr", "l1a-ds", "l1b-gr", "l1b-ds",
            "l1c-tl", "l1c-ds", "l1c-tc", "l2a-tl", "l2a-ds", "l2a-tc",
        )
    ),
    # -- Sentinel-3 --
    *(
        _f(f"S3_{suffix.upper().replace('-', '_')}", "S3", f"s3-{suffix}", True)
        for suffix in (
            "aux", "granules", "l0", "l1-nrt", "l1-stc", "l1-ntc", "l2-nrt", "l2-stc", "l2-ntc", "cal", "pug",
        )
    ),
    _f("S3_JOB", "S3", None),
)  # fmt: skip

FAMILIES: dict[str, Family] = {f.name: f for f in _ALL}
ZIP_SUFFIX = "_ZIP"


def is_compressed(family: str) -> bool:
    return family.endswith(ZIP_SUFFIX)


def compressed(family: str) -> str:
    """The compressed twin of ``family`` (``L1_SLICE`` -> ``L1_SLICE_ZIP``); ValueError if it has none."""
    info = _lookup(family)
    if not info.has_zip:
        raise ValueError(f"product family {family!r} has no compressed twin")
    return family + ZIP_SUFFIX


def uncompressed(family: str) -> str:
    """``L1_SLICE_ZIP`` -> ``L1_SLICE``; a family that is not compressed is returned unchanged."""
    return family[: -len(ZIP_SUFFIX)] if is_compressed(family) else family


def bucket_for(family: str, prefix: str = "rs-") -> str:
    """The reference bucket of ``family``: ``L1_SLICE`` -> ``rs-s1-l1-slices``, ``S3_L0_ZIP`` -> ``rs-s3-l0-zip``.

    Raises ``ValueError`` for an unknown family or one that is never stored (jobs, reports, BLANK).
    """
    base = uncompressed(family)
    info = _lookup(base)
    if info.bucket is None:
        raise ValueError(f"product family {family!r} is not stored in a bucket")
    if is_compressed(family):
        if info.zip_bucket is None:
            raise ValueError(f"product family {base!r} has no compressed twin")
        return prefix + info.zip_bucket
    return prefix + info.bucket


def _lookup(family: str) -> Family:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown product family {family!r}") from None
