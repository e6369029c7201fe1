"""The HTTP API's listening socket: answers on a kept-alive connection go out at once."""

from __future__ import annotations

import asyncio
import socket

from chargeledger.bootstrap import _listen


async def test_connections_to_the_http_port_send_without_waiting_for_acks() -> None:
    # Without TCP_NODELAY the body of a small answer, written after its headers, waits for
    # the client's delayed ACK: 40 ms per request on a kept-alive connection.
    listening = _listen("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(connected, sock=listening)
    port = listening.getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert await asyncio.wait_for(accepted, 5) != 0
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
