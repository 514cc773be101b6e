"""Replacing a file in one step: the old content or the new, never half of it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def replacing(path: str | Path) -> Iterator[IO[str]]:
    """Yield a text file that takes ``path``'s place when the block ends without error.

    It is a new file beside the target under a name of its own (two writers of one
    target each have theirs), flushed to disk and renamed over the target; on any
    failure (a full disk, Ctrl-C) it is removed and the target left as it was. It is
    opened like any other file, not with ``mkstemp``'s 0600, so it gets the umask's
    mode. A ``path`` that is a symbolic link is written through: the file it points
    to is replaced and the link stays.
    """
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
