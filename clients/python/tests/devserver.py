"""Starts and stops real ``leasehold dev`` servers for the tests.

Each server is ``$LEASEHOLD_BIN dev --listen 127.0.0.1:0 --data-dir <fresh temp dir>`` (it
starts its own ``redis-server``), in a session of its own. Its address is read from its
log line ``listening on http://127.0.0.1:PORT``, and it counts as up once ``GET /readyz``
answers 200. It is stopped by its pid (SIGTERM, which also stops its Redis; SIGKILL to its
process group if it does not end in time), and every server still running when the tests
end is stopped then too.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Set

import httpx

#: This package's directory (``clients/python``).
PACKAGE_DIR = Path(__file__).resolve().parent.parent

_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

# Every server started and not yet stopped, for the safety net at exit.
_running: Set["DevServer"] = set()
_running_lock = threading.Lock()


def leasehold_bin() -> str:
    """The server binary: ``$LEASEHOLD_BIN``, else the workspace's debug build."""
    configured = os.environ.get("LEASEHOLD_BIN")
    if configured:
        return configured
    return str((PACKAGE_DIR / ".." / ".." / "target" / "debug" / "leasehold").resolve())


class DevServer:
    """One running ``leasehold dev``, with ``flags`` added to its command line."""

    def __init__(self, *flags: str, startup_timeout: float = 30.0) -> None:
        binary = leasehold_bin()
        if not os.access(binary, os.X_OK):
            raise RuntimeError(
                f"no leasehold binary at {binary}: build it, or set LEASEHOLD_BIN"
            )
        self.data_dir = tempfile.mkdtemp(prefix="leasehold-py-dev-")
        self.lines: List[str] = []
        self._found = threading.Event()
        self.url = ""
        env = dict(os.environ, NO_COLOR="1")
        self.process = subprocess.Popen(
            [binary, "dev", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, *flags],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            start_new_session=True,
        )
        with _running_lock:
            _running.add(self)
        # Reads its output to the end, so the pipe never fills, and finds the address.
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._wait_until_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if not self._found.is_set():
                match = _LISTENING.search(line)
                if match:
                    self.url = match.group(1)
                    self._found.set()

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._found.wait(timeout):
            raise RuntimeError("leasehold dev did not say where it listens:\n" + self.output())
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("leasehold dev ended:\n" + self.output())
            try:
                if httpx.get(self.url + "/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("leasehold dev never became ready:\n" + self.output())

    def output(self) -> str:
        return "\n".join(self.lines[-50:])

    @property
    def pid(self) -> int:
        return self.process.pid

    def pause(self) -> None:
        """Freezes the server (SIGSTOP): connections are accepted by the kernel, and
        nothing is answered."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stops the server and its Redis, and removes its data."""
        if self.process.poll() is None:
            try:
                os.kill(self.pid, signal.SIGCONT)  # a paused server cannot act on SIGTERM
                os.kill(self.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill_group()
            except ProcessLookupError:
                pass
        else:
            # It ended by itself: make sure nothing it started lives on.
            self._kill_group()
        self.process.wait()
        if self.process.stdout is not None:
            self._reader.join(timeout=5)
            self.process.stdout.close()
        with _running_lock:
            _running.discard(self)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _kill_group(self) -> None:
        # The server was started in a session of its own, so its process group is its
        # pid, and holds only it and the redis-server it started.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> DevServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    """Stops every server still running (the safety net at exit)."""
    with _running_lock:
        servers = list(_running)
    for server in servers:
        server.stop()


atexit.register(stop_all)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


__all__ = ["DevServer", "PACKAGE_DIR", "leasehold_bin", "stop_all", "free_port"]
