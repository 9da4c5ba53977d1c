"""`checkpoints download` against a local HTTP mirror on 127.0.0.1 serving seeded files.

The server is a real socket server (http.server): Range requests, a connection
that breaks off mid-file, wrong content and a lying Content-Length are all
exercised through urllib, the same path a user behind a mirror takes.
"""
import hashlib
import http.server
import threading
from dataclasses import replace

import numpy as np
import pytest

from talkingface.weights import manifest as checkpoints
from talkingface.cli import module_main
from talkingface.errors import CheckpointError


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    break_after: dict[str, int] = {}  # file -> bytes sent before the connection drops (once)
    claim_size: dict[str, int] = {}  # file -> Content-Length announced instead of the real size
    requests: list[tuple[str, str | None]] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.requests.append((name, self.headers.get("Range")))
        data = self.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(self.claim_size.pop(name, len(body))))
        self.end_headers()
        cut = self.break_after.pop(name, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        if cut is not None:
            self.close_connection = True


@pytest.fixture()
def mirror():
    MirrorHandler.files, MirrorHandler.break_after, MirrorHandler.claim_size = {}, {}, {}
    MirrorHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/weights", MirrorHandler
    server.shutdown()
    server.server_close()


def _seeded_file(seed: int, size: int = 300_000) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _hub_named_spec(data: bytes):
    """A manifest entry named like torch.hub files: the first hex digits of the sha256 in the name."""
    digest = hashlib.sha256(data).hexdigest()
    return replace(checkpoints.MANIFEST["s3fd"], name="seeded", filename=f"seeded-{digest[:10]}.pth",
                   url=f"https://example.invalid/seeded-{digest[:10]}.pth")


def test_mirror_url_from_config_or_environment(monkeypatch):
    spec = checkpoints.MANIFEST["lnet"]
    monkeypatch.delenv(checkpoints.MIRROR_ENV, raising=False)
    assert checkpoints.source_url(spec) == spec.url
    monkeypatch.setenv(checkpoints.MIRROR_ENV, "http://mirror.lan/ckpt/")
    assert checkpoints.source_url(spec) == "http://mirror.lan/ckpt/LNet.pth"
    assert checkpoints.source_url(spec, "http://other/x") == "http://other/x/LNet.pth"  # the config key wins


def test_interrupted_download_is_resumed_from_the_part_file(mirror, tmp_path):
    base, server = mirror
    data = _seeded_file(1)
    spec = _hub_named_spec(data)
    server.files[spec.filename] = data
    server.break_after[spec.filename] = 100_000
    with pytest.raises(CheckpointError, match="broke off after 100000 of 300000 bytes") as info:
        checkpoints.download("seeded", tmp_path, mirror=base, spec=spec, timeout=5)
    assert "resumes" in info.value.hint
    part = tmp_path / (spec.filename + ".part")
    assert part.stat().st_size == 100_000 and not (tmp_path / spec.filename).exists()
    out = checkpoints.download("seeded", tmp_path, mirror=base, spec=spec, timeout=5)
    assert out == tmp_path / spec.filename and out.read_bytes() == data and not part.exists()
    assert server.requests == [(spec.filename, None), (spec.filename, "bytes=100000-")]


def test_corrupt_file_is_rejected_and_not_left_under_its_final_name(mirror, tmp_path):
    base, server = mirror
    # the real manifest entry: its name carries 619a316812, the mirror serves other bytes
    server.files["s3fd-619a316812.pth"] = _seeded_file(2)
    with pytest.raises(CheckpointError, match="corrupt or not the official one.*619a316812"):
        checkpoints.download("s3fd", tmp_path, mirror=base, timeout=5)
    assert list(tmp_path.iterdir()) == []  # neither the final name nor a .part file


def test_wrong_size_is_reported(mirror, tmp_path):
    base, server = mirror
    data = _seeded_file(3, 50_000)
    spec = replace(_hub_named_spec(data), size=60_000)
    server.files[spec.filename] = data
    with pytest.raises(CheckpointError, match="downloaded 50000 bytes but the manifest expects 60000"):
        checkpoints.download("seeded", tmp_path, mirror=base, spec=spec, timeout=5)
    assert not (tmp_path / spec.filename).exists()
    # a server that announces more than it sends: reported, and kept as .part for the next attempt
    spec = _hub_named_spec(data)
    server.files[spec.filename] = data
    server.claim_size[spec.filename] = 70_000
    with pytest.raises(CheckpointError, match="broke off after 50000 of 70000 bytes"):
        checkpoints.download("seeded", tmp_path, mirror=base, spec=spec, timeout=5)
    assert not (tmp_path / spec.filename).exists()


def test_download_command_through_the_mirror_environment_variable(mirror, tmp_path, monkeypatch, capsys):
    base, server = mirror
    server.files["sfd_face.pth"] = _seeded_file(4, 1000)
    monkeypatch.setenv(checkpoints.MIRROR_ENV, base)
    assert module_main(["checkpoints", "download", "syncnet_s3fd", f"--checkpoint_dir={tmp_path}"]) == 0
    assert (tmp_path / "sfd_face.pth").read_bytes() == server.files["sfd_face.pth"]
    assert "download  syncnet_s3fd" in capsys.readouterr().out
    # absent on the mirror: the error names the URL and the way out
    assert module_main(["checkpoints", "download", "syncnet", f"--checkpoint_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert f"{base}/syncnet_v2.model: HTTP 404" in err and "TALKINGFACE_CHECKPOINT_MIRROR" in err


def test_verify_checks_the_hash_in_the_file_name(tmp_path, capsys):
    (tmp_path / "s3fd-619a316812.pth").write_bytes(_seeded_file(5, 1000))
    assert module_main(["checkpoints", "verify", "s3fd", f"--checkpoint_dir={tmp_path}"]) == 2
    assert "sha256-mismatch" in capsys.readouterr().out
