"""Files that hold secrets, readable by their owner only, whatever the umask.

The SQLite database holds the token-signing private keys, hashed client secrets and password
hashes; the generated TLS directory holds the CA's and the server's private keys
(docs/configuration.md, "Secrets at rest"). Every directory graphdir creates for them is ``0700``
and every such file it creates is ``0600``. A secret file that already exists with wider
permissions is tightened to owner-only, with a warning; an existing directory is left as it is
(it may be shared, e.g. a working directory), the files in it being owner-only already.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("graphdir.files")

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents as owner-only directories (an existing one is kept as it is)."""
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # created meanwhile by someone else: theirs
            continue
        os.chmod(d, DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened: set it exactly


def private_file(path: Path) -> None:
    """Create ``path`` empty and owner-only if it does not exist; else tighten it (see :func:`tighten`)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return
    try:
        os.fchmod(fd, FILE_MODE)  # exactly 0600, whatever the umask took away
    finally:
        os.close(fd)


def tighten(path: Path) -> None:
    """An existing secret file that group or others may access becomes owner-only (warned); a missing one is ignored."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & 0o700)
    except OSError as exc:
        log.warning("%s holds secrets and is accessible to other users (mode %03o); it could not be made owner-only: %s", path, mode, exc)
        return
    log.warning("%s holds secrets and was accessible to other users (mode %03o): made owner-only (%03o)", path, mode, mode & 0o700)
