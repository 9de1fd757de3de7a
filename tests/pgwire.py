"""A loopback TCP proxy in front of PostgreSQL that counts the client's round trips.

In the PostgreSQL protocol a client waits for the server only after a Sync (the end of an extended-query
exchange: prepare, or bind/execute) or a simple Query message, so counting those two counts round
trips, whatever the driver does (prepares, pool resets, BEGIN/COMMIT).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


class RoundTripCounter:
    def __init__(self) -> None:
        self.round_trips = 0

    async def _client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # untyped start-up messages first (an SSL or GSS request is answered by one byte, then the start-up)
        while True:
            head = await reader.readexactly(8)
            writer.write(head + await reader.readexactly(int.from_bytes(head[:4], "big") - 8))
            if int.from_bytes(head[4:], "big") not in (_SSL_REQUEST, _GSSENC_REQUEST):
                break
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(int.from_bytes(head[1:], "big") - 4)
            if head[:1] in (b"S", b"Q"):
                self.round_trips += 1
            writer.write(head + body)
            await writer.drain()

    @staticmethod
    async def _server_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


def upstream(database_url: str) -> tuple[str | tuple[str, int], dict[str, str]]:
    """Where the server listens (a unix socket path, or host and port) and the URL's other query options.

    A URL may name its server in the query (`?host=/socket/dir`, as the embedded server's does); the
    proxy's own URL must not, or the driver would go around the proxy."""
    parts = urlsplit(database_url)
    options = dict(parse_qsl(parts.query))
    host = options.pop("host", None) or parts.hostname or "127.0.0.1"
    port = int(options.pop("port", None) or parts.port or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", options
    return (host, port), options


@contextlib.asynccontextmanager
async def counting_proxy(database_url: str) -> AsyncIterator[tuple[str, RoundTripCounter]]:
    """(a URL that reaches the same database through the proxy, its counter)."""
    parts = urlsplit(database_url)
    server_address, options = upstream(database_url)
    counter = RoundTripCounter()
    pipes: set[asyncio.Task[None]] = set()

    async def connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if isinstance(server_address, str):
            server_r, server_w = await asyncio.open_unix_connection(server_address)
        else:
            server_r, server_w = await asyncio.open_connection(*server_address)
        up = asyncio.ensure_future(counter._client_to_server(client_r, server_w))
        down = asyncio.ensure_future(counter._server_to_client(server_r, client_w))
        pipes.update((up, down))
        await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for w in (client_w, server_w):
            w.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    proxy_port = server.sockets[0].getsockname()[1]
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0] + "@" if len(netloc) == 2 else ""
    query = urlencode({**options, "sslmode": "disable"})
    url = urlunsplit((parts.scheme, f"{userinfo}127.0.0.1:{proxy_port}", parts.path, query, ""))
    try:
        yield url, counter
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()
