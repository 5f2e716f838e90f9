"""The relay's media port range as even/odd pairs (RTP on the even port, RTCP on the next), sans-IO.

Pairs are handed out first-in first-out: a pair freed by an ended call goes to the back of the
queue, so its late packets (retransmissions, a slow far end) do not land in the next call.

>>> ports = PortAllocator(10000, 10005)
>>> ports.capacity, ports.allocate(), ports.allocate(), ports.in_use
(3, 10000, 10002, 4)
>>> ports.release(10000); ports.allocate()
10004
"""

from __future__ import annotations

from collections import deque

__all__ = ["DEFAULT_PORT_MAX", "DEFAULT_PORT_MIN", "PortAllocator", "PortsExhausted"]

DEFAULT_PORT_MIN = 10000
DEFAULT_PORT_MAX = 20000


class PortsExhausted(RuntimeError):
    """Every pair of the range is in use.

    >>> str(PortsExhausted("no free media ports"))
    'no free media ports'
    """


class PortAllocator:
    """Even RTP ports of [port_min, port_max] whose odd successor is also in range.

    ``allocate`` returns the RTP port (RTCP is that + 1); ``release`` takes the same RTP port
    back. ``in_use`` counts ports, not pairs, so it matches what sockets are open.

    >>> PortAllocator(10001, 10004).allocate()
    10002
    >>> PortAllocator(10, 9)
    Traceback (most recent call last):
    ...
    ValueError: port range 10-9 holds no even/odd pair
    """

    def __init__(self, port_min: int = DEFAULT_PORT_MIN, port_max: int = DEFAULT_PORT_MAX) -> None:
        if not (1 <= port_min <= 65535 and 1 <= port_max <= 65535):
            raise ValueError(f"ports must be 1-65535, got {port_min}-{port_max}")
        first = port_min + (port_min % 2)
        if first + 1 > port_max:
            raise ValueError(f"port range {port_min}-{port_max} holds no even/odd pair")
        self.port_min = port_min
        self.port_max = port_max
        self._free: deque[int] = deque(range(first, port_max, 2))
        self.capacity = len(self._free)
        self._used: set[int] = set()

    @property
    def in_use(self) -> int:
        """Ports (RTP and RTCP) currently handed out."""
        return 2 * len(self._used)

    @property
    def free_pairs(self) -> int:
        """Pairs that can still be allocated."""
        return len(self._free)

    def allocate(self) -> int:
        """The RTP port of a free pair; PortsExhausted if none is left."""
        if not self._free:
            raise PortsExhausted(
                f"no free media ports in {self.port_min}-{self.port_max} "
                f"({self.capacity} pairs in use)"
            )
        port = self._free.popleft()
        self._used.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a pair back; releasing a pair that is not allocated is a bug and raises."""
        if port not in self._used:
            raise ValueError(f"port {port} is not allocated")
        self._used.remove(port)
        self._free.append(port)

    def owns(self, port: int) -> bool:
        """Whether ``port`` is the RTP port of an allocated pair.

        >>> PortAllocator(10000, 10001).owns(10000)
        False
        """
        return port in self._used
