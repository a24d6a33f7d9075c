"""The fleet's CA repeater confirms every registration (libca's are zero-length) and
forwards IOC beacons to the registered clients."""

from __future__ import annotations

import socket
import threading

import caproto
import pytest

from sim_iocs.repeater import Repeater


@pytest.fixture
def repeater():
    server = Repeater("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(5)
    server.sock.close()


def _client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    return sock


def _commands(data: bytes):
    client_side = caproto.Broadcaster(our_role=caproto.CLIENT)
    return client_side.recv(data, ("127.0.0.1", 0))


@pytest.mark.parametrize("zero_length", [True, False], ids=["libca", "caproto"])
def test_every_registration_is_confirmed(repeater, zero_length):
    address = repeater.sock.getsockname()
    with _client() as client:
        if zero_length:  # what libca sends on Linux
            client.sendto(b"", address)
        else:
            request = caproto.Broadcaster(our_role=caproto.CLIENT).send(
                caproto.RepeaterRegisterRequest("127.0.0.1")
            )
            client.sendto(request, address)
        reply, _ = client.recvfrom(1024)
    (confirm,) = _commands(reply)
    assert isinstance(confirm, caproto.RepeaterConfirmResponse)


def test_beacons_reach_registered_clients_with_the_iocs_address(repeater):
    address = repeater.sock.getsockname()
    with _client() as client, _client() as ioc:
        client.sendto(b"", address)
        client.recvfrom(1024)  # the confirmation
        beacon = caproto.Broadcaster(our_role=caproto.SERVER).send(
            caproto.Beacon(13, 5070, 7, "0.0.0.0")
        )
        ioc.sendto(beacon, address)
        data, _ = client.recvfrom(1024)
    (forwarded,) = _commands(data)
    assert isinstance(forwarded, caproto.Beacon)
    assert forwarded.server_port == 5070
    assert forwarded.address == "127.0.0.1"  # filled in from where it came


def test_a_malformed_datagram_does_not_stop_it(repeater):
    address = repeater.sock.getsockname()
    with _client() as client:
        client.sendto(b"\x01\x02\x03", address)
        client.sendto(b"", address)
        reply, _ = client.recvfrom(1024)
    assert isinstance(_commands(reply)[0], caproto.RepeaterConfirmResponse)
