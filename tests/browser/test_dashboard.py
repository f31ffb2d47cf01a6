"""The dashboard in a real browser against the real stack (issue 6).

Debian's Chromium driven by Playwright (its own browser download does not work here), the
platform from the shared ``stack`` fixture (API serving ``web/dist``, one worker, Docker) and
the scripted model server the stack points its containers at (``stack.model``). Every test
saves screenshots of what it saw under ``.agc/screenshots/``.

Needs: ``web/dist`` built (``make web`` / ``scripts/setup.sh web``), ``/usr/bin/chromium``
(``scripts/setup.sh browser``), the Python package ``playwright``, the agent image.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Locator,
    Page,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError

from tests.modelserver.script import step, text, tool_use

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / ".agc" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PRESET = "code-assistant"
LAUNCH_TIMEOUT = 120_000
TURN_TIMEOUT = 90_000


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: run `scripts/setup.sh browser`")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def model(stack: Any, request: pytest.FixtureRequest) -> Any:
    """The scripted model server the stack's containers talk to (not a fresh one)."""
    m = getattr(stack, "model", None)
    return m if m is not None else request.getfixturevalue("shared_model_server")


@pytest.fixture
def base_url(stack: Any) -> str:
    index = REPO / "web" / "dist" / "index.html"
    if not index.is_file():
        raise RuntimeError("web/dist/index.html missing: run `scripts/setup.sh web`")
    r = httpx.get(stack.base_url + "/", timeout=10)
    assert r.status_code == 200 and '<div id="app">' in r.text, "the API does not serve web/dist"
    return str(stack.base_url)


@pytest.fixture
def api_key() -> str:
    return "sk-ant-browser-" + secrets.token_hex(8)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # Reduced motion turns the dashboard's animations off: screenshots show settled pages.
    ctx = browser.new_context(
        viewport={"width": 1440, "height": 900}, accept_downloads=True, reduced_motion="reduce"
    )
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield pg
    finally:
        shot(pg, f"{request.node.name}-last")
    assert not errors, f"uncaught errors in the page: {errors}"


# ---------------------------------------------------------------------------- helpers
def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    with contextlib.suppress(PlaywrightError):  # a closed page at teardown: nothing to show
        page.screenshot(path=str(path))
    return path


def enter_key(page: Page, base_url: str, key: str) -> None:
    page.goto(base_url + "/")
    page.get_by_test_id("api-key-input").fill(key)
    expect(page.get_by_test_id("key-chip")).to_contain_text(key[-4:])


def launch_preset(page: Page, base_url: str, key: str, config_id: str = PRESET) -> str:
    """Launch from the Launch page; return the session id from the chat URL."""
    enter_key(page, base_url, key)
    card = page.locator(f'[data-testid="config-card"][data-config-id="{config_id}"]')
    expect(card).to_be_visible()
    card.get_by_test_id("launch-button").click()
    page.wait_for_url(re.compile(r".*/chat/conv-[^/]+$"), timeout=LAUNCH_TIMEOUT)
    sid = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "live")
    return sid


def send(page: Page, message: str) -> None:
    page.get_by_test_id("chat-input").fill(message)
    page.get_by_test_id("send-button").click()


def last_turn(page: Page) -> Locator:
    return page.get_by_test_id("turn").last


def wait_turn_done(page: Page, state: str = "done") -> Locator:
    footer = last_turn(page).locator('[data-testid="turn-footer"]')
    expect(footer).to_have_attribute("data-state", state, timeout=TURN_TIMEOUT)
    return footer


def tool_item(scope: Page | Locator, name: str) -> Locator:
    return scope.locator(f'[data-testid="timeline-item"][data-kind="tool"][data-tool="{name}"]')


