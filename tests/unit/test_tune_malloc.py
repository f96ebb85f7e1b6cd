"""A served process keeps freed heap memory instead of trimming it at every
flush (server.tune_malloc): checked in a fresh interpreter, where glibc's
heap top (sbrk(0)) would otherwise fall back after the buffers of one read
are freed."""

import ctypes.util
import platform
import subprocess
import sys

import pytest

# Allocate what one fan-out read makes (a read, 8 framed shares), free it, and
# report whether the heap's top came down again.
PROBE = r"""
import ctypes, sys
libc = ctypes.CDLL(None)
libc.sbrk.restype = ctypes.c_void_p
libc.sbrk.argtypes = (ctypes.c_ssize_t,)
if sys.argv[1] == "tuned":
    from pluggy_nats.server import tune_malloc
    assert tune_malloc()
shrunk = 0
for _ in range(20):
    bufs = [bytearray(80_000) for _ in range(9)]
    top = libc.sbrk(0)
    del bufs
    shrunk += libc.sbrk(0) < top
print(shrunk)
"""


def _glibc():
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" \
        and ctypes.util.find_library("c") is not None


@pytest.mark.skipif(not _glibc(),
                    reason="glibc's malloc only: other C libraries keep their own policy")
def test_freed_buffers_stay_with_a_tuned_process():
    def shrinks(mode):
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                             timeout=60, check=True)
        return int(out.stdout.strip())

    assert shrinks("default") > 0, "glibc did not trim its heap: the probe shows nothing"
    assert shrinks("tuned") == 0
