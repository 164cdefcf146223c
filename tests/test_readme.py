"""The README runs as written: its ``sh`` and ``python`` blocks, in order, against live servers.

The README's first command (``./scripts/serve.sh``) is started here, in the background, on a free
port, with ``XDG_DATA_HOME`` pointing at a temporary directory (so the default database location
is exercised without touching the user's). Then every ``sh`` block of the README and every
``python`` block (fed to the ``python`` on the session's ``PATH``, i.e. the venv's once the README
has activated it) runs in **one** bash session with ``set -euo pipefail``, so the ids, tokens and
secrets a later block needs come from the commands of earlier blocks, exactly as a reader would get
them. A block preceded by ``<!-- readme-test: skip (why) -->`` is not run; one preceded by
``<!-- readme-test: background PORT -->`` is started in the background and waited for on that port;
one preceded by ``<!-- readme-test: needs az -->`` runs with the Azure CLI that scripts/install-az.sh
puts in ``.venv-az`` on the ``PATH`` (and is left out, saying so, when it is not installed). The
README's ports (8080, 8443) are replaced by free ones and ``HOME`` is a temporary directory (the az
profile the README makes lands there); nothing else is changed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from live_helpers import answers, free_port

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"(?:<!-- readme-test: (?P<mark>[^>]*?) -->\n)?```(?P<lang>[a-z]*)\n(?P<code>.*?)```", re.S)
STARTUP_TIMEOUT = 60.0
AZ_BIN = ROOT / ".venv-az" / "bin"


@dataclass
class Block:
    lang: str
    code: str
    mark: str

    @property
    def skipped(self) -> bool:
        return self.mark.startswith("skip")

    @property
    def needs_az(self) -> bool:
        return self.mark == "needs az"

    @property
    def background_port(self) -> int | None:
        m = re.fullmatch(r"background (\d+)", self.mark)
        return int(m.group(1)) if m else None


def readme_blocks(text: str) -> list[Block]:
    return [Block(m["lang"], m["code"], m["mark"] or "") for m in FENCE.finditer(text)]


def script(blocks: list[Block], ports: dict[int, int], logs: Path, az: bool) -> str:
    """The bash session that runs the README's blocks in order (``az``: the Azure CLI is installed)."""
    out = [
        "set -euo pipefail",
        'wait_port() { for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done;'
        ' echo "no server on $1" >&2; return 1; }',
    ]
    for n, b in enumerate(blocks):
        if b.needs_az and not az:
            out.append(f"echo '::block {n} left out: the Azure CLI is not installed in {AZ_BIN.parent}'")
            continue
        if b.skipped or b.lang not in ("sh", "python"):
            continue
        code = b.code
        for old, new in ports.items():
            code = code.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}").replace(f"--port {old}", f"--port {new}")
        out.append(f"echo '::block {n}'")
        if b.lang == "python":
            out.append(f"python - <<'README_PYTHON'\n{code}README_PYTHON")
        elif b.needs_az:
            out.append(f'( PATH="{AZ_BIN}:$PATH"\n{code})')
        elif (port := b.background_port) is not None:
            out.append(f"( {code} ) > {logs / f'background-{n}.log'} 2>&1 &\nwait_port {ports[port]}")
        else:
            out.append(code)
    out.append("echo '::done'")
    return "\n".join(out) + "\n"


def test_the_readme_blocks_are_found() -> None:
    """The parser sees the blocks this test depends on (a reformatted README must not run nothing)."""
    blocks = readme_blocks(README.read_text())
    runnable = [b for b in blocks if not b.skipped and b.lang in ("sh", "python")]
    assert len([b for b in runnable if b.lang == "python"]) >= 2
    assert any(b.background_port == 8443 for b in blocks)
    assert any(b.needs_az and "az ad group member remove" in b.code for b in blocks)
    assert blocks[0].skipped and "./scripts/serve.sh" in blocks[0].code and "./scripts/test.sh" in blocks[0].code
    assert all("README_PYTHON" not in b.code for b in blocks)


def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    venv_graphdir = ROOT / ".venv" / "bin" / "graphdir"
    assert venv_graphdir.exists(), "run ./scripts/test.sh (it creates ./.venv, which the README's commands use)"
    ports = {8080: free_port(), 8443: free_port()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHDIR_") and k not in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    serve_log = tmp_path / "serve.log"
    with open(serve_log, "w") as log:
        server = subprocess.Popen(
            ["./scripts/serve.sh", "--port", str(ports[8080])], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    session: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not answers(ports[8080]):
            assert server.poll() is None, serve_log.read_text()
            assert time.monotonic() < deadline, "serve.sh did not come up:\n" + serve_log.read_text()
            time.sleep(0.1)
        printed = serve_log.read_text()
        assert f"base URL:  http://127.0.0.1:{ports[8080]}/v1.0" in printed, printed
        assert re.search(r"^token:\s+ey\S+$", printed, re.M), printed
        assert str(tmp_path / "data" / "graphdir" / "graphdir.db") in printed, printed  # the default location

        az = (AZ_BIN / "az").exists()
        body = script(readme_blocks(README.read_text()), ports, tmp_path, az)
        (tmp_path / "home").mkdir()
        session = subprocess.Popen(
            ["bash", "-c", body],
            cwd=ROOT,
            env={**env, "HOME": str(tmp_path / "home")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output, _ = session.communicate(timeout=600)
        assert session.returncode == 0, output + "\n--- server ---\n" + serve_log.read_text()
    finally:
        for proc in (session, server):
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=30)
    assert output.rstrip().endswith("::done"), output
    assert output.count("204\n") >= 2, output  # the curl add and remove
    assert "after the removal: []" in output, output  # the SDK program removed the member again
    assert re.search(r"removed [0-9a-f-]{36} from Sales", output), output  # azure-identity + SDK over TLS
    if az:  # az ad group member list printed the member between the add and the remove
        assert "\nadele@contoso.onmicrosoft.com\n" in output, output
    assert '"access_token"' in output and '"token_type":"Bearer"' in output.replace(" ", ""), output  # the password grant
