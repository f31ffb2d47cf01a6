"""Workspace files end to end: the real API, NATS, worker, Docker volume and agent container.

The hostile workspace is made by the agent itself: a scripted model turn runs Bash in the
container to plant symlinks (to /etc/passwd, to the runner's code, to a directory outside),
a FIFO, images and text. Every hostile path is then thrown at every route that takes one.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import docker
import httpx
import pytest

from broker.connect import connect_nats
from tests.modelserver.script import text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.stack import Stack, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
SVG = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><rect/></svg>'
# Made by the agent through its Bash tool, as uid 1000 inside the locked-down container.
PLANT = f"""set -e
mkdir -p d/sub empty d.txt bigdir
printf 'x\\n' > d/f.txt
printf 'print(1)\\n' > d/sub/deep.py
printf 'all:\\n\\techo hi\\n' > Makefile
printf 'hello\\nworld\\n' > notes.md
echo '{PNG_1X1}' | base64 -d > pixel.png
cp pixel.png image.txt
printf 'not an image\\n' > fake.png
printf '%s' '{SVG}' > pic.svg
head -c 3000 /dev/urandom > blob.bin
python3 -c "open('big.txt','w').write('0123456789abcde\\n' * 40000)"
printf 'named download\\n' > download
printf 'named upload\\n' > upload
ln -s /etc/passwd evil
ln -s /opt/agc/runner runner_link
ln -s /opt/agc/runner/main.py runner_file
ln -s /etc evil_dir
ln -s ../../../../../../../../etc/passwd evil_rel
ln -s /workspace/../../etc/shadow evil_abs
ln -s d/f.txt good_link
ln -s d good_dir
mkfifo fifo
echo planted
"""

PASSWD_MARKERS = (b"root:x:0:0", b"root:*:", b"daemon:")


def key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def exec_in(sid: str, cmd: str) -> tuple[int, str]:
    c = docker.from_env().containers.get(f"agc-{sid}")
    code, out = c.exec_run(["bash", "-lc", cmd], user="1000")
    return int(code), out.decode(errors="replace")


def raw_request(
    base_url: str,
    method: str,
    path: str,
    api_key: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """Send ``path`` byte for byte: httpx would normalise ``..``, ``.`` and ``//`` away."""
    u = urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Authorization", f"Bearer {api_key}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def objects_left(stack: Stack) -> int:
    """Messages in the AGC_FILES object store (chunks and metas): 0 when all is cleaned up."""

    async def _count() -> int:
        assert stack.nats is not None
        nc = await connect_nats(stack.nats.url, name="test-files")
        try:
            info = await nc.jetstream().stream_info("OBJ_AGC_FILES")
            return int(info.state.messages)
        finally:
            await nc.close()

    return asyncio.run(_count())


_baseline: dict[int, int] = {}


@pytest.fixture(autouse=True)
def _object_store_baseline(request: pytest.FixtureRequest) -> None:
    """Objects other tests of the shared stack left (the dashboard's) are not this test's."""
    if "stack" in request.fixturenames:
        st = request.getfixturevalue("stack")
        _baseline[id(st)] = objects_left(st)


def wait_objects_gone(stack: Stack, timeout: float = 15.0) -> None:
    """Wait until this test's transfers have left nothing in the object store."""
    allowed = _baseline.get(id(stack), 0)
    deadline = time.monotonic() + timeout
    while (left := objects_left(stack)) > allowed and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left <= allowed, f"{left - allowed} object-store messages left behind"


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ws(stack: Stack) -> Iterator[tuple[str, str]]:
    """One session whose agent planted the hostile workspace; (session id, key)."""
    api_key = key()
    sid = stack.launch(api_key)
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"plant-{sid}", [[tool_use("Bash", {"command": PLANT})], [text("planted")]]
    )
    events = stack.chat_sse(sid, api_key, f"plant the files {marker}")
    completed = [e.data for e in events if e.event == "tool.completed"]
    assert completed and not completed[0].get("is_error"), events
    code, out = exec_in(sid, "ls -la /workspace")
    assert code == 0 and "evil_dir -> /etc" in out, out
    yield sid, api_key
    stack.delete(sid, api_key)


