"""Small file helpers: OS errors as StoreError, checksummed atomic files."""

import errno
import os
import zlib

from .types import ErrStorageFull, StoreError

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def store_error(exc, what):
    """The StoreError for an OSError: ErrStorageFull when the disk refused the write."""
    cls = ErrStorageFull if exc.errno in _FULL else StoreError
    return cls("%s: %s" % (what, exc.strerror or exc))


def atomic_write(path, payload, fsync=False):
    """Write ``crc32 | payload`` to a temporary file and rename it over ``path``."""
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, zlib.crc32(payload).to_bytes(4, "little") + payload)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if fsync:
            fsync_dir(os.path.dirname(path))
    except OSError as exc:
        raise store_error(exc, "writing %s" % os.path.basename(path))


def read_checked(path):
    """The payload of a file written by atomic_write, or None if missing or damaged."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if len(raw) < 4 or zlib.crc32(raw[4:]) != int.from_bytes(raw[:4], "little"):
        return None
    return raw[4:]


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
