"""State sources for `cairn bench`: realistic agent states, fixed sizes, or states read from a file.

The agent-state generator builds what a LangGraph-style chat agent checkpoints: a `messages` list of system,
human, AI (with tool calls and usage metadata) and tool messages (search hits, file contents, SQL rows, API
JSON), plus a little graph bookkeeping. Text is drawn from a Zipf-distributed vocabulary so it compresses
roughly like English (not like random bytes, not like repeated filler). Everything comes from one
random.Random(seed): the same seed gives the same bytes on every machine and Python version that keeps
random.Random's documented reproducibility. Sizes are triangular over 10-70 KB with mode 31 KB (mean 37 KB).
"""

from __future__ import annotations

import itertools
import json
import random
import string
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIN_BYTES, MODE_BYTES, MAX_BYTES = 10_000, 31_000, 70_000  # mean (10 + 70 + 31) / 3 = 37 KB

_COMMON = (
    "the of and to a in is it you that he was for on are with as his they be at one have this from or had by "
    "not word but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see him two has "
    "look more day could go come did number sound no most people my over know water than call first who may "
    "down side been now find any new work part take get place made live where after back little only round man "
    "year came show every good me give our under name very through just form sentence great think say help low "
    "line differ turn cause much mean before move right boy old too same tell does set three want air well also "
    "play small end put home read hand port large spell add even land here must big high such follow act why "
    "ask men change went light kind off need house picture try us again animal point mother world near build "
    "self earth father head stand own page should country found answer school grow study still learn plant "
    "cover food sun four between state keep eye never last let thought city tree cross farm hard start might "
    "story saw far sea draw left late run while press close night real life few north open seem together next "
    "white children begin got walk example ease paper group always music those both mark often letter until "
    "mile river car feet care second book carry took science eat room friend began idea fish mountain stop "
    "once base hear horse cut sure watch color face wood main enough plain girl usual young ready above ever "
    "red list though feel talk bird soon body dog family direct pose leave song measure door product black "
    "short numeral class wind question happen complete ship area half rock order fire south problem piece "
    "told knew pass since top whole king space heard best hour better true during hundred five remember step "
    "early hold west ground interest reach fast verb sing listen six table travel less morning ten simple "
    "several vowel toward war lay against pattern slow center love person money serve appear road map rain "
    "rule govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait "
    "plan figure star box noun field rest correct able pound done beauty drive stood contain front teach week "
    "final gave green oh quick develop ocean warm free minute strong special mind behind clear tail produce "
    "fact street inch multiply nothing course stay wheel full force blue object decide surface deep moon "
    "island foot system busy test record boat common gold possible plane stead dry wonder laugh thousand ago "
    "ran check game shape equate miss brought heat snow tire bring yes distant fill east paint language among "
    "customer order invoice refund shipping account payment deploy database query index latency error retry "
    "request response token model agent tool function schema cluster region service config endpoint"
).split()
_SYLLABLES = (
    "ka ri to ne mu sa lo vi de ra po li ta me no shi ku ze ya fu ha ge bo ti an el or un ex in pro con per "
    "trans micro data net graph node edge cache store log sync async"
).split()
_TOOLS = ("search_docs", "read_file", "run_sql", "http_get", "get_weather", "create_ticket", "calculator")
_MODELS = ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "llama-3.1-70b-instruct")
_B62 = string.ascii_letters + string.digits


class _Text:
    """Zipf-distributed words from a fixed vocabulary (common English + pseudo-words)."""

    def __init__(self, rnd: random.Random) -> None:
        vocab_rnd = random.Random(7)  # the vocabulary is fixed; only the draws depend on the seed
        pseudo = {"".join(vocab_rnd.choices(_SYLLABLES, k=vocab_rnd.randint(2, 4))) for _ in range(3000)}
        self.words = list(dict.fromkeys(_COMMON)) + sorted(pseudo)
        self.cum = list(itertools.accumulate(1.0 / (rank + 1) ** 1.25 for rank in range(len(self.words))))
        self.rnd = rnd

    def words_(self, n: int) -> list[str]:
        return self.rnd.choices(self.words, cum_weights=self.cum, k=n)

    def sentence(self, lo: int = 6, hi: int = 22) -> str:
        w = self.words_(self.rnd.randint(lo, hi))
        return " ".join(w).capitalize() + self.rnd.choice(".....?!")

    def paragraph(self, lo: int = 2, hi: int = 7) -> str:
        return " ".join(self.sentence() for _ in range(self.rnd.randint(lo, hi)))

    def ident(self) -> str:
        return "_".join(self.words_(self.rnd.randint(1, 3)))

    def code(self, lines: int) -> str:
        r, out, indent = self.rnd, [], 0
        for _ in range(lines):
            kind = r.random()
            if kind < 0.15:
                indent = 0
                out.append(f"def {self.ident()}({', '.join(self.ident() for _ in range(r.randint(0, 3)))}):")
                indent = 1
            elif kind < 0.3:
                out.append("    " * indent + f"if {self.ident()} {r.choice(['==', '<', '>', 'is not'])} {r.randint(0, 999)}:")
                indent = min(indent + 1, 4)
            elif kind < 0.4 and indent > 1:
                indent -= 1
                out.append("    " * indent + f"return {self.ident()}")
            else:
                out.append("    " * indent + f"{self.ident()} = {self.ident()}.{self.ident()}({r.randint(0, 9999)})")
        return "\n".join(out)