# ---------------------------------------------------------------------------- tests
def test_the_dashboard_is_served_under_a_strict_csp_and_runs_under_it(
    page: Page, base_url: str
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = page.goto(base_url + "/")
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp  # no third-party origin
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    # The app (scripts, styles, API calls) works under it: the presets are listed.
    expect(page.locator('[data-testid="config-card"]').first).to_be_visible()
    page.get_by_test_id("nav-builder").click()
    expect(page.get_by_test_id("builder-validation")).to_be_visible()
    assert refused == []


def test_builder_validates_live_and_saves(
    page: Page, base_url: str, api_key: str, stack: Any
) -> None:
    enter_key(page, base_url, api_key)
    shot(page, "01-launch")

    # A config with MCP servers asks for their declared credentials before launching.
    configs = httpx.get(base_url + "/api/configs/", timeout=10).json()["configs"]
    with_creds = [c for c in configs if any((c.get("mcp_credentials") or {}).values())]
    if with_creds:
        cfg = with_creds[0]
        card = page.locator(f'[data-testid="config-card"][data-config-id="{cfg["id"]}"]')
        card.get_by_test_id("launch-button").click()
        dialog = page.get_by_test_id("mcp-credentials-dialog")
        for server, names in cfg["mcp_credentials"].items():
            for name in names:
                field = dialog.locator(
                    f'[data-testid="mcp-cred-input"][data-server="{server}"][data-env="{name}"]'
                )
                expect(field).to_be_visible()
        expect(dialog.get_by_test_id("mcp-credentials-submit")).to_be_disabled()
        shot(page, "01b-mcp-credentials")
        page.keyboard.press("Escape")
        expect(dialog).to_have_count(0)
    page.get_by_test_id("nav-builder").click()
    page.get_by_test_id("builder-id").fill("Not A Valid Id")
    page.get_by_test_id("builder-memory").fill("lots")
    validation = page.get_by_test_id("builder-validation")
    expect(validation).to_have_attribute("data-state", "invalid")
    errors = page.get_by_test_id("builder-errors")
    expect(errors).to_contain_text("id")
    expect(errors).to_contain_text("resource_limits.memory_limit")
    expect(page.get_by_test_id("builder-yaml")).to_contain_text("memory_limit: lots")
    shot(page, "02-builder-invalid")

    cid = "ui-" + secrets.token_hex(3)
    page.get_by_test_id("builder-id").fill(cid)
    page.get_by_test_id("builder-name").fill("UI test agent")
    page.get_by_test_id("builder-memory").fill("1g")
    expect(validation).to_have_attribute("data-state", "valid")
    # Saving needs the operator token: without it the builder says so, with it the save works.
    page.get_by_test_id("builder-save").click()
    expect(page.get_by_test_id("save-error")).to_contain_text("Operator token needed")
    page.get_by_test_id("operator-token-input").fill(stack.operator_token)
    page.get_by_test_id("builder-save").click()
    expect(page.get_by_test_id("toast")).to_contain_text(cid)
    shot(page, "03-builder-saved")

    page.get_by_test_id("nav-launch").click()
    card = page.locator(f'[data-testid="config-card"][data-config-id="{cid}"]')
    expect(card).to_be_visible()
    card.get_by_test_id("show-prompt").click()
    expect(card.get_by_test_id("system-prompt")).to_be_visible()
    card.get_by_test_id("delete-config").click()
    card.get_by_test_id("confirm-delete-config").click()
    expect(card).to_have_count(0)


def test_chat_turn_timeline_todos_and_files(
    page: Page, base_url: str, api_key: str, model: Any, tmp_path: Path
) -> None:
    marker = model.add_script(
        "ui-main-" + secrets.token_hex(3),
        [
            [
                text("I'll plan this, write the script and run it."),
                tool_use(
                    "TodoWrite",
                    {
                        "todos": [
                            {
                                "content": "Write hello.py",
                                "status": "in_progress",
                                "activeForm": "Writing hello.py",
                            },
                            {
                                "content": "Run hello.py",
                                "status": "pending",
                                "activeForm": "Running hello.py",
                            },
                        ]
                    },
                ),
            ],
            [
                tool_use(
                    "Write",
                    {
                        "file_path": "/workspace/hello.py",
                        "content": "print('hello from agcluster')\n",
                    },
                )
            ],
            [tool_use("Bash", {"command": "python3 hello.py", "description": "Run the script"})],
            [
                tool_use(
                    "TodoWrite",
                    {
                        "todos": [
                            {
                                "content": "Write hello.py",
                                "status": "completed",
                                "activeForm": "Writing hello.py",
                            },
                            {
                                "content": "Run hello.py",
                                "status": "completed",
                                "activeForm": "Running hello.py",
                            },
                        ]
                    },
                )
            ],
            [text("Done: hello.py prints a greeting.")],
        ],
    )
    sid = launch_preset(page, base_url, api_key)
    send(page, f"{marker} write hello.py and run it")

    turn = last_turn(page)
    # Each tool call shows up as it runs; the todo panel mirrors TodoWrite.
    expect(tool_item(turn, "Write")).to_contain_text("hello.py", timeout=TURN_TIMEOUT)
    bash = tool_item(turn, "Bash")
    expect(bash).to_contain_text("python3 hello.py", timeout=TURN_TIMEOUT)
    wait_turn_done(page)
    expect(bash).to_have_attribute("data-status", "done")
    expect(bash.get_by_test_id("tool-output")).to_contain_text("hello from agcluster")
    expect(tool_item(turn, "TodoWrite")).to_have_count(2)
    expect(turn.locator('[data-kind="text"]').last).to_contain_text(
        "Done: hello.py prints a greeting."
    )
    expect(turn.get_by_test_id("user-message")).to_have_count(1)
    todo = page.get_by_test_id("todo-panel")
    expect(todo.get_by_test_id("todo-summary")).to_contain_text("2/2 done")
    expect(todo.locator('[data-testid="todo-item"][data-status="completed"]')).to_have_count(2)
    expect(turn.get_by_test_id("turn-footer")).to_contain_text("$")
    shot(page, "04-chat-turn")

    # The new file is in the tree; preview it with highlighting.
    node = page.locator('[data-testid="file-node"][data-path="hello.py"]')
    expect(node).to_be_visible(timeout=15_000)
    node.click()
    preview = page.get_by_test_id("file-preview")
    expect(preview.get_by_test_id("preview-code")).to_contain_text("hello from agcluster")
    expect(preview.get_by_test_id("preview-code")).to_have_attribute("data-lang", "python")
    shot(page, "05-file-preview")
    with page.expect_download() as dl:
        preview.get_by_test_id("download-file").click()
    assert Path(dl.value.path()).read_bytes() == b"print('hello from agcluster')\n"
    page.get_by_test_id("preview-close").click()

    # Upload two files into the workspace root, then one again: asked before overwriting.
    page.get_by_test_id("upload-target").select_option("")
    page.get_by_test_id("upload-input").set_input_files(
        [
            FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"first version\n"),
            FilePayload(name="data.csv", mimeType="text/csv", buffer=b"a,b\n1,2\n"),
        ]
    )
    done_items = page.locator('[data-testid="upload-item"][data-status="done"]')
    expect(done_items).to_have_count(2)
    expect(page.locator('[data-testid="file-node"][data-path="notes.txt"]')).to_be_visible()
    page.get_by_test_id("upload-input").set_input_files(
        [
            FilePayload(name="notes.txt", mimeType="text/plain", buffer=b"second version\n"),
        ]
    )
    dialog = page.get_by_test_id("overwrite-dialog")
    expect(dialog).to_contain_text("notes.txt")
    shot(page, "06-upload-overwrite")
    page.get_by_test_id("overwrite-confirm").click()
    expect(page.locator('[data-testid="upload-item"][data-name="notes.txt"]')).to_have_attribute(
        "data-status", "done"
    )
    page.locator('[data-testid="file-node"][data-path="notes.txt"]').click()
    expect(page.get_by_test_id("preview-code")).to_contain_text("second version")
    page.get_by_test_id("preview-close").click()

    # The whole workspace as a ZIP.
    with page.expect_download() as dl:
        page.get_by_test_id("download-zip").click()
    data = Path(dl.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = {
            n.rstrip("/").split("/", 1)[-1] if n.startswith("workspace/") else n
            for n in z.namelist()
        }
    assert {"hello.py", "notes.txt", "data.csv"} <= names, names
    shot(page, "07-files")
    _stop(base_url, sid, api_key)


def test_interrupt_and_reload_resume(page: Page, base_url: str, api_key: str, model: Any) -> None:
    slow = model.add_script(
        "ui-slow-" + secrets.token_hex(3),
        [
            [
                text("Starting a long job."),
                tool_use(
                    "Bash",
                    {
                        "command": "python3 -c 'import time; time.sleep(120)'",
                        "description": "A very slow step",
                    },
                ),
            ],
            [text("This should never be reached.")],
        ],
    )
    pause = model.add_script(
        "ui-pause-" + secrets.token_hex(3),
        [
            [
                text("Before the pause."),
                tool_use(
                    "Bash",
                    {
                        "command": "python3 -c 'import time; time.sleep(5); print(\"slept\")'",
                        "description": "Pause",
                    },
                ),
            ],
            step(text("After the pause: all done.", chunk=3), delay=0.02),
        ],
    )
    sid = launch_preset(page, base_url, api_key)

    # A slow turn, stopped with the Stop button: the session stays usable.
    send(page, f"{slow} run the slow job")
    expect(tool_item(last_turn(page), "Bash")).to_have_attribute(
        "data-status", "running", timeout=TURN_TIMEOUT
    )
    shot(page, "08-slow-turn")
    page.get_by_test_id("stop-button").click()
    wait_turn_done(page, "interrupted")
    expect(page.get_by_test_id("send-button")).to_be_visible()
    shot(page, "09-interrupted")

    # Reload mid-turn: the history comes back from the events stream, then the turn goes on
    # live; nothing is lost and nothing shows twice.
    send(page, f"{pause} pause then finish")
    expect(tool_item(last_turn(page), "Bash")).to_have_attribute(
        "data-status", "running", timeout=TURN_TIMEOUT
    )
    page.reload()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "live")
    wait_turn_done(page)
    timeline = page.get_by_test_id("timeline")
    expect(page.get_by_test_id("turn")).to_have_count(2)
    expect(timeline.get_by_test_id("user-message")).to_have_count(2)
    expect(timeline.get_by_text("Before the pause.", exact=True)).to_have_count(1)
    expect(timeline.get_by_text("After the pause: all done.", exact=True)).to_have_count(1)
    expect(timeline.get_by_text("Starting a long job.", exact=True)).to_have_count(1)
    expect(tool_item(page, "Bash")).to_have_count(2)
    expect(tool_item(last_turn(page), "Bash").get_by_test_id("tool-output")).to_contain_text(
        "slept"
    )
    shot(page, "10-reloaded")

    # A second reload after the turn: the same conversation, still no duplicates.
    page.reload()
    wait_turn_done(page)
    expect(page.get_by_test_id("turn")).to_have_count(2)
    expect(tool_item(page, "Bash")).to_have_count(2)
    _stop(base_url, sid, api_key)


