"""The relay's upstream client against a scripted HTTP/1.1 server on loopback: framing both ways, reuse of
kept-alive connections, interim answers, and every way the upstream can fail, each one UpstreamError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from conformance.proxy.upstream import Upstream, UpstreamError

JSON_ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\nx-b: 2\r\nx-a: 1\r\n\r\n{"ok": true}'
)


class Scripted:
    """A loopback server answering each request with the next scripted answer (bytes, or a callable writing
    to the stream itself); it records each request's raw bytes and counts connections."""

    def __init__(self, answers: list[bytes | Callable[[asyncio.StreamWriter], object]], close_after: bool = False):
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.answers:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                answer = self.answers.pop(0)
                if callable(answer):
                    result = answer(writer)
                    if asyncio.iscoroutine(result):
                        await result
                else:
                    writer.write(answer)
                await writer.drain()
                if self.close_after:
                    return
        except (asyncio.CancelledError, ConnectionError):
            return  # the test is over, or the client went away
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        return head + await reader.readexactly(length)
    if b"transfer-encoding: chunked" in lower:
        body = b""
        while not body.endswith(b"0\r\n\r\n"):
            body += await reader.read(65536)
        return head + body
    return head


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _fetch(upstream: Upstream, method: str = "POST", target: str = "/v1/messages", **kwargs):
    headers = kwargs.get("headers", [(b"content-length", b"2")])
    body = kwargs.get("body", _chunks(b"{}"))
    response = await upstream.send(method, target, headers, body)
    chunks = [chunk async for chunk in response.body()]
    await response.aclose()
    return response, b"".join(chunks)


def _upstream(server: Scripted) -> Upstream:
    return Upstream(server.url, connect_timeout=5, max_silence=5)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def test_an_answer_comes_back_as_sent_and_the_connection_is_reused() -> None:
    async def scenario() -> None:
        async with Scripted([JSON_ANSWER, JSON_ANSWER]) as server:
            host = server.url.removeprefix("http://").encode()
            upstream = Upstream(server.url + "/base", connect_timeout=5, max_silence=5)
            for _ in range(2):
                response, body = await _fetch(upstream)
                assert response.status == 200 and body == b'{"ok": true}'
                assert response.headers == [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"12"),
                    (b"x-b", b"2"),
                    (b"x-a", b"1"),
                ]
            await upstream.aclose()
        assert server.connections == 1
        assert (
            server.requests[0]
            == b"POST /base/v1/messages HTTP/1.1\r\nhost: " + host + b"\r\ncontent-length: 2\r\n\r\n{}"
        )

    run(scenario())


def test_a_chunked_answer_loses_its_framing_and_keeps_its_content_coding() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
    answer = head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"

    async def scenario() -> None:
        async with Scripted([answer]) as server:
            response, body = await _fetch(_upstream(server))
        assert body == b"abcde" and (b"content-encoding", b"gzip") in response.headers

    run(scenario())


def test_an_answer_without_length_ends_with_the_connection() -> None:
    async def scenario() -> None:
        async with Scripted([b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"] * 2, True) as server:
            upstream = _upstream(server)
            assert (await _fetch(upstream))[1] == b"until the end"
            assert (await _fetch(upstream))[1] == b"until the end"  # on a new connection: the first has ended

    run(scenario())


def test_a_body_without_length_goes_chunked_and_interim_answers_are_skipped() -> None:
    async def scenario() -> None:
        async with Scripted([b"HTTP/1.1 100 Continue\r\n\r\n" + JSON_ANSWER]) as server:
            response, body = await _fetch(_upstream(server), headers=[], body=_chunks(b"ab", b"", b"cde"))
        assert response.status == 200 and body == b'{"ok": true}'
        assert server.requests[0].endswith(b"transfer-encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")

    run(scenario())


def test_an_answer_to_head_has_no_body() -> None:
    async def scenario() -> None:
        async with Scripted([b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n"]) as server:
            response, body = await _fetch(_upstream(server), method="HEAD", headers=[], body=None)
        assert response.status == 200 and body == b""

    run(scenario())


def test_an_idle_connection_the_upstream_closed_is_not_reused() -> None:
    async def scenario() -> None:
        async with Scripted([JSON_ANSWER, JSON_ANSWER], close_after=True) as server:
            upstream = _upstream(server)
            await _fetch(upstream)
            await asyncio.sleep(0.1)  # the close reaches the idle connection
            response, _ = await _fetch(upstream)
        assert response.status == 200 and server.connections == 2

    run(scenario())


def test_a_request_the_upstream_closed_a_kept_alive_connection_on_unanswered_is_sent_again_on_a_new_one() -> None:
    """The upstream closing an idle connection as the next request goes out on it (its keep-alive timeout):
    the request went out whole and not a byte came back, so it is sent once more, body and all, on a new
    connection. On a new connection, the same is an error (test_every_way_the_upstream_fails...)."""

    def close_unanswered(writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def scenario() -> None:
        async with Scripted([JSON_ANSWER, close_unanswered, JSON_ANSWER]) as server:
            upstream = _upstream(server)
            await _fetch(upstream)
            response, body = await _fetch(upstream, body=_chunks(b"{", b"}"))
            await upstream.aclose()
        assert (response.status, body) == (200, b'{"ok": true}')
        assert server.connections == 2
        assert server.requests[1] == server.requests[2] and server.requests[2].endswith(b"\r\n\r\n{}")

    run(scenario())


async def _stall(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
    await asyncio.sleep(3)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed the connection without answering"),
        (b"NOT HTTP AT ALL\r\n\r\n", "not valid HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", "closed the connection before the answer ended"),
        (_stall, "sent nothing for 0.5 s"),
    ],
)
def test_every_way_the_upstream_fails_is_one_upstream_error(answer: object, message: str) -> None:
    async def scenario() -> None:
        async with Scripted([answer], close_after=True) as server:
            upstream = Upstream(server.url, connect_timeout=5, max_silence=0.5)
            with pytest.raises(UpstreamError, match=message):
                await _fetch(upstream)

    run(scenario())


def test_an_upstream_that_cannot_be_reached_is_an_upstream_error() -> None:
    async def scenario() -> None:
        async with Scripted([]) as server:
            url = server.url
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamError, match=r"cannot connect to 127\.0\.0\.1"):
            await _fetch(Upstream(url, connect_timeout=5, max_silence=5))

    run(scenario())


def test_bytes_past_the_end_of_an_answer_leave_it_whole_but_the_connection_is_not_reused() -> None:
    async def scenario() -> None:
        async with Scripted([JSON_ANSWER + b"junk", JSON_ANSWER]) as server:
            upstream = _upstream(server)
            assert (await _fetch(upstream))[1] == b'{"ok": true}'
            assert (await _fetch(upstream))[1] == b'{"ok": true}'
        assert server.connections == 2

    run(scenario())


def test_only_http_urls_are_upstreams() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Upstream("ftp://example.com", connect_timeout=1, max_silence=1)
