"""Attach over a WebSocket (GET /containers/{id}/attach/ws) with a real WebSocket client (wsproto's
client side, over berthd's unix socket): handshake, output as messages, stdin, close frames. The
expectations are what dockerd 20.10 answered to the same client."""

from __future__ import annotations

import socket
import time

import httpx
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Message, RejectConnection, Request

from tests.e2e.daemon import Berthd


class WsClient:
    def __init__(self, berthd: Berthd, target: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(berthd.host.removeprefix("unix://"))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="berth", target=target)))
        self.messages: list[bytes | str] = []
        self.close_code: int | None = None
        self.accepted = False
        while not self.accepted:
            self._read()

    def _read(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                raise AssertionError(f"handshake refused: {event.status_code}")
            elif isinstance(event, Message):
                self.messages.append(event.data if isinstance(event.data, str) else bytes(event.data))
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
        return True

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def read_until(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.text() and time.monotonic() < deadline and self.close_code is None:
            if not self._read():
                break
        return self.text()

    def read_to_close(self) -> None:
        while self.close_code is None and self._read():
            pass

    def text(self) -> str:
        return "".join(m if isinstance(m, str) else m.decode() for m in self.messages)

    def close(self) -> None:
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        finally:
            self.sock.close()


def test_stdin_in_and_output_out_as_binary_messages(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "-i", "--network", "none", "busybox", "cat").stdout.strip()
    try:
        c = WsClient(berthd, f"/v1.44/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1")
        c.send(b"hello over a websocket\n")
        assert c.read_until("hello over a websocket\n") == "hello over a websocket\n"
        assert all(isinstance(m, bytes) for m in c.messages)  # binary frames since API 1.28
        c.close()
        time.sleep(0.3)
        assert d("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"  # detached, still running
    finally:
        d("rm", "-f", cid)


def test_logs_of_an_exited_container_then_a_close_frame(berthd: Berthd) -> None:
    d = berthd.docker
    cid = d("run", "-d", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2").stdout.strip()
    try:
        d("wait", cid)
        c = WsClient(berthd, f"/v1.44/containers/{cid}/attach/ws?logs=1&stdout=1&stderr=1")
        c.read_to_close()
        assert sorted(c.text().split()) == ["err", "out"]  # not multiplexed: the raw bytes
        assert c.close_code == 1000
        c.sock.close()
        # before 1.42 the three streams are always on; before 1.28 the frames are text
        c = WsClient(berthd, f"/v1.27/containers/{cid}/attach/ws?logs=1")
        c.read_to_close()
        assert sorted(c.text().split()) == ["err", "out"] and all(isinstance(m, str) for m in c.messages)
        c.sock.close()
    finally:
        d("rm", "-f", cid)


def test_a_plain_get_is_refused(berthd: Berthd) -> None:
    cid = berthd.docker("create", "busybox", "true").stdout.strip()
    try:
        transport = httpx.HTTPTransport(uds=berthd.host.removeprefix("unix://"))
        with httpx.Client(transport=transport, base_url="http://berth", timeout=10) as h:
            r = h.get(f"/containers/{cid}/attach/ws?stream=1")  # no Upgrade
            assert r.status_code == 400 and r.json() == {"message": "not websocket protocol"}  # dockerd's words
            r = h.get("/containers/nosuch/attach/ws", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                                                "Sec-WebSocket-Version": "13"})
            assert r.status_code == 404 and r.json() == {"message": "No such container: nosuch"}
    finally:
        berthd.docker("rm", "-f", cid)


