"""XML annotation files parsed safely, with the line of every element.

Annotation files come from outside the lab. Entity declarations (the
"billion laughs" and external-entity attacks) have no place in VOC or CVAT
files, so any DOCTYPE is refused outright, whatever XML library is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Node:
    tag: str
    attrib: dict[str, str]
    line: int
    children: list["Node"] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> "Node | None":
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def findall(self, tag: str) -> list["Node"]:
        return [c for c in self.children if c.tag == tag]

    def findtext(self, tag: str) -> str | None:
        c = self.find(tag)
        return None if c is None else c.text.strip()


class XmlRefused(Exception):
    """The file is not well-formed XML or declares a DOCTYPE/entities."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


def parse(path: Path) -> Node:
    """The root element of ``path``. Raises ``XmlRefused`` with the line."""
    import xml.parsers.expat as expat

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    root: list[Node] = []

    def refuse_dtd(*_args):
        raise XmlRefused(parser.CurrentLineNumber,
                         "declares a DOCTYPE/entities, which annotation files never need; refused for safety")

    def start(tag, attrib):
        node = Node(tag, attrib, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_tag):
        stack.pop()

    def chars(data):
        if stack:
            stack[-1].text += data

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.ExternalEntityRefHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.buffer_text = True
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except expat.ExpatError as e:
        raise XmlRefused(e.lineno, f"not well-formed XML ({expat.ErrorString(e.code)})") from None
    if not root:
        raise XmlRefused(1, "no XML element")
    return root[0]



def write(root, path: Path) -> None:
    """Write an ElementTree element as indented UTF-8 XML with a declaration."""
    import xml.etree.ElementTree as ET

    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
