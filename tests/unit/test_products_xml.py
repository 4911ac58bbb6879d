"""Safe XML parsing: entity bombs, external entities and DTDs are refused before anything is expanded."""

from __future__ import annotations

import pytest

from shared.products import ManifestError, extract_metadata, read_inventory, recognise
from shared.products.xml import UnsafeXml, XmlError, first_text, iter_named, local_name, parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><metadataSection>&lol9;</metadataSection></xfdu:XFDU>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><dataObjectSection>&xxe;</dataObjectSection></xfdu:XFDU>
"""

EXTERNAL_NETWORK_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "http://127.0.0.1:9/evil.dtd"> ]>
<root>&xxe;</root>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE root SYSTEM "http://127.0.0.1:9/evil.dtd">
<root/>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE root [ <!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p; ]>
<root/>
"""

GRD = "S1A_IW_GRDH_1SDV_20180227T145344_20180227T145413_020794_023A69_C0B5.SAFE"


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_NETWORK_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY]
)
def test_unsafe_documents_are_refused(document: bytes) -> None:
    with pytest.raises(UnsafeXml, match="refused"):
        parse_xml(document)
    with pytest.raises(ManifestError, match="refused"):
        read_inventory(document)
    with pytest.raises(ManifestError, match="refused"):
        extract_metadata(recognise(GRD), document)


def test_unsafe_is_an_xml_error_and_a_value_error() -> None:
    assert issubclass(UnsafeXml, XmlError) and issubclass(XmlError, ValueError)


@pytest.mark.parametrize("document", [b"", b"<a>", b"not xml at all", b"<a></b>", "<a>\u00e9</a>".encode("latin-1")])
def test_corrupt_documents(document: bytes) -> None:
    with pytest.raises(XmlError, match="not well-formed"):
        parse_xml(document)


def test_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.products.xml as xml

    monkeypatch.setattr(xml, "MAX_XML_BYTES", 10)
    with pytest.raises(XmlError, match="limit"):
        xml.parse_xml(b"<root>0123456789</root>")


def test_namespace_agnostic_lookups() -> None:
    root = parse_xml(
        b'<a:r xmlns:a="urn:a" xmlns:b="urn:b"><b:x> one </b:x><x/><c xmlns="urn:c"><x>two</x></c><!-- c --></a:r>'
    )
    assert local_name(root.tag) == "r"
    assert [local_name(e.tag) for e in iter_named(root, "x")] == ["x", "x", "x"]
    assert first_text(root, "x") == "one"
    assert first_text(root, "missing") is None