@pytest.fixture(scope="module")
def client(stack: Stack, ws: tuple[str, str]) -> Iterator[httpx.Client]:
    with stack.client(ws[1]) as c:
        yield c


# -- tree ------------------------------------------------------------------------------------
def test_tree_types_come_from_what_entries_are(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    r = client.get(f"/api/files/{sid}")
    assert r.status_code == 200, r.text
    tree = r.json()
    assert tree["session_id"] == sid
    root = tree["root"]
    assert (root["type"], root["path"]) == ("directory", "")
    nodes = {n["name"]: n for n in root["children"]}
    assert nodes["d.txt"]["type"] == "directory"  # a dot in a directory's name
    assert nodes["Makefile"]["type"] == "file"  # no dot in a file's name
    assert nodes["evil"] == {**nodes["evil"], "type": "symlink", "target": "/etc/passwd"}
    assert nodes["evil_dir"]["type"] == "symlink" and "children" not in nodes["evil_dir"]
    assert nodes["fifo"]["type"] == "other"
    d = nodes["d"]
    assert [c["path"] for c in d["children"]] == ["d/sub", "d/f.txt"]  # directories first
    assert d["children"][0]["children"][0]["path"] == "d/sub/deep.py"
    assert d["size"] == 2 + 9
    for key_ in ("name", "type", "path", "size", "modified"):
        assert key_ in nodes["notes.md"]
    assert nodes["notes.md"]["size"] == 12
    files = [n for n in nodes.values() if n["type"] == "file"]
    assert tree["total_files"] == len(files) + 2  # plus d/f.txt and d/sub/deep.py
    assert tree["total_directories"] == 5  # d, d/sub, empty, d.txt, bigdir
    assert tree["total_size"] == sum(n["size"] for n in files) + 11


def test_every_route_needs_the_sessions_key(stack: Stack, ws: tuple[str, str]) -> None:
    sid, _ = ws
    routes = [
        ("GET", f"/api/files/{sid}"),
        ("GET", f"/api/files/{sid}/notes.md"),
        ("GET", f"/api/files/{sid}/notes.md/download"),
        ("POST", f"/api/files/{sid}/download"),
        ("POST", f"/api/files/{sid}/upload"),
    ]
    with stack.client() as anon, stack.client(key()) as other:
        for method, url in routes:
            assert anon.request(method, url).status_code == 401, url
            assert other.request(method, url).status_code == 403, url
            unknown = url.replace(sid, "conv-" + "0" * 32)
            assert other.request(method, unknown).status_code == 404, unknown


def test_a_tree_bigger_than_a_message_streams(
    stack: Stack, client: httpx.Client, ws: tuple[str, str]
) -> None:
    sid, _ = ws
    code, out = exec_in(
        sid,
        "mkdir -p many && cd many && python3 -c \"[open('file-%05d-%s.txt' % (i, 'n' * 60), 'w')"
        ' for i in range(9000)]" && echo ok',
    )
    assert code == 0, out
    r = client.get(f"/api/files/{sid}")
    assert r.status_code == 200
    assert len(r.content) > 1024 * 1024  # more than one NATS message: it came as a blob
    many = next(n for n in r.json()["root"]["children"] if n["name"] == "many")
    assert len(many["children"]) == 9000
    exec_in(sid, "rm -rf many")
    wait_objects_gone(stack, timeout=5.0)


# -- preview ---------------------------------------------------------------------------------
def test_text_preview(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    r = client.get(f"/api/files/{sid}/notes.md")
    assert r.status_code == 200
    assert r.json() == {
        "type": "text",
        "path": "notes.md",
        "content": "hello\nworld\n",
        "language": "markdown",
        "size": 12,
        "lines": 2,
        "truncated": False,
    }
    deep = client.get(f"/api/files/{sid}/d/sub/deep.py").json()
    assert (deep["language"], deep["content"]) == ("python", "print(1)\n")
    assert client.get(f"/api/files/{sid}/fake.png").json()["type"] == "text"  # bytes, not name
    big = client.get(f"/api/files/{sid}/big.txt").json()
    assert big["truncated"] is True and big["size"] == 640_000 and big["lines"] == 40_000
    assert 0 < len(big["content"].encode()) <= 512 * 1024


def test_a_preview_always_fits_one_reply(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    # Control characters are valid text but grow six-fold as JSON escapes.
    exec_in(sid, "python3 -c \"open('ctl.txt', 'w').write(chr(1) * 600000)\"")
    r = client.get(f"/api/files/{sid}/ctl.txt")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is True and body["size"] == 600000
    assert 0 < len(body["content"]) < 600000
    exec_in(sid, "rm ctl.txt")


def test_images_are_served_as_images(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    png = client.get(f"/api/files/{sid}/pixel.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["x-content-type-options"] == "nosniff"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) == 70
    disguised = client.get(f"/api/files/{sid}/image.txt")  # a PNG called .txt
    assert disguised.headers["content-type"] == "image/png"
    assert disguised.content == png.content


def test_svg_is_served_safely(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    r = client.get(f"/api/files/{sid}/pic.svg")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.text == SVG


def test_binary_preview_links_to_the_download(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    meta = client.get(f"/api/files/{sid}/blob.bin").json()
    assert meta == {
        "type": "binary",
        "path": "blob.bin",
        "size": 3000,
        "mime": "application/octet-stream",
        "download_url": f"/api/files/{sid}/blob.bin/download",
    }
    data = client.get(meta["download_url"])
    assert data.status_code == 200 and len(data.content) == 3000
    _, out = exec_in(sid, "sha256sum blob.bin")
    assert out.split()[0] == hashlib.sha256(data.content).hexdigest()


def test_raw_and_download_give_attachments(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    for url in (f"/api/files/{sid}/notes.md?raw=true", f"/api/files/{sid}/notes.md/download"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.content == b"hello\nworld\n"
        assert r.headers["content-disposition"].startswith('attachment; filename="notes.md"')
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["content-length"] == "12"
    # Files called like the routes' static segments are still files.
    assert client.get(f"/api/files/{sid}/download").json()["content"] == "named download\n"
    assert client.get(f"/api/files/{sid}/upload").json()["content"] == "named upload\n"
    assert client.get(f"/api/files/{sid}/good_link").json()["content"] == "x\n"
    assert client.get(f"/api/files/{sid}/good_dir/f.txt/download").content == b"x\n"
    assert client.get(f"/api/files/{sid}/d").status_code == 400  # a directory
    assert client.get(f"/api/files/{sid}/nope.txt").status_code == 404


def test_reading_does_not_count_as_use(
    stack: Stack, client: httpx.Client, ws: tuple[str, str]
) -> None:
    sid, _ = ws
    before = client.get(f"/api/agents/sessions/{sid}").json()["last_active"]
    client.get(f"/api/files/{sid}")
    client.get(f"/api/files/{sid}/notes.md")
    client.post(f"/api/files/{sid}/download").read()
    assert client.get(f"/api/agents/sessions/{sid}").json()["last_active"] == before


# -- upload ----------------------------------------------------------------------------------
def test_upload_places_files_owned_by_the_agent(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    before = client.get(f"/api/agents/sessions/{sid}").json()["last_active"]
    r = client.post(
        f"/api/files/{sid}/upload",
        files=[("files", ("a.txt", b"alpha")), ("files", ("résumé 日本.csv", b"x,y\n1,2\n"))],
        data={"target_path": "inbox/new"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["uploaded"] == [
        {"filename": "a.txt", "path": "inbox/new/a.txt", "size": 5},
        {"filename": "résumé 日本.csv", "path": "inbox/new/résumé 日本.csv", "size": 8},
    ]
    code, out = exec_in(
        sid,
        "stat -c '%u:%g %n' inbox inbox/new inbox/new/* && "
        "echo more >> inbox/new/a.txt && cat inbox/new/a.txt",
    )
    assert code == 0, out
    assert out.count("1000:1000") == 4 and "alphamore" in out
    assert (
        client.get(f"/api/files/{sid}/inbox/new/résumé 日本.csv").json()["content"] == "x,y\n1,2\n"
    )
    # Feeding the agent is real use: the idle clock restarts.
    assert client.get(f"/api/agents/sessions/{sid}").json()["last_active"] > before
    # Default target: the workspace root; an empty file is a file, an empty input is nothing.
    r = client.post(
        f"/api/files/{sid}/upload",
        files=[
            ("files", ("root-file.txt", b"r")),
            ("files", ("empty.txt", b"")),
            ("files", ("", b"")),
        ],
    )
    assert r.status_code == 200, r.text
    assert [f["path"] for f in r.json()["uploaded"]] == ["root-file.txt", "empty.txt"]
    assert client.get(f"/api/files/{sid}/empty.txt").json()["size"] == 0
    r = client.post(f"/api/files/{sid}/upload", files=[("files", ("", b""))])
    assert r.status_code == 400


def test_upload_conflict_writes_nothing_unless_overwrite(
    client: httpx.Client, ws: tuple[str, str]
) -> None:
    sid, _ = ws
    target = f"conflict-{uuid.uuid4().hex[:6]}"
    first = client.post(
        f"/api/files/{sid}/upload",
        files=[("files", ("one.txt", b"v1"))],
        data={"target_path": target},
    )
    assert first.status_code == 200
    r = client.post(
        f"/api/files/{sid}/upload",
        files=[("files", ("fresh.txt", b"new")), ("files", ("one.txt", b"v2"))],
        data={"target_path": target},
    )
    assert r.status_code == 409
    body = r.json()
    assert body["existing"] == [f"{target}/one.txt"] and body["detail"]
    listing = exec_in(sid, f"ls -A {target} && cat {target}/one.txt")[1]
    assert listing.split() == ["one.txt", "v1"]  # fresh.txt not written, one.txt untouched
    r = client.post(
        f"/api/files/{sid}/upload",
        files=[("files", ("fresh.txt", b"new")), ("files", ("one.txt", b"v2"))],
        data={"target_path": target, "overwrite": "true"},
    )
    assert r.status_code == 200, r.text
    assert exec_in(sid, f"cat {target}/one.txt {target}/fresh.txt")[1] == "v2new"
    # A directory is never replaced by a file, overwrite or not.
    r = client.post(
        f"/api/files/{sid}/upload",
        files=[("files", ("sub", b"x"))],
        data={"target_path": "d", "overwrite": "true"},
    )
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../../../etc/agc-escape.txt", "agc-escape.txt"),
        ("..\\..\\..\\agc-win.txt", "agc-win.txt"),
        ("C:\\Users\\me\\agc-c.txt", "agc-c.txt"),
        ("..\uff0f..\uff0fagc-wide.txt", "agc-wide.txt"),
        ("agc-ctl\x07\u202e.txt", "agc-ctl.txt"),
        ("/etc/agc-abs.txt", "agc-abs.txt"),
    ],
)
def test_upload_names_are_sanitised(
    client: httpx.Client, ws: tuple[str, str], sent: str, stored: str
) -> None:
    sid, _ = ws
    target = f"names-{uuid.uuid4().hex[:6]}"
    # Built by hand: httpx would percent-escape the name itself.
    boundary = "agcboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="target_path"\r\n\r\n{target}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{sent}"\r\n'
        f"Content-Type: text/plain\r\n\r\nescape?\r\n--{boundary}--\r\n"
    ).encode()
    r = client.post(
        f"/api/files/{sid}/upload",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["uploaded"][0]["path"] == f"{target}/{stored}"
    assert exec_in(sid, f"ls -A {target}")[1].split() == [stored]
    assert not Path("/etc", stored).exists() and not Path("/", stored).exists()


# -- zip -------------------------------------------------------------------------------------
def _zip(client: httpx.Client, sid: str, **params: str) -> zipfile.ZipFile:
    r = client.post(f"/api/files/{sid}/download", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(r.content))


def test_zip_of_the_workspace_leaves_links_out(client: httpx.Client, ws: tuple[str, str]) -> None:
    sid, _ = ws
    z = _zip(client, sid)
    names = set(z.namelist())
    assert {"d/f.txt", "d/sub/deep.py", "notes.md", "pixel.png", "empty/", "d.txt/"} <= names
    assert not {
        n
        for n in names
        if n.split("/")[0]
        in {
            "evil",
            "evil_dir",
            "evil_rel",
            "evil_abs",
            "runner_link",
            "runner_file",
            "good_link",
            "good_dir",
            "fifo",
        }
    }
    assert z.read("notes.md") == b"hello\nworld\n"
    assert z.testzip() is None
    for info in z.infolist():
        assert not any(m in z.read(info) for m in PASSWD_MARKERS)
    sub = _zip(client, sid, path="d")
    assert sorted(sub.namelist()) == ["f.txt", "sub/deep.py"]
    assert _zip(client, sid, path="d", compression="deflate").read("f.txt") == b"x\n"


def test_zip_stream_cleans_up_when_the_client_leaves(
    stack: Stack, client: httpx.Client, ws: tuple[str, str]
) -> None:
    sid, _ = ws
    code, out = exec_in(sid, "head -c 120000000 /dev/zero > bigdir/zeros.bin && echo ok")
    assert code == 0, out
    with client.stream("POST", f"/api/files/{sid}/download", params={"path": "bigdir"}) as r:
        assert r.status_code == 200
        got = 0
        for chunk in r.iter_bytes():
            got += len(chunk)
            if got > 4_000_000:
                break
    # The writer gets the reader's cancel, purges what it wrote and stops reading the disk.
    wait_objects_gone(stack)
    exec_in(sid, "rm bigdir/zeros.bin")


def test_finished_transfers_leave_no_objects(
    stack: Stack, client: httpx.Client, ws: tuple[str, str]
) -> None:
    sid, _ = ws
    client.get(f"/api/files/{sid}/pixel.png").read()
    client.get(f"/api/files/{sid}/blob.bin/download").read()
    client.post(f"/api/files/{sid}/download").read()
    client.post(
        f"/api/files/{sid}/upload",
        files=[("files", ("clean.txt", b"c"))],
        data={"target_path": f"clean-{uuid.uuid4().hex[:6]}"},
    )
    wait_objects_gone(stack, timeout=5.0)


# -- the hostile corpus ----------------------------------------------------------------------
# Paths as they appear on the wire after /api/files/<sid>/ (percent-encoding included).
CORPUS = [
    "../../../../etc/passwd",
    "d/../../../../etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "%25252e%25252e/etc/passwd",
    "..%5c..%5c..%5cetc%5cpasswd",
    "d%5c..%5c..%5cetc%5cpasswd",
    "..%5c/..%2f%2e%2e%5cetc/passwd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "%2F%2Fetc%2Fpasswd",
    "notes.md%00.png",
    "%00",
    "d/f.txt%00/../../etc/passwd",
    "a" * 300,
    "/".join(["a" * 200] * 25),
    ".",
    "./notes.md",
    "d/./f.txt",
    "d/..",
    "..",
    "%EF%BC%8E%EF%BC%8E/%EF%BC%8E%EF%BC%8E/etc/passwd",  # fullwidth full stops
    "..%EF%BC%8F..%EF%BC%8Fetc%EF%BC%8Fpasswd",  # fullwidth solidus
    "%E2%80%A5/%E2%80%A5/etc/passwd",  # two dot leader
    "..%E2%88%95..%E2%88%95etc%E2%88%95passwd",  # division slash
    "%EF%B9%92%EF%B9%92/etc/passwd",  # small full stop
    "d%E2%80%AE/f.txt",  # right-to-left override
    "evil",
    "evil_rel",
    "evil_abs",
    "evil_dir",
    "evil_dir/passwd",
    "evil_dir/shadow",
    "runner_link",
    "runner_link/main.py",
    "runner_file",
    "good_dir/../evil",
    "fifo",
]


def _check(status: int, body: bytes, what: str) -> None:
    assert status in (400, 403, 404), f"{what}: {status} {body[:300]!r}"
    assert not any(m in body for m in PASSWD_MARKERS), what
    assert b"Traceback" not in body and b"internal" not in body, what


@pytest.mark.parametrize("hostile", CORPUS)
def test_hostile_paths_are_refused_everywhere(
    stack: Stack, ws: tuple[str, str], hostile: str
) -> None:
    sid, api_key = ws
    base = f"/api/files/{sid}/{hostile}"
    for method, path in (
        ("GET", base),
        ("GET", f"{base}?raw=true"),
        ("GET", f"{base}/download"),
    ):
        status, body = raw_request(stack.base_url, method, path, api_key)
        _check(status, body, f"{method} {path}")
    decoded = unquote(hostile)
    status, body = raw_request(
        stack.base_url,
        "POST",
        f"/api/files/{sid}/download?path={quote(decoded, safe='')}",
        api_key,
    )
    _check(status, body, f"zip path={decoded!r}")
    marker = f"corpus-{uuid.uuid4().hex}.txt"
    boundary = "agcboundary"
    form = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="target_path"\r\n\r\n'
        f'{decoded}\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{marker}"\r\n\r\nescaped\r\n--{boundary}--\r\n'
    ).encode("utf-8", "surrogateescape")
    status, body = raw_request(
        stack.base_url,
        "POST",
        f"/api/files/{sid}/upload",
        api_key,
        form,
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    _check(status, body, f"upload target_path={decoded!r}")
    for place in (Path("/etc"), Path("/"), Path("/tmp"), Path("/opt")):
        assert not (place / marker).exists()
    _, out = exec_in(sid, f"find /workspace /tmp -name {marker} 2>/dev/null | head -1")
    assert out.strip() == ""


def test_a_stopped_sessions_files_are_gone(stack: Stack) -> None:
    api_key = key()
    sid = stack.launch(api_key)
    stack.delete(sid, api_key)
    with stack.client(api_key) as c:
        assert c.get(f"/api/files/{sid}").status_code == 409
        assert c.get(f"/api/files/{sid}/x.txt").status_code == 409
        assert c.post(f"/api/files/{sid}/download").status_code == 409


# -- limits (a stack of their own, with small caps) ------------------------------------------
LIMITS = {
    "AGC_UPLOAD_MAX_BYTES": "1000",
    "AGC_UPLOAD_MAX_TOTAL_BYTES": "2500",
    "AGC_UPLOAD_MAX_FILES": "3",
    "AGC_PREVIEW_MAX_BYTES": "64",
}


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory, shared_model_server: ModelServer
) -> Iterator[tuple[Stack, str, str]]:
    with running_stack(
        tmp_path_factory.mktemp("files-limits"), shared_model_server.base_url, extra_env=LIMITS
    ) as st:
        api_key = key()
        sid = st.launch(api_key)
        yield st, sid, api_key


def _files(*sizes: int) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (f"f{i}.bin", b"z" * n)) for i, n in enumerate(sizes)]


def _workspace_files(st: Stack, sid: str, api_key: str) -> int:
    with st.client(api_key) as c:
        return int(c.get(f"/api/files/{sid}").json()["total_files"])


@pytest.mark.parametrize(
    ("sizes", "why"),
    [
        ((1001,), "per file"),
        ((500, 1001), "per file, after a good one"),
        ((10, 10, 10, 10), "count"),
        ((900, 900, 900), "total"),
    ],
)
def test_upload_caps_answer_413_and_leave_nothing(
    small: tuple[Stack, str, str], sizes: tuple[int, ...], why: str
) -> None:
    st, sid, api_key = small
    before = _workspace_files(st, sid, api_key)
    with st.client(api_key) as c:
        r = c.post(
            f"/api/files/{sid}/upload",
            files=_files(*sizes),
            data={"target_path": f"capped-{uuid.uuid4().hex[:6]}"},
        )
    assert r.status_code == 413, (why, r.text)
    assert r.json()["error"] == "payload_too_large"
    assert _workspace_files(st, sid, api_key) == before
    _, out = exec_in(sid, "ls -A /workspace")
    assert "capped-" not in out and ".agc-upload" not in out, out
    wait_objects_gone(st, timeout=5.0)


def test_upload_at_the_caps_is_accepted(small: tuple[Stack, str, str]) -> None:
    st, sid, api_key = small
    with st.client(api_key) as c:
        r = c.post(
            f"/api/files/{sid}/upload",
            files=_files(1000, 1000, 500),
            data={"target_path": "at-cap"},
        )
    assert r.status_code == 200, r.text
    assert [f["size"] for f in r.json()["uploaded"]] == [1000, 1000, 500]


def test_declared_oversize_body_is_refused_before_reading(small: tuple[Stack, str, str]) -> None:
    st, sid, api_key = small
    u = urlsplit(st.base_url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=10)
    conn.putrequest("POST", f"/api/files/{sid}/upload")
    conn.putheader("Authorization", f"Bearer {api_key}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(10**9))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()


def test_preview_cap_truncates(small: tuple[Stack, str, str]) -> None:
    st, sid, api_key = small
    with st.client(api_key) as c:
        c.post(f"/api/files/{sid}/upload", files=[("files", ("long.txt", b"abcdefgh\n" * 50))])
        p = c.get(f"/api/files/{sid}/long.txt").json()
    assert p["truncated"] is True and p["size"] == 450 and p["lines"] == 50
    assert len(p["content"].encode()) <= 64


def test_a_dead_worker_answers_503_not_a_hang(small: tuple[Stack, str, str]) -> None:
    st, sid, api_key = small
    for wid in list(st.workers):
        st.stop_worker(wid, kill=True)
    with st.client(api_key, timeout=30) as c:
        t0 = time.monotonic()
        r = c.get(f"/api/files/{sid}")
    assert r.status_code == 503, r.text
    assert time.monotonic() - t0 < 5


# -- the transfer layer on its own, over the stack's NATS ------------------------------------
def test_blob_transfers_are_bounded_checked_and_cancellable(stack: Stack) -> None:
    from broker.blobs import CHUNK_SIZE, BlobError, BlobReader, BlobWriter

    async def drain(r: BlobReader) -> None:
        async for _ in r.chunks_iter():
            pass

    async def flood(w: BlobWriter, payload: bytes) -> None:
        for _ in range(64):
            await w.write(payload)

    async def run() -> None:
        assert stack.nats is not None
        nc = await connect_nats(stack.nats.url, name="test-blobs")
        js = nc.jetstream()
        try:
            # A slow reader: the writer stays within its window, and the store with it.
            w = await BlobWriter(
                nc, js, f"t/zip/{uuid.uuid4().hex}", flow_control=True, window=32
            ).open()
            payload = bytes(range(256)) * (CHUNK_SIZE // 256)
            r = await BlobReader(nc, js, w.ref, verify_digest=True).open()
            peak = 0

            async def write() -> None:
                for _ in range(120):
                    await w.write(payload)
                await w.close()

            async def read() -> int:
                nonlocal peak
                n = 0
                async for chunk in r.chunks_iter():
                    n += len(chunk)
                    if n % (8 * CHUNK_SIZE) == 0:
                        info = await js.stream_info("OBJ_AGC_FILES")
                        peak = max(peak, int(info.state.bytes))
                        await asyncio.sleep(0.02)
                return n

            _, got = await asyncio.gather(write(), read())
            await r.close()
            assert got == 120 * CHUNK_SIZE
            assert peak <= (32 + 2 * 16 + 1) * (CHUNK_SIZE + 200), peak

            # A finished object whose reader never comes is deleted by its writer.
            before = int((await js.stream_info("OBJ_AGC_FILES")).state.messages)
            w = await BlobWriter(
                nc, js, f"t/zip/{uuid.uuid4().hex}", flow_control=True, stall_timeout=0.5
            ).open()
            await w.write(payload)
            t0 = time.monotonic()
            await w.close()
            assert time.monotonic() - t0 >= 0.5
            assert int((await js.stream_info("OBJ_AGC_FILES")).state.messages) == before

            # A writer that fails tells its reader why.
            w = await BlobWriter(nc, js, f"t/zip/{uuid.uuid4().hex}", flow_control=True).open()
            r = await BlobReader(nc, js, w.ref).open()
            await w.write(payload)
            await w.abort("disk on fire")
            with pytest.raises(BlobError, match="disk on fire"):
                await drain(r)
            await r.close()

            # A reader that leaves stops its writer.
            w = await BlobWriter(
                nc, js, f"t/zip/{uuid.uuid4().hex}", flow_control=True, window=4
            ).open()
            r = await BlobReader(nc, js, w.ref).open()
            await w.write(payload)
            async for _ in r.chunks_iter():
                break
            await r.close()
            with pytest.raises(BlobError):
                await flood(w, payload)
            await w.abort("cancelled")
        finally:
            await nc.close()

    asyncio.run(run())
    wait_objects_gone(stack, timeout=5.0)
