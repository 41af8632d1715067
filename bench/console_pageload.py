#!/usr/bin/env python3
"""`make console-pageload`: how fast the console's pages load in headless Chromium, on this machine.

Starts an embedded `cairn serve` (tests/harness), saves a thread of 10,000 checkpoints (with a side
branch every 500) and a thread whose head holds a 10 MB JSON state, starts `cairn console`, and opens
each page in Debian's chromium through Playwright, --repeat times (median reported):

  timeline first rows  navigation to the first rows of the 10,000-checkpoint timeline on screen
  timeline complete    navigation until all 10,000 rows are loaded and laid out
  scroll frame         one scroll step over the loaded timeline, until the next frame is painted
                       (the virtualised list keeps about 50 rows in the DOM at any position)
  10 MB state page     navigation to the checkpoint page of the 10 MB state drawn (state cut at
                       200 KB of text, diff against its parent included)
  threads page         with --threads N more threads saved: the thread list's first page on screen
  id-prefix search     the API calls for a prefix matching the 10 oldest threads, which read every
                       ListThreads page (10,000 threads per request at most, then a token to go on)

    python bench/console_pageload.py [--checkpoints 10000] [--state-mb 10] [--threads 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from cairn_client import CheckpointClient

from cairn_tools import seed as console_seed
from cairn_tools.cluster import CairnProcess, ConsoleProcess

SCROLL_STEPS_JS = """async (steps) => {
  const v = document.getElementById('timeline');
  const times = [];
  for (let i = 1; i <= steps; i++) {
    const t0 = performance.now();
    v.scrollTop = (v.scrollHeight - v.clientHeight) * i / steps;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    times.push(performance.now() - t0);
  }
  return {times, rowsInDom: v.querySelectorAll('.tl-row').length, rows: Number(v.dataset.rows)};
}"""


def seed_threads(c: CheckpointClient, n: int) -> None:
    """``n`` one-checkpoint threads, many-000000 the oldest, over one SaveStream."""
    from cairn_client._shared import save_request

    results = c.save_stream(
        save_request(f"many-{i:06d}", {"i": i}, node_name="work", metadata={"status": "completed"}) for i in range(n)
    )
    for result in results:
        if isinstance(result, Exception):
            raise result


def prefix_search(url: str, prefix: str) -> list[str]:
    """Every thread whose id starts with ``prefix``, following the console's scan tokens to the end."""
    found, token = [], ""
    while True:
        query = urllib.parse.urlencode({"prefix": prefix, "page_size": 50, "page_token": token})
        with urllib.request.urlopen(f"{url}api/threads?{query}", timeout=120) as resp:
            page = json.load(resp)
        found += [t["thread_id"] for t in page["threads"]]
        token = page["next_page_token"]
        if not token:
            return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", type=int, default=10_000)
    ap.add_argument("--state-mb", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    with CairnProcess.embedded("--log-level", "WARNING") as server:
        t0 = time.perf_counter()
        with CheckpointClient(server.target) as c:
            console_seed.seed_long_thread(c, "long-thread", args.checkpoints)
            large = console_seed.seed_large_state(c, "large-state", mb=args.state_mb)
            total = sum(1 for _ in c.iter_checkpoints("long-thread", page_size=1000))
            if args.threads:
                seed_threads(c, args.threads)
        print(f"seeded {total} checkpoints and a {args.state_mb:g} MB state in {time.perf_counter() - t0:.1f} s")
        with ConsoleProcess("--target", server.target) as console, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            first, complete, frames, state_page, threads_page, prefix = [], [], [], [], [], []
            for _ in range(args.repeat):
                page.goto("about:blank")
                t = time.perf_counter()
                page.goto(console.url + "#/thread?id=long-thread")
                page.wait_for_selector("#timeline .tl-cp", timeout=60_000)
                first.append(time.perf_counter() - t)
                page.wait_for_selector("#timeline[data-complete='1']", timeout=120_000)
                complete.append(time.perf_counter() - t)
                result = page.evaluate(SCROLL_STEPS_JS, 40)
                frames += result["times"]
                assert result["rows"] >= total, result
                page.goto("about:blank")
                t = time.perf_counter()
                page.goto(console.url + f"#/checkpoint?thread=large-state&id={large}")
                page.wait_for_selector("#state-text", timeout=120_000)
                page.wait_for_selector("#diff, #diff-none")
                state_page.append(time.perf_counter() - t)
                page.goto("about:blank")
                t = time.perf_counter()
                page.goto(console.url + "#/threads?live=0")
                page.wait_for_selector("#threads-body tr[data-thread]")
                threads_page.append(time.perf_counter() - t)
                if args.threads:
                    t = time.perf_counter()
                    found = prefix_search(console.url, "many-00000")
                    prefix.append(time.perf_counter() - t)
                    assert sorted(found) == [f"many-{i:06d}" for i in range(10)], found
            browser.close()

    def ms(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1000:7.0f} ms (runs: {', '.join(f'{x * 1000:.0f}' for x in xs)})"

    print(f"timeline of {total} checkpoints, first rows   {ms(first)}")
    print(f"timeline of {total} checkpoints, all loaded   {ms(complete)}")
    frames.sort()
    print(f"scroll step to painted frame: p50 {statistics.median(frames):.1f} ms, "
          f"max {frames[-1]:.1f} ms over {len(frames)} steps; rows in the DOM: {result['rowsInDom']}")
    print(f"checkpoint page of a {args.state_mb:g} MB state           {ms(state_page)}")
    print(f"threads page (of {args.threads + 2} threads), first page  {ms(threads_page)}")
    if prefix:
        print(f"id-prefix search through all {args.threads + 2} threads {ms(prefix)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