class AgentStateGenerator:
    """Deterministic agent states: AgentStateGenerator(seed).state() -> dict, .state_bytes() -> JSON bytes."""

    def __init__(self, seed: int = 42) -> None:
        self.rnd = random.Random(seed)
        self.text = _Text(self.rnd)
        self.counter = 0

    def _uuid(self) -> str:
        h = f"{self.rnd.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    def _call_id(self) -> str:
        return "call_" + "".join(self.rnd.choices(_B62, k=24))

    def _tool_args(self, tool: str) -> dict:
        r, t = self.rnd, self.text
        if tool == "search_docs":
            return {"query": " ".join(t.words_(r.randint(3, 8))), "top_k": r.choice([3, 5, 10])}
        if tool == "read_file":
            return {"path": "/".join(["src", *t.words_(r.randint(1, 3))]) + r.choice([".py", ".ts", ".md", ".go"])}
        if tool == "run_sql":
            cols = ", ".join(t.ident() for _ in range(r.randint(2, 5)))
            return {"sql": f"SELECT {cols} FROM {t.ident()} WHERE {t.ident()} > {r.randint(1, 999)} LIMIT {r.randint(5, 50)}"}
        if tool == "http_get":
            return {"url": f"https://api.{t.ident()}.example.com/v{r.randint(1, 3)}/{t.ident()}/{r.randint(1, 99999)}"}
        if tool == "get_weather":
            return {"city": t.ident().title(), "units": r.choice(["metric", "imperial"])}
        if tool == "create_ticket":
            return {"title": t.sentence(4, 9), "priority": r.choice(["low", "medium", "high"]), "body": t.paragraph(1, 3)}
        return {"expression": f"{r.randint(1, 9999)} * {r.random():.4f} + {r.randint(1, 99)}"}

    def _tool_result(self, tool: str) -> str:
        r, t = self.rnd, self.text
        if tool == "search_docs":
            hits = [
                {
                    "title": t.sentence(3, 8),
                    "url": f"https://docs.example.com/{t.ident()}/{t.ident()}",
                    "score": round(r.random(), 4),
                    "snippet": t.paragraph(1, 4),
                }
                for _ in range(r.randint(3, 8))
            ]
            return json.dumps({"results": hits})
        if tool == "read_file":
            return t.code(r.randint(20, 120))
        if tool == "run_sql":
            ncols = r.randint(2, 6)
            cols = [t.ident() for _ in range(ncols)]
            rows = [
                [r.choice([r.randint(0, 10**6), round(r.uniform(0, 1000), 2), t.ident(), self._uuid()]) for _ in cols]
                for _ in range(r.randint(5, 60))
            ]
            return json.dumps({"columns": cols, "rows": rows, "row_count": len(rows)})
        if tool == "http_get":
            return json.dumps(
                {
                    "status": 200,
                    "data": {t.ident(): t.sentence() for _ in range(r.randint(3, 15))},
                    "request_id": self._uuid(),
                    "ts": f"2025-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:00Z",
                }
            )
        if tool == "get_weather":
            return json.dumps(
                {"temp": round(r.uniform(-20, 40), 1), "humidity": r.randint(10, 100), "summary": t.sentence(3, 8),
                 "hourly": [round(r.uniform(-20, 40), 1) for _ in range(24)]}
            )
        if tool == "create_ticket":
            return json.dumps({"ticket_id": f"TCK-{r.randint(10000, 99999)}", "url": f"https://tickets.example.com/{self._uuid()}"})
        return str(round(r.uniform(0, 10**7), 6))

    def _ai(self, with_tools: bool) -> dict:
        r, t = self.rnd, self.text
        msg: dict = {"type": "ai", "id": f"run-{self._uuid()}", "content": t.paragraph(1, 5) if not with_tools or r.random() < 0.5 else ""}
        calls = []
        if with_tools:
            for _ in range(r.choice([1, 1, 1, 2, 3])):
                tool = r.choice(_TOOLS)
                calls.append({"name": tool, "args": self._tool_args(tool), "id": self._call_id(), "type": "tool_call"})
        msg["tool_calls"] = calls
        tin, tout = r.randint(200, 30000), r.randint(20, 1500)
        msg["usage_metadata"] = {"input_tokens": tin, "output_tokens": tout, "total_tokens": tin + tout}
        msg["response_metadata"] = {
            "model_name": r.choice(_MODELS),
            "finish_reason": "tool_calls" if calls else "stop",
            "system_fingerprint": "fp_" + "".join(r.choices(_B62, k=10)),
        }
        return msg

    def _messages(self):
        """An endless conversation: system, then turns of human -> AI (tool calls -> tool results)* -> AI."""
        r, t = self.rnd, self.text
        yield {"type": "system", "content": t.paragraph(4, 10)}
        while True:
            yield {"type": "human", "id": self._uuid(), "content": t.paragraph(1, 4)}
            for _ in range(r.randint(0, 3)):
                ai = self._ai(with_tools=True)
                yield ai
                for call in ai["tool_calls"]:
                    yield {"type": "tool", "id": self._uuid(), "name": call["name"], "tool_call_id": call["id"],
                           "content": self._tool_result(call["name"]), "status": "success"}
            yield self._ai(with_tools=False)

    def state(self, target_bytes: int | None = None) -> dict:
        """One state whose JSON encoding is close to target_bytes (drawn from the size distribution if None)."""
        r = self.rnd
        target = target_bytes if target_bytes is not None else int(r.triangular(MIN_BYTES, MAX_BYTES, MODE_BYTES))
        self.counter += 1
        step = r.randint(1, 60)
        state: dict = {
            "messages": [],
            "step": step,
            "remaining_steps": 25 - step % 25,
            "plan": [self.text.sentence(4, 10) for _ in range(r.randint(0, 4))],
            "context": {"user_id": self._uuid(), "locale": r.choice(["en-US", "en-GB", "de-DE", "fr-FR"]), "tier": r.choice(["free", "pro"])},
        }
        size = len(encode(state))
        for msg in self._messages():
            msg_len = len(encode(msg)) + 1
            if size + msg_len > target:
                room = target - size - (msg_len - len(msg.get("content", "")))
                if room > 64 and isinstance(msg.get("content"), str):
                    msg["content"] = msg["content"][:room]
                    state["messages"].append(msg)
                break
            state["messages"].append(msg)
            size += msg_len
        return state

    def state_bytes(self, target_bytes: int | None = None) -> bytes:
        return encode(self.state(target_bytes))


def encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def fixed_size_state(size: int, seed: int = 42) -> bytes:
    """A JSON document of exactly `size` bytes (at least 16) with text that compresses like prose."""
    size = max(size, 16)
    text = _Text(random.Random(seed))
    chunks, n = [], 0
    room = size - len(b'{"data":""}')
    while n < room:
        s = text.sentence() + " "
        chunks.append(s)
        n += len(s)
    body = "".join(chunks)[:room]
    return encode({"data": body})


@dataclass
class StateSource:
    """The states a run cycles through, and how they were made (for the report)."""

    states: list[bytes]
    kind: str
    description: str

    @property
    def mean_bytes(self) -> float:
        return sum(map(len, self.states)) / len(self.states)


def agent_states(count: int, seed: int = 42) -> StateSource:
    gen = AgentStateGenerator(seed)
    states = [gen.state_bytes() for _ in range(count)]
    src = StateSource(states, "agent", "")
    src.description = f"agent states (seed {seed}, {count} distinct, mean {src.mean_bytes / 1000:.1f} KB)"
    return src


def fixed_states(size: int, count: int, seed: int = 42) -> StateSource:
    states = [fixed_size_state(size, seed + i) for i in range(count)]
    return StateSource(states, "fixed", f"fixed-size states ({size} bytes, {count} distinct)")


def file_states(path: str) -> StateSource:
    """A JSON Lines file (every non-empty line valid JSON) is one state per line; any other file is one state."""
    data = Path(path).read_bytes()
    lines = [ln.strip() for ln in data.splitlines() if ln.strip()]
    states = [data]
    if len(lines) > 1:
        try:
            for ln in lines:
                json.loads(ln)
        except ValueError:
            pass
        else:
            states = lines
    if not states or not states[0]:
        raise ValueError(f"{path}: no state in the file")
    src = StateSource(states, "file", "")
    src.description = f"states from {path} ({len(states)}, mean {src.mean_bytes / 1000:.1f} KB)"
    return src
