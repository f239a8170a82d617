"""Drive real Yjs clients (Node, y-websocket's WebsocketProvider) from a test.

``tests/node/yclient.mjs`` hosts named clients in one Node process and speaks
JSON lines: one command per line on its stdin, one reply per command (same
``id``) on its stdout. :class:`NodeClients` starts that process, sends
commands and awaits their replies, each with a timeout; :class:`NodeClient`
is a handle on one named client in it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
YCLIENT = NODE_DIR / "yclient.mjs"
#: Replies can carry whole documents (megabytes) on one line.
_LINE_LIMIT = 256 * 1024 * 1024


def node_available() -> bool:
    """Node is on the PATH and ``npm install`` has been run in tests/node."""
    return bool(shutil.which("node")) and (NODE_DIR / "node_modules" / "y-websocket").is_dir()


class NodeError(RuntimeError):
    """A command was answered with an error, or the Node process misbehaved."""


class NodeClients:
    """One ``yclient.mjs`` process and the commands sent to it.

    ``token``, when given, is what its clients present to the server unless
    ``connect`` is given another one.
    """

    def __init__(self, log_path: Path, *, token: str | None = None) -> None:
        self.log_path = log_path
        self.token = token
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._log = None

    async def start(self, timeout: float = 15.0) -> NodeClients:
        node = shutil.which("node")
        if node is None:
            raise NodeError("node is not on the PATH")
        self._log = self.log_path.open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            node,
            str(YCLIENT),
            cwd=NODE_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=_LINE_LIMIT,
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        if not line or not json.loads(line).get("ready"):
            raise NodeError(f"yclient did not start: {line!r}\n{self.stderr()}")
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    break
                reply = json.loads(line)
                future = self._pending.pop(reply.get("id"), None)
                if future is None or future.done():
                    continue
                if "error" in reply:
                    future.set_exception(NodeError(reply["error"]))
                else:
                    future.set_result(reply.get("result"))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(NodeError(f"yclient exited\n{self.stderr()}"))
            self._pending.clear()

    async def call(self, cmd: str, timeout: float = 20.0, **args: Any) -> Any:
        """Send one command and return its result; an error reply raises NodeError."""
        if self._proc is None or self._proc.stdin is None or self._proc.returncode is not None:
            raise NodeError(f"yclient is not running\n{self.stderr()}")
        command_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        self._proc.stdin.write(json.dumps({"id": command_id, "cmd": cmd, **args}).encode() + b"\n")
        await self._proc.stdin.drain()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise NodeError(f"no reply to {cmd} {args.get('name', '')} within {timeout}s") from None
        finally:
            self._pending.pop(command_id, None)

    async def connect(
        self,
        name: str,
        ws_base: str,
        room: str,
        *,
        user: dict[str, Any] | None = None,
        token: str | None = None,
        wait_synced: bool = True,
        timeout: float = 10.0,
        **extra: Any,
    ) -> NodeClient:
        """A new client in ``room`` of the server at ``ws_base`` (``ws://host:port``).

        It signs in with ``token`` (``?token=`` on the socket URL), else with
        the process's default token, else with none.
        """
        args: dict[str, Any] = {"name": name, "url": f"{ws_base}/rooms", "room": room, **extra}
        if user is not None:
            args["user"] = user
        token = token if token is not None else self.token
        if token is not None:
            args["token"] = token
        await self.call("connect", **args)
        client = NodeClient(self, name)
        if wait_synced:
            await client.wait_synced(timeout)
        return client

    async def close(self, timeout: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._log is not None:
            self._log.close()


class NodeClient:
    """One named y-websocket client inside a :class:`NodeClients` process."""

    def __init__(self, host: NodeClients, name: str) -> None:
        self.host = host
        self.name = name

    def __repr__(self) -> str:
        return f"<NodeClient {self.name}>"

    async def call(self, cmd: str, timeout: float = 20.0, **args: Any) -> Any:
        return await self.host.call(cmd, timeout=timeout, name=self.name, **args)

    async def wait_synced(self, timeout: float = 10.0) -> dict[str, Any]:
        return await self.call("waitSynced", timeout=timeout + 5, timeoutMs=int(timeout * 1000))

    async def wait_connected(self, timeout: float = 10.0) -> dict[str, Any]:
        return await self.call("waitConnected", timeout=timeout + 5, timeoutMs=int(timeout * 1000))

    async def wait_files(self, files: dict[str, str], timeout: float = 10.0) -> dict[str, str]:
        return await self.call(
            "waitFiles", timeout=timeout + 5, files=files, timeoutMs=int(timeout * 1000)
        )

    async def insert(self, path: str, text: str, index: int = -1, repeat: int | None = None) -> int:
        args: dict[str, Any] = {"path": path, "text": text, "index": index}
        if repeat is not None:
            args["repeat"] = repeat
        return (await self.call("insert", **args))["length"]

    async def delete(self, path: str, index: int, length: int) -> int:
        return (await self.call("delete", path=path, index=index, length=length))["length"]

    async def set_file(self, path: str, content: str) -> None:
        await self.call("setFile", path=path, content=content)

    async def delete_file(self, path: str) -> bool:
        return (await self.call("deleteFile", path=path))["existed"]

    async def files(self) -> dict[str, str]:
        return await self.call("files")

    async def random_edits(self, path: str, count: int, seed: int, timeout: float = 60.0) -> Any:
        return await self.call("randomEdits", timeout=timeout, path=path, count=count, seed=seed)

    async def awareness(self) -> dict[int, Any]:
        """Remote states as this client sees them, by client id."""
        return {int(k): v for k, v in (await self.call("awareness")).items()}

    async def awareness_raw(self) -> dict[int, dict[str, Any]]:
        """The last awareness entry received per client: clock, json, base64 (exact bytes)."""
        return {int(k): v for k, v in (await self.call("awarenessRaw")).items()}

    async def local_awareness(self) -> dict[str, Any]:
        return await self.call("localAwareness")

    async def set_awareness(self, state: Any) -> None:
        await self.call("setAwareness", state=state)

    async def disconnect(self) -> dict[str, Any]:
        return await self.call("disconnect")

    async def reconnect(self) -> dict[str, Any]:
        return await self.call("reconnect")

    async def kill(self) -> None:
        await self.call("kill")

    async def destroy(self) -> None:
        await self.call("destroy")

    async def status(self) -> dict[str, Any]:
        return await self.call("status")

    async def client_id(self) -> int:
        return (await self.status())["clientID"]

    async def state_vector(self) -> dict[str, Any]:
        return await self.call("stateVector")


async def eventually(
    check: Callable[[], Awaitable[bool]],
    timeout: float = 10.0,
    what: str = "",
    interval: float = 0.02,
) -> None:
    """Await ``check()`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)


def resolve_in_yjs(state: bytes, file: str, pairs: list[tuple[bytes, bytes]]) -> list[str]:
    """The text between each pair of Yjs relative positions, resolved by real Yjs
    (``tests/node/relpos.mjs``) in the document ``state``'s file ``file``."""
    payload = {
        "state": base64.b64encode(state).decode(),
        "file": file,
        "anchors": [[base64.b64encode(a).decode(), base64.b64encode(b).decode()] for a, b in pairs],
    }
    done = subprocess.run(
        ["node", str(NODE_DIR / "relpos.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [found[2] for found in json.loads(done.stdout)]
