"""Object identifiers.

Graph object ids are GUID strings (``directoryObject.id``, resources/directoryobject.md);
a malformed id answers 400 ``Invalid object identifier '…'.`` (docs/behaviour.md#directory-error-messages).
"""

from __future__ import annotations

import re
import uuid

from graphdir import errors

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def new_id() -> str:
    return str(uuid.uuid4())


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def parse_object_id(value: str) -> str:
    """Return the canonical (lower-case) GUID or raise 400 Invalid object identifier."""
    if len(value) == 36 and _GUID.match(value):
        return value.lower()
    raise errors.invalid_object_id(value)
