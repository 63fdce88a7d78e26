"""`raspberry push` against a local server that records the Hub API calls (no network): one
commit with every export file, the repo made private, a branch, and the token nowhere."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from conftest import run_cli
from test_export import MADE, _data, _row

from raspberry.build_files.store import BuildStore
from raspberry.stages.sft.config import ExportConfig
from raspberry.stages.sft.export import export_rows

TOKEN = "hf_test_token_never_written_42"


class _Hub(http.server.BaseHTTPRequestHandler):
    calls: list[tuple[str, str, str, bytes]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hub.calls.append(("POST", self.path, self.headers.get("Authorization", ""), body))
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/api/repos/create":
            request = json.loads(body)
            self._reply({"url": f"{base}/datasets/{request['organization']}/{request['name']}"})
        elif self.path == "/api/validate-yaml":
            self._reply({"errors": [], "warnings": []})
        elif "/preupload/" in self.path:
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            self._reply({"files": modes})
        elif "/commit/" in self.path:
            repo = self.path.split("/api/datasets/")[1].split("/commit/")[0]
            url = f"{base}/datasets/{repo}/commit/{'a' * 40}"
            self._reply({"commitUrl": url, "commitOid": "a" * 40, "pullRequestUrl": None})
        else:  # a branch
            self._reply({})


@contextlib.contextmanager
def _hub(tmp_path: Path, handler: type = _Hub) -> Iterator[dict[str, str]]:
    """A fake Hub on loopback for the test's length; yields the environment that points at it."""
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    _Hub.calls.clear()
    try:
        yield {**os.environ, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf-home"),
               "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}"}  # fmt: skip
    finally:
        hub.shutdown()


def _build(out: Path) -> Path:
    store = BuildStore(out, "pushed")
    store.init({})
    rows = [_row(i, "a" if i % 3 else "b", rewritten=bool(i % 2)) for i in range(12)]
    export_rows(_data(rows), ExportConfig(validation_share=0.2), store.exports(), MADE)
    return out / "pushed" / "exports"


def test_push_uploads_the_exports_as_one_commit(tmp_path):
    out = tmp_path / "builds"
    folder = _build(out)
    with _hub(tmp_path) as env:
        proc = run_cli("push", "pushed", "--repo", "my-org/demo", "--private", "--revision",
                       "nightly", "--output-dir", str(out), env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pushed build pushed to my-org/demo:" in proc.stdout
    paths = [c[1] for c in _Hub.calls]
    assert paths[0] == "/api/repos/create"
    assert json.loads(_Hub.calls[0][3]) == {
        "name": "demo", "organization": "my-org", "visibility": "private", "type": "dataset"
    }  # fmt: skip
    assert "/api/datasets/my-org/demo/branch/nightly" in paths
    commits = [c for c in _Hub.calls if "/commit/" in c[1]]
    assert len(commits) == 1 and commits[0][1] == "/api/datasets/my-org/demo/commit/nightly"
    lines = [json.loads(line) for line in commits[0][3].splitlines()]
    sent = {
        e["value"]["path"]: base64.b64decode(e["value"]["content"])
        for e in lines
        if e["key"] == "file"
    }
    local = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert sent == local  # every file, byte for byte, in the one commit
    assert all(c[2] == f"Bearer {TOKEN}" for c in _Hub.calls)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(TOKEN.encode() in p.read_bytes() for p in written)
    assert TOKEN not in proc.stdout + proc.stderr


def test_push_needs_a_token_and_a_complete_build(tmp_path):
    out = tmp_path / "builds"
    _build(out)
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    proc = run_cli("push", "pushed", "--repo", "o/n", "--output-dir", str(out), env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "HF_TOKEN" in proc.stderr
    BuildStore(out, "unfinished").init({})
    proc = run_cli("push", "unfinished", "--repo", "o/n", "--output-dir", str(out),
                   env={**env, "HF_TOKEN": TOKEN})  # fmt: skip
    assert proc.returncode == 2 and "no complete exports" in proc.stderr


def test_push_refuses_a_build_that_fell_short_unless_allowed(tmp_path):
    out = tmp_path / "builds"
    _build(out)
    store = BuildStore(out, "pushed")
    store.record_run(
        {
            "started_at": 1.0,
            "state": "completed",
            "shortfalls": ["stage verdicts kept no rows of 3"],
        }
    )
    with _hub(tmp_path) as env:
        args = ("push", "pushed", "--repo", "o/n", "--output-dir", str(out))
        refused = run_cli(*args, env=env)
        assert not _Hub.calls
        allowed = run_cli(*args, "--allow-partial", env=env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "fell short (stage verdicts kept no rows of 3)" in refused.stderr
    assert "--allow-partial" in refused.stderr
    assert allowed.returncode == 0 and any("/commit/" in c[1] for c in _Hub.calls), allowed.stderr


class _Refusing(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        data = json.dumps({"error": "Invalid credentials in Authorization header"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_network_and_auth_errors_are_one_line(tmp_path):
    import socket

    out = tmp_path / "builds"
    _build(out)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}  # fmt: skip
    args = ("push", "pushed", "--repo", "o/n", "--output-dir", str(out))
    proc = run_cli(*args, env={**env, "HF_ENDPOINT": f"http://127.0.0.1:{closed}"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-3000:]
    assert "cannot reach the Hub at http://127.0.0.1:" in proc.stderr
    with _hub(tmp_path, _Refusing) as refusing:
        proc = run_cli(*args, env=refusing)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-3000:]
    assert "the Hub refused the push to o/n" in proc.stderr and "write access" in proc.stderr
    assert TOKEN not in proc.stderr
