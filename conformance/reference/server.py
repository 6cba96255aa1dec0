"""Running the reference server in a background thread, on a free loopback port unless told otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from conformance.listening import LOOPBACK, bound_socket
from conformance.reference.app import create_app

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server, but stopping as soon as it is asked to (`wake`), not at its next tick, and
    without pausing when nothing is left to close.

    uvicorn checks `should_exit` every 0.1 s, then sleeps 0.1 s before it looks at the connections; a run
    that has written its reports would wait out both for nothing.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _woken: asyncio.Event | None = None

    async def main_loop(self) -> None:
        # uvicorn's own loop (the same ticks: the Date header once a second), each tick cut short by `wake`.
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, without its fixed 0.1 s pause: it asks every connection to close, then waits
        (looking every 5 ms, where uvicorn sleeps 0.1 s first and looks every 0.1 s) while one is still
        answering or a task is still running, up to `timeout_graceful_shutdown` when set (then the tasks are
        cancelled). A run that has closed its connections stops at once. Written against uvicorn 0.55's
        internals (server_state, lifespan); where they are not there, uvicorn's own shutdown runs."""
        state = getattr(self, "server_state", None)
        if not (hasattr(state, "connections") and hasattr(state, "tasks") and hasattr(self, "lifespan")):
            await super().shutdown(sockets)
            return
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        graceful = self.config.timeout_graceful_shutdown
        deadline = None if graceful is None else asyncio.get_running_loop().time() + graceful
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            if deadline is not None and asyncio.get_running_loop().time() > deadline:
                for task in self.server_state.tasks:
                    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
                break
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def wake(self) -> None:
        """Have the loop look at `should_exit` now (from any thread)."""
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(woken.set)


class ReferenceServer:
    """Serve an ASGI app (by default the reference app) from a background thread, on 127.0.0.1 and
    a free port unless told otherwise; `options` are passed on to uvicorn.Config.

    `start()` returns once the server accepts connections (OSError when the address cannot be
    bound); `base_url` is then `http://<host>:<port>`. `stop()` shuts it down and waits for the thread.
    """

    def __init__(
        self,
        app: ASGIApp | None = None,
        api_key: str | None = None,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app if app is not None else create_app(api_key)
        self.host = host
        self.port = port
        self.options = {"log_level": "warning", "access_log": False, "lifespan": "off", **(options or {})}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the reference server is not running")
        return f"http://{self.host}:{self._port}"

    def start(self) -> ReferenceServer:
        if self._thread is not None:
            return self
        sock = bound_socket(self.host, self.port)
        config = uvicorn.Config(self.app, **self.options)
        self._server = _Server(config)
        self._port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="conformance-reference-server", daemon=True
        )
        self._thread.start()
        self._wait_until_started(sock)
        return self

    def _wait_until_started(self, sock: socket.socket) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        assert self._server is not None and self._thread is not None
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                self._reset()
                raise RuntimeError("the reference server did not start")
            time.sleep(0.005)

    def request_stop(self) -> None:
        """Ask the server to shut down and return at once: other work can overlap the shutdown (closing its
        connections), and `stop()` then only waits for what is left of it."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.wake()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.request_stop()
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(STOP_TIMEOUT)
        self._reset()

    def _reset(self) -> None:
        self._server = None
        self._thread = None
        self._port = None

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
