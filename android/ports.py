"""Is a local TCP port free to bind? One check shared by the emulator launcher, the simulated
device runner and the private adb servers, so they agree on what "free" means."""

from __future__ import annotations

import socket

__all__ = ["port_free"]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound now (SO_REUSEADDR, so TIME_WAIT does not count).

    A port that is free now can still be taken before the caller binds it; callers retry.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
