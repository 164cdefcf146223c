"""A live ``graphdir serve`` for the connection tests: a subprocess on a free port, its own database.

:func:`start` waits until the banner is printed and the port answers; :meth:`LiveServer.stop`
terminates the process (and its process group: granian's workers) and closes its pipes, so no
``ResourceWarning`` reaches the test run (warnings are errors).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class LiveServer:
    proc: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    token: str = ""
    #: what the banner printed, by label ("base URL", "tenant id", "token", "CA file", ...): its first word
    banner: dict[str, str] = field(default_factory=dict)
    pumper: threading.Thread | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        try:  # granian workers left in the process group we created
            os.killpg(self.proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        if self.pumper is not None:
            self.pumper.join(timeout=15)  # the pipe ends once every process holding it has exited
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def server_env(workdir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHDIR_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["GRAPHDIR_DATABASE_URL"] = f"sqlite:///{workdir / 'g.db'}"
    env.update({f"GRAPHDIR_{name.upper()}": value for name, value in settings.items()})
    return env


def launch(workdir: Path, port: int, env: dict[str, str], *args: str) -> LiveServer:
    """Start ``graphdir serve ARGS`` (stdout and stderr in one pipe, drained by a thread)."""
    proc = subprocess.Popen([sys.executable, "-m", "graphdir", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    server = LiveServer(proc, port)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.lines.append(line.rstrip("\n"))

    server.pumper = threading.Thread(target=pump, daemon=True)
    server.pumper.start()
    return server


def start(workdir: Path, port: int, env: dict[str, str], *args: str) -> LiveServer:
    """Start ``graphdir serve ARGS`` and wait until its banner is printed and its port answers."""
    server = launch(workdir, port, env, *args)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            for line in list(server.lines):
                label, colon, value = line.partition(":")
                if colon and value.strip() and label not in server.banner:
                    server.banner[label] = value.split()[0]
            if "token" in server.banner and answers(port):
                server.token = server.banner["token"]
                return server
            if server.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"graphdir serve did not come up (exit {server.proc.poll()}):\n" + "\n".join(server.lines))
    except BaseException:
        server.stop()
        raise
