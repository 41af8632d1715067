"""The console in a real headless Chromium (Debian's `chromium`, driven by Playwright; no browser is
downloaded), against a live server with seeded data.

Set CAIRN_CONSOLE_SCREENSHOTS=DIR to save a screenshot of each page there (`make console-screenshots`
writes docs/console/).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console_support import ConsoleProcess, Seeded, seed_server, start_console

CHROMIUM = os.environ.get("CAIRN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = os.environ.get("CAIRN_CONSOLE_SCREENSHOTS")


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/install_deps.sh installs Debian's `chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def seeded(server_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed_server(server_factory, tmp_path_factory.mktemp("console-browser"))


@pytest.fixture(scope="module")
def ro(seeded: Seeded) -> Iterator[ConsoleProcess]:
    with start_console(seeded, "--metrics-interval-seconds", "1") as console:
        yield console


@pytest.fixture(scope="module")
def rw(seeded: Seeded) -> Iterator[ConsoleProcess]:
    with start_console(seeded, "--allow-writes") as console:
        yield console


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert not errors, f"script errors on the page: {errors}"


def test_thread_list_opens_and_filters_by_status(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url)
    page.wait_for_selector("#threads-body tr[data-thread='agent-fork']")
    shown = page.eval_on_selector_all("#threads-body tr[data-thread]", "rows => rows.map(r => r.dataset.thread)")
    assert {"agent-fork", "langgraph-chat", *seeded.statuses} <= set(shown)
    assert "tenant-b-secret-thread" not in shown
    assert page.text_content("#mode") == "read-only"
    shot(page, "threads")
    page.select_option("#f-status", "failed")
    page.wait_for_function("() => location.hash.includes('status=failed')")
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('#threads-body tr[data-thread]')];
        return rows.length === 3 && rows.every(r => r.dataset.thread.includes('-failed-'));
    }""")
    badges = page.eval_on_selector_all("#threads-body .badge", "els => els.map(e => e.textContent)")
    assert badges == ["failed"] * 3