def test_sessions_page_errors_and_stop(
    page: Page, browser: Browser, base_url: str, api_key: str
) -> None:
    sid = launch_preset(page, base_url, api_key)

    # A wrong key says so, and how to fix it.
    other = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
    try:
        p2 = other.new_page()
        p2.goto(base_url + "/")
        p2.get_by_test_id("api-key-input").fill("sk-ant-someone-else-" + secrets.token_hex(4))
        p2.goto(f"{base_url}/chat/{sid}")
        err = p2.get_by_test_id("connection-error")
        expect(err).to_contain_text("Wrong API key")
        expect(err).to_have_attribute("data-status", "403")
        shot(p2, "11-wrong-key")
    finally:
        other.close()

    page.get_by_test_id("nav-sessions").click()
    row = page.locator(f'[data-testid="session-row"][data-session-id="{sid}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("Code Assistant")
    expect(row.get_by_test_id("session-row-status")).not_to_have_attribute("data-status", "stopped")
    # One refresh brings the live CPU/memory figures (the meters replace the limits).
    expect(row.locator(".meter")).to_have_count(2, timeout=30_000)
    shot(page, "12-sessions")

    row.get_by_test_id("open-session").click()
    page.wait_for_url(f"**/chat/{sid}")
    page.get_by_test_id("nav-sessions").click()
    row.get_by_test_id("stop-session").click()
    row.get_by_test_id("confirm-stop-session").click()
    # Ended sessions leave the active list.
    expect(row).to_have_count(0, timeout=60_000)
    shot(page, "13-session-stopped")
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}) as c:
        deadline = time.monotonic() + 60
        while True:
            status = c.get(f"/api/agents/sessions/{sid}").json().get("status")
            if status == "stopped" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert status == "stopped"

    # The chat of a stopped session says it has ended.
    page.goto(f"{base_url}/chat/{sid}")
    expect(page.get_by_test_id("session-ended")).to_be_visible()
    expect(page.get_by_test_id("chat-input")).to_be_disabled()


def _stop(base_url: str, sid: str, key: str) -> None:
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as c:
        c.delete(f"/api/agents/sessions/{sid}")
