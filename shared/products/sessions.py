"""EDRS / CADIP downlink sessions: ``DCS_<station>_<session id>_ch<channel>_DSIB.xml`` and DSDB chunks.

A session is what one ground station received in one pass, per channel: a session information block
(DSIB, XML: session id, start/stop, the list of its chunks) and the data chunks
``..._ch1_DSDB_00001.raw``. The session id is ``L<digits>`` for EDRS (Sentinel-1 chain, satellite not in
the name) or ``S1A_<digits>`` for CADIP/X-band stations (mission and unit in the id).

Each DSIB and DSDB object is a product of its own (family ``EDRS_SESSION``, delivered as one object, as
the reference catalogues them); ``name_fields`` carry ``session_id`` and ``channel`` so the preparation
can gather a session. The session folder (``DCS_02_L2017...`` or ``DCS_01_S1B_..._dat``) is recognised
too, with packaging ``SESSION``: not a directory product, so :func:`~shared.products.naming.root_of`
returns the objects inside it.

Differences from the reference regex (production-common.md §2.4, ``DCS_[0-9]{2}_([a-zA-Z0-9_]*)_ch...``):
the session id must have one of the two real shapes, so ``DCS_01_garbage_ch1_DSIB.xml`` is refused; the
mission is taken from the id, not from the first two characters of the object key (which the reference
reads as ``missionId`` and so calls every EDRS session ``L2``).
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from shared.products.metadata import Draft, maybe_int, register_step, time_of
from shared.products.naming import NameMismatch, NamePattern, ProductName, fields, register
from shared.products.xml import children_named, first_text, local_name, text

_SESSION_ID = r"(?P<session_id>L\d{8,}|S(?P<mission_digit>[123])(?P<satellite>[A-D])_\d{14,})"
_OBJECT_RE = re.compile(
    rf"DCS_(?P<station>\d{{2}})_{_SESSION_ID}_ch(?P<channel>[12])_(?P<block>DSDB|DSIB)"
    r"(?:_(?P<chunk>\d{5}))?\.(?P<ext>(?i:raw|aisp|xml))"
)
_FOLDER_RE = re.compile(rf"DCS_(?P<station>\d{{2}})_{_SESSION_ID}(?:_dat)?")
_PACKAGING = {"raw": "RAW", "aisp": "RAW", "xml": "XML"}


def _session(name: str, m: re.Match[str], product_type: str, packaging: str) -> ProductName:
    # EDRS session ids carry no mission: EDRS sessions feed the Sentinel-1 chain (reference family of S1).
    mission = f"S{m['mission_digit']}" if m["mission_digit"] else "S1"
    keys = ("session_id", "channel", "station", "block", "chunk")
    return ProductName(
        name=name,
        mission=mission,
        satellite=m["satellite"],
        product_type=product_type,
        level="SESSION",
        family="EDRS_SESSION",
        timeliness=None,
        validity_start=None,  # the session id's digits are an id, not the acquisition time (see the DSIB)
        validity_stop=None,
        packaging=packaging,
        manifest_name=None,
        name_fields=fields(m, *(k for k in keys if k in m.groupdict())),
    )


def _build_object(name: str, m: re.Match[str]) -> ProductName:
    if (m["block"] == "DSDB") != (m["chunk"] is not None):
        raise NameMismatch("a DSDB chunk has a 5-digit number, a DSIB none")
    # The reference's productType: RAW for a chunk, SESSION for the session information block.
    product_type = "RAW" if m["block"] == "DSDB" else "SESSION"
    return _session(name, m, product_type, _PACKAGING[m["ext"].lower()])


def _build_folder(name: str, m: re.Match[str]) -> ProductName:
    return _session(name, m, "SESSION", "SESSION")


register(NamePattern("session-object", "DC", _OBJECT_RE, _build_object))
register(NamePattern("session-folder", "DC", _FOLDER_RE, _build_folder))

# -- the session information block --------------------------------------------------------------------


def _is_dsib(_: ProductName, root: Element) -> bool:
    return local_name(root.tag) == "DCSU_Session_Information_Block"


def _dsib(product: ProductName, root: Element, draft: Draft) -> None:
    draft.start = time_of(first_text(root, "time_start")) or draft.start
    draft.stop = time_of(first_text(root, "time_stop")) or draft.stop
    draft.set("sessionId", first_text(root, "session_id") or product.name_field("session_id"))
    draft.set("channelId", maybe_int(product.name_field("channel")))
    draft.set("stationCode", product.name_field("station"))
    draft.set("processingDate", time_of(first_text(root, "time_finished")))
    draft.set("dataSize", maybe_int(first_text(root, "data_size")))
    chunks = [c for e in root.iter() if local_name(e.tag) == "dsdb_list" for c in children_named(e, "dsdb_name")]
    names = [n for n in (text(c) for c in chunks) if n]
    draft.set("numberOfChunks", len(names))
    draft.set("rawNames", ",".join(names))  # PRIP list-valued strings are joined with ","


register_step("edrs-dsib", _is_dsib, _dsib)
