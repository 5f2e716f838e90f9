"""Network namespaces for tests that load kernel rules: never the machine's own tables.

Not a test module; import as ``from tests.switch.netns import ...``.

:func:`fresh_netns` moves the calling thread (the test's) into a new, unnamed network namespace
(``unshare(CLONE_NEWNET)``, the thread-level form of ``unshare -n``) with loopback up, and back
out at the end, whatever happens. Sockets the thread opens there and every process it starts
there (the switch, iptables-restore, nft, SIPVicious) live in the namespace; the kernel frees it,
rules and all, once its last process has gone, so nothing is left behind even when a test
crashes. :func:`in_netns` runs one command in its own throwaway namespace (``unshare -n``), for
``iptables-restore --test`` and ``nft -c``.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_NS = "/proc/thread-self/ns/net"


def current_netns() -> str:
    """The calling thread's network namespace, as ``net:[inode]``."""
    return os.readlink(_NS)


@contextmanager
def fresh_netns() -> Iterator[str]:
    """Run the ``with`` body in a new network namespace with ``lo`` up; yields its name
    (``net:[inode]``). Needs root (CAP_SYS_ADMIN)."""
    libc = ctypes.CDLL(None, use_errno=True)
    home = current_netns()
    fd = os.open(_NS, os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)} (needs root)")
        try:
            inside = current_netns()
            assert inside != home, "unshare did not give a new network namespace"
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
            yield inside
        finally:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to {home}: {os.strerror(err)}")
            assert current_netns() == home
    finally:
        os.close(fd)


def run_in(netns: str, cmd: Sequence[str], text: str | None = None,
           timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (feeding it ``text``) from the calling thread, which must be in ``netns`` (a
    name :func:`fresh_netns` yielded): a guard against loading rules anywhere else."""
    if current_netns() != netns:
        raise AssertionError(f"refusing to run {cmd[0]} outside the test's namespace {netns}")
    return subprocess.run(list(cmd), input=text, capture_output=True, text=True, timeout=timeout)


def in_netns(cmd: Sequence[str], text: str | None = None,
             timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a throwaway network namespace of its own (``unshare -n``)."""
    return subprocess.run(["unshare", "-n", *cmd], input=text, capture_output=True, text=True,
                          timeout=timeout)
