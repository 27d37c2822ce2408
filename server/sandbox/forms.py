"""Read an HTML form post (urlencoded or multipart) into ordered (name, value) pairs."""

from __future__ import annotations

import email.parser
import email.policy
from urllib.parse import parse_qsl

from server.sandbox.errors import WorkerRefusal

MAX_FORM_BYTES = 2 * 1024 * 1024


def parse_form(content_type: str, body: bytes) -> list[tuple[str, str]]:
    if len(body) > MAX_FORM_BYTES:
        raise WorkerRefusal("too_large", f"The form is larger than {MAX_FORM_BYTES} bytes.", 413)
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("", "application/x-www-form-urlencoded"):
        return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    if kind == "multipart/form-data":
        return _multipart(content_type, body)
    raise WorkerRefusal("unsupported_form", f"A form posted as {kind} cannot be read.", 415)


def _multipart(content_type: str, body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise WorkerRefusal("unsupported_form", "The multipart form could not be read.", 400)
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        if filename is not None:
            fields.append((name, filename))  # files are recorded by name only, as text answers
            continue
        payload = part.get_payload(decode=True)
        text = payload.decode(part.get_content_charset() or "utf-8", "replace") if isinstance(payload, bytes) else ""
        fields.append((name, text))
    return fields