def test_a_thread_with_a_fork_draws_both_branches(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/thread?id=agent-fork")
    page.wait_for_selector("#timeline[data-complete='1']")
    lane_of = dict(page.eval_on_selector_all(
        "#timeline .tl-cp", "rows => rows.map(r => [r.dataset.cp, Number(r.dataset.lane)])"))
    fork = seeded.fork
    # The main line and the time-travel branch sit in two lanes that join at the checkpoint forked from.
    assert lane_of[fork["head"]] == lane_of[fork["chain"][3]] == lane_of[fork["chain"][2]] == 0
    assert lane_of[fork["branch"]] == 1
    assert page.get_attribute(f".tl-cp[data-cp='{fork['chain'][2]}']", "class").split().count("fork") == 1
    assert page.locator(f".tl-cp[data-cp='{fork['branch']}'] svg circle").count() == 1
    assert page.text_content("#timeline-status") == "11 checkpoints in 2 namespaces"
    shot(page, "timeline")
    # Namespaces are told apart and fold.
    assert page.locator(".tl-cp[data-ns='search:7f3a']").count() == 3
    page.click(".tl-ns[data-ns='search:7f3a']")
    assert page.locator(".tl-cp[data-ns='search:7f3a']").count() == 0
    page.click(".tl-ns[data-ns='search:7f3a']")
    assert page.locator(".tl-cp[data-ns='search:7f3a']").count() == 3


def test_a_checkpoint_shows_its_diff_state_and_writes(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/thread?id=agent-fork")
    page.click(f".tl-cp[data-cp='{seeded.fork['head']}']")
    page.wait_for_selector("#diff")
    rows = page.eval_on_selector_all(
        "#diff tbody tr", "rows => rows.map(r => [r.className, r.children[1].textContent])")
    assert ["op-added", "messages[6]"] in rows and ["op-changed", "step"] in rows
    assert '"step": 6' in page.text_content("#state-text")
    assert "__interrupt__" in page.text_content("#writes")
    assert '"graph": "triage"' in page.text_content("#metadata")
    shot(page, "checkpoint")
    page.goto(ro.url + "#/checkpoint?thread=langgraph-chat")
    page.wait_for_selector("#state-text")
    assert "langchain_core.messages.ai.AIMessage" in page.text_content("#state-text")
    shot(page, "checkpoint-langgraph")


def test_a_large_state_is_cut_with_a_download(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + f"#/checkpoint?thread=large-state&id={seeded.large_head}")
    page.wait_for_selector("#state-truncated")
    with page.expect_download() as info:
        page.click("#state-download")
    path = info.value.path()
    with seeded.client() as c:
        assert Path(path).read_bytes() == c.load("large-state").state


def test_fork_from_the_ui_creates_the_thread(seeded: Seeded, rw: ConsoleProcess, page: Any) -> None:
    source = seeded.fork["chain"][3]
    page.goto(rw.url + f"#/checkpoint?thread=agent-fork&id={source}")
    page.click("#act-fork")
    page.fill("#confirm-input", "forked-in-browser")
    shot(page, "fork-dialog")
    page.click("#confirm-ok")
    page.wait_for_function("() => location.hash.startsWith('#/thread?id=forked-in-browser')")
    page.wait_for_selector("#timeline[data-complete='1']")
    with seeded.client() as c:
        head = c.load("forked-in-browser")
        assert head.parent_checkpoint_id == source and head.metadata["source"] == "fork"
        assert head.json() == c.load("agent-fork", checkpoint_id=source).json()
        assert c.list("forked-in-browser", page_size=1000).checkpoints  # the copied history came along
    assert page.locator(f".tl-cp[data-cp='{head.checkpoint_id}']").count() == 1


def test_a_read_only_console_has_no_write_buttons_and_refuses_the_post(
    seeded: Seeded, ro: ConsoleProcess, rw: ConsoleProcess, page: Any
) -> None:
    page.goto(rw.url + f"#/checkpoint?thread=agent-fork&id={seeded.fork['head']}")
    page.wait_for_selector("#act-fork")  # the same page with writes allowed has them
    for url in (f"#/checkpoint?thread=agent-fork&id={seeded.fork['head']}", "#/thread?id=agent-fork"):
        page.goto(ro.url + url)
        page.wait_for_selector("#diff, #timeline[data-complete='1']")
        assert page.locator("[id^='act-']").count() == 0
        assert page.locator("button.danger").count() == 0
    status = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="cairn-csrf"]').content;
        const r = await fetch('/api/actions/clear', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-Cairn-CSRF': csrf},
            body: JSON.stringify({thread_id: 'agent-fork'})});
        return [r.status, (await r.json()).reason];
    }""")
    assert status == [403, "READ_ONLY"]
    with seeded.client() as c:
        assert c.load("agent-fork").checkpoint_id == seeded.fork["head"]


def test_health_page_draws_the_servers_metrics(ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/health")
    page.wait_for_function("() => document.querySelectorAll('#charts svg.chart polyline').length >= 3", timeout=30_000)
    assert page.locator("#charts .chart-card").count() == 4
    shot(page, "health")


def test_an_open_timeline_offers_to_reload_when_the_thread_moves(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/thread?id=job-running-1")
    page.wait_for_selector("#timeline[data-complete='1']")
    assert page.locator("#timeline .tl-cp").count() == 1 and not page.is_visible("#timeline-new")
    with seeded.client() as c:
        head = c.load("job-running-1").checkpoint_id
        new = c.save("job-running-1", {"n": 2}, parent_checkpoint_id=head, node_name="work").checkpoint_id
    page.wait_for_selector("#timeline-new", state="visible", timeout=30_000)
    page.click("#timeline-new")
    page.wait_for_selector(f"#timeline .tl-cp[data-cp='{new}']")
    assert page.locator("#timeline .tl-cp").count() == 2


def test_a_long_timeline_loads_in_steps_when_asked(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/thread?id=agent-fork&rows=4")
    page.wait_for_selector("#timeline-more")
    assert page.locator("#timeline .tl-cp").count() == 4
    page.click("#timeline-more")
    page.wait_for_function("() => document.querySelectorAll('#timeline .tl-cp').length === 8")
    page.click("#timeline-more")
    page.wait_for_selector("#timeline[data-complete='1']")
    assert page.locator("#timeline .tl-cp").count() == 11
    lanes = page.eval_on_selector_all("#timeline .tl-cp", "rows => rows.map(r => Number(r.dataset.lane))")
    assert sorted(set(lanes)) == [0, 1]  # the fork is drawn the same when the rows came in steps


def test_runs_page_lists_runs_and_filters_by_status(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/runs")
    page.wait_for_selector(f"#runs-body tr[data-run='{seeded.runs['running']}']")
    shown = page.eval_on_selector_all("#runs-body tr[data-run]", "rows => rows.map(r => r.dataset.run)")
    assert set(seeded.runs.values()) <= set(shown)
    running = page.locator(f"#runs-body tr[data-run='{seeded.runs['running']}']")
    assert "worker-gpu-7" in running.text_content() and "lease" in running.text_content()
    failed = page.locator(f"#runs-body tr[data-run='{seeded.runs['failed']}']")
    assert "TimeoutError" in failed.text_content() and "the model did not answer" in failed.text_content()
    assert page.get_attribute(f"#runs-body tr[data-run='{seeded.runs['pending']}'] a[href^='#/thread?']", "href") \
        == "#/thread?id=run-thread-pending"
    shot(page, "runs")
    page.select_option("#r-status", "failed")
    page.wait_for_function("() => location.hash.includes('status=failed')")
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('#runs-body tr[data-run]')];
        return rows.length === 1 && rows[0].dataset.status === 'failed';
    }""")
    assert page.get_attribute("#runs-body tr[data-run]", "data-run") == seeded.runs["failed"]
    page.fill("#r-queue", "gpu")
    page.select_option("#r-status", "")
    page.click("text=Apply")
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('#runs-body tr[data-run]')];
        return rows.length === 1 && rows[0].dataset.status === 'running';
    }""")


def test_a_run_shows_its_attempts_and_error(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/runs?status=failed")
    page.click(f"#runs-body tr[data-run='{seeded.runs['failed']}'] a[href^='#/run?']")
    page.wait_for_selector("#attempts")
    attempts = page.eval_on_selector_all(
        "#attempts tbody tr", "rows => rows.map(r => [...r.children].map(td => td.textContent))")
    assert [(a[0], a[1], a[2]) for a in attempts] == [("1", "worker-batch-1", "failed"), ("2", "worker-batch-2", "failed")]
    assert all("TimeoutError" in a[5] for a in attempts)
    assert "ERROR TimeoutError: the model did not answer within 30 s" in page.text_content("#run-error")
    assert '"ticket": 812' in page.text_content("#run-input")
    shot(page, "run")
    page.goto(ro.url + f"#/run?id={seeded.runs['running']}")
    page.wait_for_selector("#attempts")
    assert "worker-gpu-7" in page.text_content("#run-lease") and "left" in page.text_content("#run-lease")
    page.goto(ro.url + f"#/run?id={seeded.runs['recovered']}")
    page.wait_for_selector("#attempts")
    attempts = page.eval_on_selector_all(
        "#attempts tbody tr", "rows => rows.map(r => [...r.children].map(td => td.textContent))")
    assert [(a[1], a[2], a[6]) for a in attempts] == [("worker-crashed", "failed", ""), ("worker-rescuer", "running", "yes")]
    assert attempts[0][5].startswith("LEASE_EXPIRED")
    shot(page, "run-recovered")


def test_cancel_a_pending_run_from_the_ui(seeded: Seeded, rw: ConsoleProcess, page: Any) -> None:
    run_id = seeded.runs["to_cancel"]
    page.goto(rw.url + f"#/run?id={run_id}")
    page.wait_for_selector("#run-status .status-pending")
    page.click("#act-cancel-run")
    page.wait_for_selector("#confirm[open]")
    assert not page.is_visible("#confirm-input")  # a confirmation without a field shows none
    shot(page, "cancel-run-dialog")
    page.click("#confirm-ok")
    page.wait_for_selector("#run-status .status-cancelled")
    assert page.locator("#act-cancel-run").count() == 0  # a finished run offers no cancel
    with seeded.client() as c:
        assert c.get_run(run_id).status == "CANCELLED"


def test_a_read_only_console_has_no_cancel_button_and_refuses_the_post(
    seeded: Seeded, ro: ConsoleProcess, rw: ConsoleProcess, page: Any
) -> None:
    run_id = seeded.runs["pending"]
    page.goto(rw.url + f"#/run?id={run_id}")
    page.wait_for_selector("#act-cancel-run")  # the same page with writes allowed has it
    page.goto(ro.url + f"#/run?id={run_id}")
    page.wait_for_selector("#attempts-none")
    assert page.locator("[id^='act-']").count() == 0 and page.locator("button.danger").count() == 0
    status = page.evaluate("""async (runId) => {
        const csrf = document.querySelector('meta[name="cairn-csrf"]').content;
        const r = await fetch('/api/actions/cancel-run', {method: 'POST',
            headers: {'Content-Type': 'application/json', 'X-Cairn-CSRF': csrf},
            body: JSON.stringify({run_id: runId})});
        return [r.status, (await r.json()).reason];
    }""", run_id)
    assert status == [403, "READ_ONLY"]
    with seeded.client() as c:
        assert c.get_run(run_id).status == "PENDING"


def test_the_runs_page_refreshes_live(seeded: Seeded, ro: ConsoleProcess, page: Any) -> None:
    page.goto(ro.url + "#/runs?queue=live-refresh")
    page.wait_for_selector("#runs-body td.muted")  # "No runs match."
    with seeded.client() as c:
        run = c.start_run("run-thread-live", {"n": 3}, queue="live-refresh")
    page.wait_for_selector(f"#runs-body tr[data-run='{run.run_id}'][data-status='pending']", timeout=30_000)
    with seeded.client() as c:
        claim = c.claim_run("live-refresh", "worker-live", lease_seconds=60)
        assert claim is not None
    page.wait_for_selector(f"#runs-body tr[data-run='{run.run_id}'][data-status='running']", timeout=30_000)
    assert "worker-live" in page.text_content(f"#runs-body tr[data-run='{run.run_id}']")
