"""A HIT's Question (ExternalQuestion or HTMLQuestion) and an assignment's Answer XML."""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from server.sandbox.errors import RequestError

ANSWER_NAMESPACE = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"
PREVIEW_ASSIGNMENT_ID = "ASSIGNMENT_ID_NOT_AVAILABLE"
_LOOPBACK_NAMES = {"localhost"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Question:
    """``external_url`` for an ExternalQuestion, ``html`` for an HTMLQuestion."""

    frame_height: int
    external_url: str | None = None
    html: str | None = None


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(root: ET.Element, name: str) -> str | None:
    for child in root:
        if _local_name(child.tag) == name:
            return (child.text or "").strip() if name != "HTMLContent" else (child.text or "")
    return None


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_external_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return  # the sandbox's one deliberate difference: local development without TLS
    raise RequestError(
        f"The ExternalURL '{url}' is invalid: it must be an https URL (http is accepted on loopback only).",
        "AWS.MechanicalTurk.XMLParseError",
    )


def parse_question(text: str) -> Question:
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as error:
        raise RequestError(
            f"There was an error parsing the XML question or answer data in your request: {error}",
            "AWS.MechanicalTurk.XMLParseError",
        ) from error
    kind = _local_name(root.tag)
    height_text = _child_text(root, "FrameHeight")
    try:
        frame_height = int(height_text) if height_text is not None else 0
    except ValueError as error:
        raise RequestError(f"FrameHeight '{height_text}' is not an integer.") from error
    if kind == "ExternalQuestion":
        url = _child_text(root, "ExternalURL")
        if not url:
            raise RequestError("An ExternalQuestion needs an ExternalURL.", "AWS.MechanicalTurk.XMLParseError")
        _check_external_url(url)
        return Question(frame_height=frame_height, external_url=url)
    if kind == "HTMLQuestion":
        html = _child_text(root, "HTMLContent")
        if not html:
            raise RequestError("An HTMLQuestion needs HTMLContent.", "AWS.MechanicalTurk.XMLParseError")
        return Question(frame_height=frame_height, html=html)
    raise RequestError(
        f"The Question is a {kind}; the Parley sandbox supports ExternalQuestion and HTMLQuestion.",
        "AWS.MechanicalTurk.XMLParseError",
    )


def with_params(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to its query string (MTurk's way of passing the task context)."""
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _xml_text(text: str) -> str:
    """``text`` escaped for XML, without the control characters XML 1.0 cannot carry."""
    return escape(_NOT_XML.sub("", text))


def answer_xml(answers: list[tuple[str, str]]) -> str:
    """MTurk's QuestionFormAnswers document: one FreeText answer per submitted form field."""
    body = "".join(
        f"<Answer><QuestionIdentifier>{_xml_text(name)}</QuestionIdentifier>"
        f"<FreeText>{_xml_text(value)}</FreeText></Answer>"
        for name, value in answers
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<QuestionFormAnswers xmlns="{ANSWER_NAMESPACE}">{body}</QuestionFormAnswers>'
    )
