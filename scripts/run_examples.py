"""Every code block of README.md and the client READMEs, compiled or run against a live server.

    python3 scripts/run_examples.py [--repeat 2] [--lang python --lang sh --lang go --lang ts --lang java]

Each fenced block must follow a directive comment saying what is done with it (a block without one fails):

    <!-- example: run -->               the block is a whole program (python, sh, go, ts, java): it is compiled
                                        and run --repeat times in a row, so it must survive its own earlier run
    <!-- example: compile KIND -->      a fragment, compiled inside a small wrapper (go-imports, ts-fragment,
                                        java-fragment): it must type-check against the client as it is
    <!-- example: install KIND -->      an install command or dependency snippet (go, npm, maven, pip): the name
                                        and version it installs must be the package's own (go.mod, package.json,
                                        pom.xml, pyproject.toml)
    <!-- example: not-run REASON -->    not run here; REASON says what covers it instead

The server is `cairn serve` on the embedded default on a free port; a block's literal address
(127.0.0.1:50051 or localhost:50051) is replaced by the server's, and CAIRN_TARGET names it. With --lang, only
those languages' blocks run (test_all.sh passes the toolchains it has; it skips the others only outside CI).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

READMES = ["README.md", "client_py/README.md", "client_go/README.md", "client_ts/README.md", "client_java/README.md"]
ADDRESSES = ("127.0.0.1:50051", "localhost:50051")
LANGS = {"python": "python", "sh": "sh", "go": "go", "ts": "ts", "java": "java", "xml": "java"}
DIRECTIVE = re.compile(r"<!--\s*example:\s*(\S+)\s*(.*?)\s*-->")
FENCE = re.compile(r"^\s*```(\w*)\s*$")


class Failed(Exception):
    """An example did not compile, run, or match its package."""


@dataclass
class Block:
    path: str
    line: int
    lang: str
    code: str
    action: str
    arg: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks(readme: str) -> list[Block]:
    """The fenced blocks of a README with the directive in front of each."""
    lines = (ROOT / readme).read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].lstrip().startswith("```"):
            j += 1
        prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        d = DIRECTIVE.search(prev)
        if not d:
            raise Failed(f"{readme}:{start + 1}: a code block without an `<!-- example: ... -->` directive before it")
        pad = len(lines[start]) - len(lines[start].lstrip())
        code = "\n".join(line[pad:] for line in lines[start + 1 : j]) + "\n"
        out.append(Block(readme, start + 1, m.group(1) or "text", code,
                         d.group(1), d.group(2)))
        i = j + 1
    return out


def run(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise Failed(f"{what}: exit {proc.returncode}\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


class ExampleRunner:
    def __init__(self, target: str, tmp: Path) -> None:
        self.target = target
        self.tmp = tmp
        self.env = {**os.environ, "CAIRN_TARGET": target}
        self.prepared: set[str] = set()

    def code(self, block: Block) -> str:
        text = block.code
        for address in ADDRESSES:
            text = text.replace(address, self.target)
        return text

    # -- run ------------------------------------------------------------------------------------------

    def run_block(self, block: Block) -> None:
        getattr(self, f"run_{block.lang}")(block)

    def run_python(self, block: Block) -> None:
        path = self.tmp / "example.py"
        path.write_text(self.code(block))
        run([sys.executable, str(path)], ROOT, self.env, block.where)

    def run_sh(self, block: Block) -> None:
        run(["bash", "-euo", "pipefail", "-c", self.code(block)], ROOT, self.env, block.where)

    def _go_dir(self) -> Path:
        path = ROOT / "client_go" / "internal" / "readmeexample"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def run_go(self, block: Block) -> None:
        d = self._go_dir()
        try:
            (d / "main.go").write_text(self.code(block))
            run(["go", "vet", "./internal/readmeexample"], ROOT / "client_go", self.env, block.where + " (go vet)")
            run(["go", "run", "./internal/readmeexample"], ROOT / "client_go", self.env, block.where)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def _ts_ready(self) -> Path:
        ts = ROOT / "client_ts"
        if "ts" not in self.prepared:
            if not (ts / "node_modules").is_dir():
                run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], ts, self.env,
                    "client_ts: npm ci")
            run(["npm", "run", "--silent", "build"], ts, self.env, "client_ts: npm run build")
            self.prepared.add("ts")
        d = ts / ".readme-example"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        return d

    def _tsc(self, d: Path, where: str, emit: bool) -> None:
        tsc = ROOT / "client_ts" / "node_modules" / ".bin" / "tsc"
        flags = ["--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
                 "--skipLibCheck", "--types", "node", "--rootDir", str(d)]
        flags += ["--outDir", str(d)] if emit else ["--noEmit"]
        run([str(tsc), *flags, str(d / "example.mts")], ROOT / "client_ts", self.env, where + " (tsc)")

    def run_ts(self, block: Block) -> None:
        d = self._ts_ready()
        try:
            (d / "example.mts").write_text(self.code(block))
            self._tsc(d, block.where, emit=True)
            run(["node", str(d / "example.mjs")], ROOT / "client_ts", self.env, block.where)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def _java_classpath(self) -> str:
        java = ROOT / "client_java"
        if "java" not in self.prepared:
            run(["mvn", "-q", "-B", "-ntp", "-Dstyle.color=never", "compile", "dependency:build-classpath",
                 "-Dmdep.outputFile=target/readme-classpath.txt", "-Dmdep.includeScope=runtime"],
                java, self.env, "client_java: mvn compile")
            self.prepared.add("java")
        deps = (java / "target" / "readme-classpath.txt").read_text().strip()
        return f"{java / 'target' / 'classes'}{os.pathsep}{deps}"

    def run_java(self, block: Block) -> None:
        path = self.tmp / "Example.java"
        path.write_text(self.code(block))
        run(["java", "-cp", self._java_classpath(), str(path)], ROOT, self.env, block.where)

    # -- compile --------------------------------------------------------------------------------------

    def compile_block(self, block: Block) -> None:
        kind = block.arg
        code = self.code(block)
        if kind == "go-imports":
            d = self._go_dir()
            try:
                names = re.findall(r'^import (\w+) "', code, re.M)
                uses = "".join(f"var _ = {n}.Dial\n" for n in names)
                (d / "main.go").write_text(f"package main\n\n{code}\n{uses}\nfunc main() {{}}\n")
                run(["go", "build", "-o", os.devnull, "./internal/readmeexample"], ROOT / "client_go", self.env,
                    block.where)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        elif kind == "ts-fragment":
            d = self._ts_ready()
            try:
                head = ('import { CairnClient } from "@cairn/client";\n'
                        'import { CairnSaver } from "@cairn/client/langgraph";\n')
                (d / "example.mts").write_text(head + code + "\nexport { client, saver };\n")
                self._tsc(d, block.where, emit=False)
            finally:
                shutil.rmtree(d, ignore_errors=True)
        elif kind == "java-fragment":
            src = self.tmp / "Fragment.java"
            src.write_text("import dev.cairn.client.*;\n\nclass Fragment {\n  static Object f() throws Exception {\n"
                           f"{code}    return null;\n  }}\n}}\n")
            out = self.tmp / "classes"
            out.mkdir(exist_ok=True)
            run(["javac", "-cp", self._java_classpath(), "-d", str(out), str(src)], ROOT, self.env, block.where)
        else:
            raise Failed(f"{block.where}: unknown compile kind {kind!r}")

    # -- install --------------------------------------------------------------------------------------

    def check_install(self, block: Block) -> None:
        kind, code = block.arg, block.code
        if kind == "go":
            # the client module, and the LangGraphGo adapter, a module of its own
            expect = [re.search(r"^module (\S+)", (ROOT / path).read_text(), re.M).group(1)  # type: ignore[union-attr]
                      for path in ("client_go/go.mod", "client_go/langgraphgo/go.mod")]
            got = re.findall(r"go get (\S+?)(?:@\S+)?\s", code)
        elif kind == "npm":
            name = json.loads((ROOT / "client_ts/package.json").read_text())["name"]
            got = re.findall(r"npm install (\S+)", code)[:1]
            expect = [name]
        elif kind == "maven":
            ns = {"m": "http://maven.apache.org/POM/4.0.0"}
            pom = ET.parse(ROOT / "client_java/pom.xml").getroot()
            dep = ET.fromstring(code)
            got = [":".join((dep.findtext(t) or "") for t in ("groupId", "artifactId", "version"))]
            expect = [":".join((pom.findtext(f"m:{t}", namespaces=ns) or "") for t in ("groupId", "artifactId", "version"))]
        elif kind == "pip":
            name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
            got = re.findall(r"pip install '?([\w.-]+)", code)[:1]
            expect = [name]
        else:
            raise Failed(f"{block.where}: unknown install kind {kind!r}")
        if got != expect:
            raise Failed(f"{block.where}: installs {got}, but the package is {expect}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each runnable block, in a row (2)")
    parser.add_argument("--lang", action="append", choices=sorted(set(LANGS.values())),
                        help="only these languages (default: all)")
    parser.add_argument("--list", action="store_true", help="list the blocks and what is done with each")
    args = parser.parse_args()
    langs = set(args.lang or LANGS.values())
    try:
        every = [b for readme in READMES for b in blocks(readme)]
    except Failed as exc:
        print(f"run_examples: {exc}", file=sys.stderr)
        return 1
    if args.list:
        for b in every:
            print(f"{b.where:28} {b.lang:6} {b.action} {b.arg}")
        return 0

    from cairn_tools.cluster import CairnProcess

    counts = {"run": 0, "compile": 0, "install": 0, "not-run": 0, "skipped": 0}
    with tempfile.TemporaryDirectory(prefix="cairn-examples-") as tmp, \
            CairnProcess.embedded("--log-level", "WARNING") as server:
        runner = ExampleRunner(server.target, Path(tmp))
        print(f"run_examples: cairn on {server.target}; {len(every)} blocks in {', '.join(READMES)}", flush=True)
        try:
            for b in every:
                lang = LANGS.get(b.lang)
                if b.action == "not-run":
                    if not b.arg:
                        raise Failed(f"{b.where}: not-run needs a reason")
                    print(f"  {b.where}: not run: {b.arg}")
                    counts["not-run"] += 1
                elif b.action == "install":
                    runner.check_install(b)
                    print(f"  {b.where}: {b.arg} install names the package: ok")
                    counts["install"] += 1
                elif lang not in langs:
                    print(f"  {b.where}: SKIP ({b.lang} toolchain not available)")
                    counts["skipped"] += 1
                elif b.action == "compile":
                    runner.compile_block(b)
                    print(f"  {b.where}: {b.arg} compiles: ok")
                    counts["compile"] += 1
                elif b.action == "run":
                    for n in range(args.repeat):
                        runner.run_block(b)
                    print(f"  {b.where}: {b.lang} ran {args.repeat}x: ok", flush=True)
                    counts["run"] += 1
                else:
                    raise Failed(f"{b.where}: unknown directive {b.action!r}")
        except Failed as exc:
            print(f"run_examples: FAIL {exc}", file=sys.stderr)
            return 1
    print("run_examples: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
