"""Which local network interface reaches an address; pins TensorPipe and Gloo to it.

TensorPipe and Gloo otherwise advertise the address the hostname resolves to, which is
127.0.0.1 on many hosts: other hosts could not reach it. They take the interface from
``TP_SOCKET_IFNAME`` / ``GLOO_SOCKET_IFNAME``; we set those unless the user did.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct

SIOCGIFADDR = 0x8915


def _ipv4_of(interface: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", interface[:15].encode()))
        except OSError:  # no IPv4 address on this interface
            return None
    return socket.inet_ntoa(packed[20:24])


def local_address_towards(addr: str) -> str:
    """The local IPv4 address packets to ``addr`` leave from (UDP connect sends nothing)."""
    if ipaddress.ip_address(socket.gethostbyname(addr)).is_loopback:
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((addr, 9))
        return sock.getsockname()[0]


def interface_towards(addr: str) -> str:
    """Name of the interface holding the local address that reaches ``addr``."""
    local = local_address_towards(addr)
    for _, name in socket.if_nameindex():
        if _ipv4_of(name) == local:
            return name
    raise OSError(f"no local interface holds {local} (the route to {addr})")


def pin_interfaces(addr: str) -> str:
    """Make TensorPipe and Gloo use the interface towards ``addr``; returns its name."""
    name = interface_towards(addr)
    os.environ.setdefault("TP_SOCKET_IFNAME", name)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", name)
    return name
