"""The fleet's Channel Access repeater: beacons to every local client, on the fleet's address.

``python -m sim_iocs.repeater --host 127.0.0.1`` (port from ``EPICS_CA_REPEATER_PORT``).

A repeater takes the beacons the IOCs send (the fleet points ``EPICS_CAS_BEACON_PORT`` at
it) and forwards them to every CA client on the host that has registered with it, so that a
client learns at once when a killed IOC comes back. Written here, on caproto's message
classes, because caproto's own repeater (``caproto.sync.repeater``) falls short in two
measured ways:

- libca (pyepics' client) registers with a *zero-length* datagram, as EPICS base does on
  Linux; caproto's repeater records such a client but never answers, and libca, seeing no
  confirmation, prints "CA client library is unable to contact CA repeater after 50 tries"
  about a minute into every session. EPICS' own caRepeater confirms these registrations;
  so does this one.
- caproto's command-line repeater always binds 0.0.0.0; this one binds the fleet's address,
  loopback by default, like the IOCs.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading

import caproto

__all__ = ["Repeater", "main"]

log = logging.getLogger(__name__)

_MAX_DATAGRAM = 65536


class Repeater:
    """Forward beacons to registered clients; confirm every registration.

    Parameters
    ----------
    host
        Address to bind.
    port
        The CA repeater port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)  # to notice stop()
        self.clients: dict[int, str] = {}  # client port -> host
        self._broadcaster = caproto.Broadcaster(our_role=caproto.SERVER)
        self._stop = threading.Event()

    def serve_forever(self) -> None:
        """Handle datagrams until interrupted or :meth:`stop`."""
        while not self._stop.is_set():
            try:
                message, (host, port) = self.sock.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            self.handle(message, host, port)

    def stop(self) -> None:
        """End :meth:`serve_forever` (within 0.2 s) and close the socket."""
        self._stop.set()

    def handle(self, message: bytes, host: str, port: int) -> None:
        """One datagram: a registration (empty or REPEATER_REGISTER) or messages to forward."""
        if not message:  # libca's registration: a zero-length datagram
            self._register(host, port)
            return
        try:
            commands = self._broadcaster.recv(message, (host, port))
        except Exception:  # a malformed datagram must not stop the repeater
            log.warning("ignored a malformed datagram from %s:%d", host, port)
            return
        forward = []
        for command in commands:
            if isinstance(command, caproto.RepeaterRegisterRequest):
                self._register(host, port)
            else:
                if isinstance(command, caproto.Beacon) and command.header.parameter2 == 0:
                    # The IOC left its address for the repeater to fill in.
                    command.header.parameter2 = caproto.ipv4_to_int32(host)
                forward.append(bytes(command))
        if forward:
            self._send_to_clients(b"".join(forward), except_port=port)

    def _register(self, host: str, port: int) -> None:
        self.clients[port] = host
        confirm = self._broadcaster.send(caproto.RepeaterConfirmResponse(host))
        try:
            self.sock.sendto(confirm, (host, port))
        except OSError:
            self.clients.pop(port, None)

    def _send_to_clients(self, data: bytes, except_port: int) -> None:
        for port, host in list(self.clients.items()):
            if port == except_port:
                continue
            try:
                self.sock.sendto(data, (host, port))
            except OSError:  # the client has gone
                del self.clients[port]


def main(argv: list[str] | None = None) -> int:
    """Run the repeater until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sim_iocs.repeater", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    args = parser.parse_args(argv)
    port = int(os.environ.get("EPICS_CA_REPEATER_PORT", "5065"))
    try:
        Repeater(args.host, port).serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
