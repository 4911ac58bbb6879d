"""Safe XML parsing and namespace-agnostic look-ups for product metadata files.

Every manifest, annotation or auxiliary XML file the pipeline reads comes from outside (an inbox, a
processor), so it is parsed with ``defusedxml``: a DOCTYPE is refused outright, which rules out entity
expansion ("billion laughs"), external entities and DTD retrieval. ElementTree never touches the network.

Sentinel manifests of the same kind do not agree on namespaces (an S1 L0 manifest uses default namespaces,
an L1 manifest ``safe:``/``s1sarl1:`` prefixes, an aux manifest ``ns0:``/``ns1:``), so look-ups here match
on the *local* name only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as DefusedET

# The biggest real manifest seen (S1 WV SLC) is 250 kB; refuse anything absurdly larger before parsing.
MAX_XML_BYTES = 64 * 1024 * 1024


class XmlError(ValueError):
    """The document is not well-formed XML, too large, or was refused as unsafe."""


class UnsafeXml(XmlError):
    """The document declares a DTD, entities or external references, which are never accepted."""


def parse_xml(data: bytes, *, what: str = "XML document") -> Element:
    """Parse ``data`` safely and return the root element.

    Raises :class:`UnsafeXml` for any DOCTYPE/entity/external reference and :class:`XmlError` for
    anything else that is not a well-formed document.
    """
    if len(data) > MAX_XML_BYTES:
        raise XmlError(f"{what} is {len(data)} bytes, over the {MAX_XML_BYTES} byte limit")
    try:
        root = DefusedET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXml(f"{what} refused: {type(exc).__name__} ({exc})") from exc
    except ParseError as exc:
        raise XmlError(f"{what} is not well-formed XML: {exc}") from exc
    return cast(Element, root)


def local_name(tag: object) -> str:
    """``{urn:ns}name`` -> ``name`` (comments and processing instructions have no str tag: "")."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def iter_named(elem: Element, name: str) -> Iterator[Element]:
    """Every descendant of ``elem`` (itself included) whose local name is ``name``, in document order."""
    for e in elem.iter():
        if local_name(e.tag) == name:
            yield e


def children_named(elem: Element, name: str) -> list[Element]:
    """The direct children of ``elem`` whose local name is ``name``."""
    return [c for c in elem if local_name(c.tag) == name]


def first_named(elem: Element, name: str) -> Element | None:
    return next(iter_named(elem, name), None)


def text(elem: Element | None) -> str | None:
    """Stripped text of ``elem``; ``None`` when missing or blank."""
    if elem is None or elem.text is None:
        return None
    value = elem.text.strip()
    return value or None


def first_text(elem: Element, name: str) -> str | None:
    """Text of the first descendant named ``name`` that has any text."""
    for e in iter_named(elem, name):
        value = text(e)
        if value is not None:
            return value
    return None
