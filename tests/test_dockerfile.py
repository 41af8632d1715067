"""The deployment files, checked without a Docker engine.

* The Dockerfile is parsed: multi-stage, slim runtime, non-root USER, EXPOSE, HEALTHCHECK, ENTRYPOINT/CMD.
* Its build stage is replayed: the wheel is built from exactly the files .dockerignore lets through.
* Its entrypoint command (ENTRYPOINT + CMD, a free port instead of 50051, the image's ENV with
  CAIRN_SQLITE_PATH in a temp dir) is started for real, its HEALTHCHECK command must pass, and SIGTERM
  (docker stop) must end it with exit 0.
* deploy/docker-compose.yml and deploy/kubernetes/sidecar.yaml parse (PyYAML; that check is skipped without
  it), name only real CAIRN_* settings, and the sidecar's own commands run: `cairn serve` on the unix socket
  and its `cairn health` probe.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
SIDECAR = ROOT / "deploy" / "kubernetes" / "sidecar.yaml"
IMAGE_PORT = "50051"
START_GUARD_SECONDS = 60  # hang guards while waiting for a process, not assertions on speed


# -- a small Dockerfile parser ---------------------------------------------------------------------


@dataclass
class Instruction:
    name: str  # upper case
    flags: dict[str, str]  # --name=value flags (FROM, COPY, RUN --mount, HEALTHCHECK ...)
    args: str  # the rest, as written
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, else None."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, name: str) -> list[Instruction]:
        return [i for i in self.instructions if i.name == name]

    def last(self, name: str) -> Instruction | None:
        found = self.all(name)
        return found[-1] if found else None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join `\\` continuations, drop comment lines (also inside continuations) and blank lines."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue
        if not buf:
            start = number
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        out.append((start, buf))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def _split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args.lstrip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        key, _, value = word[2:].partition("=")
        flags[key] = value
        rest = rest.lstrip()
    return flags, rest


def parse_dockerfile(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for number, line in _logical_lines(text):
        word, _, args = line.partition(" ")
        name = word.upper()
        assert re.fullmatch(r"[A-Z]+", name), f"line {number}: not an instruction: {line!r}"
        flags, rest = _split_flags(args) if name in ("FROM", "COPY", "ADD", "RUN", "HEALTHCHECK") else ({}, args)
        ins = Instruction(name, flags, rest.strip(), number)
        if name == "FROM":
            parts = rest.split()
            alias = parts[2] if len(parts) == 3 and parts[1].lower() == "as" else None
            stages.append(Stage(parts[0], alias))
        else:
            assert stages or name == "ARG", f"line {number}: {name} before FROM"
        if stages:
            stages[-1].instructions.append(ins)
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs of a stage (the key=value form; values may be quoted)."""
    env: dict[str, str] = {}
    for ins in stage.all("ENV"):
        words = shlex.split(ins.args)
        assert all("=" in w for w in words), f"line {ins.line}: use ENV KEY=value"
        env.update(w.split("=", 1) for w in words)  # type: ignore[arg-type]
    return env


def args_of(stage: Stage) -> dict[str, str]:
    return dict(
        (ins.args.split("=", 1) + [""])[:2]  # type: ignore[misc]
        for ins in stage.all("ARG")
    )


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    assert DOCKERFILE.is_file(), "the repository root has no Dockerfile"
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def cairn_exe() -> str:
    exe = shutil.which("cairn")
    if not exe:
        pytest.fail("the Dockerfile's entrypoint `cairn` is not installed here: run `pip install -e '.[server]'`")
    return exe


def config_env_names() -> set[str]:
    """CAIRN_<FIELD> of every `cairn serve` setting, plus the file and the admin CLI's own variables."""
    from cairn_server.config import Config

    names = {"CAIRN_" + f.name.upper() for f in dataclasses.fields(Config)}
    return names | {"CAIRN_CONFIG", "CAIRN_TARGET", "CAIRN_TOKEN", "CAIRN_TLS_CA"}


# -- the Dockerfile itself -------------------------------------------------------------------------


def test_multi_stage_build(stages: list[Stage], runtime: Stage) -> None:
    assert len(stages) >= 2, "the Dockerfile must be multi-stage"
    build = stages[0]
    assert build.name, "the build stage needs a name (FROM ... AS build)"
    assert runtime.base == "python:3.11-slim"
    builds_wheel = [i for i in build.all("RUN") if re.search(r"\bpip (wheel|install)\b|\bpython -m build\b", i.args)]
    assert builds_wheel, "the build stage does not build a wheel"
    # The runtime takes the wheels from the build stage, and nothing from the build context.
    from_build = [i for i in runtime.all("COPY") if i.flags.get("from") == build.name] + [
        i for i in runtime.all("RUN") if f"from={build.name}" in i.flags.get("mount", "")
    ]
    assert from_build, "the runtime stage does not take the wheel from the build stage"
    assert not [i for i in runtime.all("COPY") if "from" not in i.flags], "runtime COPYs from the build context"
    installs = [i for i in runtime.all("RUN") if "pip install" in i.args]
    assert installs, "the runtime stage does not pip install the wheel"
    extras = args_of(runtime).get("CAIRN_EXTRAS", "")
    text = installs[-1].args.replace("${CAIRN_EXTRAS}", extras)
    assert re.search(r"\.whl\)?\[[^\]]*\bserver\b", text), f"the wheel is not installed with [server]: {text}"


def test_runtime_is_non_root_with_port_health_and_entrypoint(runtime: Stage) -> None:
    user = runtime.last("USER")
    assert user is not None, "the runtime stage sets no USER (it would run as root)"
    name = user.args.split(":")[0]
    assert name not in ("root", "0", ""), f"USER {user.args} is root"
    assert any(IMAGE_PORT in i.args.split() for i in runtime.all("EXPOSE"))
    assert runtime.last("ENTRYPOINT").exec_form() == ["cairn"]  # type: ignore[union-attr]
    assert runtime.last("CMD").exec_form() == ["serve", "--listen", f"0.0.0.0:{IMAGE_PORT}"]  # type: ignore[union-attr]
    health = runtime.last("HEALTHCHECK")
    assert health is not None, "no HEALTHCHECK"
    words = _healthcheck_command(health)
    assert words == ["cairn", "health", "--target", f"127.0.0.1:{IMAGE_PORT}"], words
    for key in ("interval", "timeout", "retries"):
        assert key in health.flags, f"HEALTHCHECK --{key} is not set"
    # Config by env vars: every CAIRN_* the image sets is a real setting.
    env = env_of(runtime)
    unknown = {k for k in env if k.startswith("CAIRN_")} - config_env_names()
    assert not unknown, f"the Dockerfile sets unknown settings {unknown}"
    assert env.get("CAIRN_SQLITE_PATH", "").startswith("/var/lib/cairn/")


def _healthcheck_command(health: Instruction) -> list[str]:
    assert health.args.startswith("CMD "), f"HEALTHCHECK {health.args!r}"
    rest = health.args[4:].strip()
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


# -- the build stage, replayed ---------------------------------------------------------------------


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(exclude?, regex) per line, Docker semantics: last match wins; a match on a parent dir counts."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex += pattern[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        rules.append((exclude, re.compile(regex + r"\Z")))
    return rules


def build_context_files() -> list[Path]:
    """The repository files `docker build .` would send, per .dockerignore."""
    rules = _dockerignore_rules()

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        result = False
        for exclude, regex in rules:
            if any(regex.match("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
                result = exclude
        return result

    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT)
        dirnames[:] = [d for d in dirnames if d not in (".git", "node_modules")]
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if not excluded(rel):
                out.append(ROOT / rel)
    return out


def test_dockerignore_sends_only_the_python_packages() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in build_context_files()}
    assert "pyproject.toml" in files
    assert "server/cairn_server/cli.py" in files and "client_py/cairn_client/client.py" in files
    assert "api_py/cairn/v1/checkpoint_store_pb2.py" in files
    assert "tools/cairn_tools/admin/commands.py" in files
    tops = {f.split("/")[0] for f in files}
    assert tops <= {"pyproject.toml", "README.md", "LICENSE", "api_py", "client_py", "server", "tools"}, tops
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".db")) or ".egg-info" in f]


def test_build_stage_makes_a_wheel_with_the_cairn_command(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools installed")
    context = tmp_path / "context"
    for src in build_context_files():
        dest = context / src.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    wheels = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--wheel-dir", str(wheels), str(context)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [wheel] = wheels.glob("cairn_checkpoint-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for module in ("cairn_server/cli.py", "cairn_tools/admin/__init__.py", "cairn_server/server.py",
                       "cairn_client/__init__.py", "cairn/v1/checkpoint_store_pb2.py"):
            assert module in names, f"{module} missing from the wheel"
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert "Provides-Extra: server" in zf.read(meta).decode()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
        assert re.search(r"^cairn\s*=\s*cairn_server\.cli:main$", entry_points, re.M), entry_points


# -- the entrypoint, run for real ------------------------------------------------------------------


def _with_port(words: list[str], port: int) -> list[str]:
    return [w.replace(f":{IMAGE_PORT}", f":{port}") for w in words]


def _wait_healthy(health_cmd: list[str], proc: subprocess.Popen[bytes], env: dict[str, str], log: Path) -> None:
    deadline = time.monotonic() + START_GUARD_SECONDS
    while True:
        res = subprocess.run(health_cmd, capture_output=True, text=True, env=env, timeout=60)
        if res.returncode == 0 and res.stdout.strip() == "SERVING":
            return
        assert proc.poll() is None, f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not healthy: {res.stdout}{res.stderr}\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError("the server did not exit within 60 s of SIGTERM") from None


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    env.update(extra)
    return env


def test_entrypoint_starts_and_answers_its_healthcheck(runtime: Stage, tmp_path: Path) -> None:
    exe = cairn_exe()
    entrypoint = runtime.last("ENTRYPOINT").exec_form()  # type: ignore[union-attr]
    cmd = runtime.last("CMD").exec_form()  # type: ignore[union-attr]
    assert entrypoint and cmd
    port = free_port()
    argv = [exe if w == "cairn" else w for w in _with_port([*entrypoint, *cmd], port)]
    health = [exe if w == "cairn" else w for w in _with_port(_healthcheck_command(runtime.last("HEALTHCHECK")), port)]  # type: ignore[arg-type]

    image_env = env_of(runtime)
    db = tmp_path / "data" / "cairn.db"
    db.parent.mkdir()
    env = _clean_env(**{**image_env, "CAIRN_SQLITE_PATH": str(db), "CAIRN_LOG_LEVEL": "WARNING"})
    log = tmp_path / "cairn.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_healthy(health, proc, env, log)
        from cairn_client import CheckpointClient

        with CheckpointClient(f"127.0.0.1:{port}") as client:
            client.save("docker-entrypoint", {"ok": True})
            assert client.load("docker-entrypoint").json() == {"ok": True}
        assert db.exists(), "CAIRN_SQLITE_PATH from the environment was not used"
    finally:
        rc = _stop(proc)
    assert rc == 0, f"SIGTERM (docker stop) must exit 0, got {rc}:\n{log.read_text()[-3000:]}"
    res = subprocess.run(health, capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 1 and res.stderr.startswith("cairn: UNAVAILABLE:"), res  # unhealthy when down


# Runs `cairn` the way the image has it: only the modules of cairn[<extras>] and its dependencies importable.
_ONLY_EXTRAS = r"""
import importlib.abc, importlib.metadata as md, re, sys
from packaging.requirements import Requirement

def closure(root, extras):
    seen, todo = set(), [(root, tuple(extras))]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        for text in md.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (*extras, "")):
                todo.append((req.name, tuple(sorted(req.extras))))
    return {k for k, _ in seen}

EXTRAS = sys.argv[1]
allowed_dists = closure("cairn-checkpoint", [e for e in EXTRAS.split(",") if e])
allowed = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | {"cairn", "cairn_client", "cairn_server"}
for top, dists in md.packages_distributions().items():
    if any(re.sub(r"[-_.]+", "-", d).lower() in allowed_dists for d in dists):
        allowed.add(top)

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in allowed and not name.startswith("_"):
            raise ModuleNotFoundError(f"No module named {name!r} (not in cairn[{EXTRAS}])", name=name)
        return None

sys.meta_path.insert(0, Block())
sys.argv = ["cairn", *sys.argv[2:]]
from cairn_server.cli import main
sys.exit(main())
"""


def test_entrypoint_needs_only_the_installed_extras(runtime: Stage, tmp_path: Path) -> None:
    """`cairn serve` and `cairn health` with nothing importable beyond cairn[server]'s dependency closure."""
    pytest.importorskip("packaging", reason="resolving the dependency closure needs `packaging`")
    extras = args_of(runtime).get("CAIRN_EXTRAS", "server")
    script = tmp_path / "only_extras.py"
    script.write_text(_ONLY_EXTRAS)
    port = free_port()
    cmd = _with_port([*runtime.last("CMD").exec_form()], port)  # type: ignore[union-attr, misc]
    health = _with_port(_healthcheck_command(runtime.last("HEALTHCHECK"))[1:], port)  # type: ignore[arg-type]
    base = [sys.executable, str(script), extras]
    env = _clean_env(CAIRN_SQLITE_PATH=str(tmp_path / "cairn.db"), CAIRN_LOG_LEVEL="WARNING")
    log = tmp_path / "cairn.log"
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen([*base, *cmd], env=env, cwd=tmp_path, stdout=log_fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_healthy([*base, *health], proc, env, log)
        res = subprocess.run([*base, "threads", "--json", "--target", f"127.0.0.1:{port}"], capture_output=True,
                             text=True, env=env, timeout=60)
        assert res.returncode == 0, res.stderr
        # An agent image with only the client (no extras) can still run the health probe.
        res = subprocess.run([sys.executable, str(script), "", *health], capture_output=True, text=True, env=env,
                             timeout=60)
        assert (res.returncode, res.stdout.strip()) == (0, "SERVING"), res.stderr
    finally:
        rc = _stop(proc)
    assert rc == 0, log.read_text()[-3000:]


# -- docker-compose and Kubernetes ------------------------------------------------------------------


def _yaml() -> Any:
    return pytest.importorskip("yaml", reason="PyYAML is not installed: the YAML parse checks are skipped")


def test_compose_file() -> None:
    yaml = _yaml()
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"redis", "postgres", "cairn"} <= set(services)
    for name in ("redis", "postgres", "cairn"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    cairn = services["cairn"]
    assert (COMPOSE.parent / cairn["build"]["context"] / cairn["build"].get("dockerfile", "Dockerfile")).resolve() \
        == DOCKERFILE
    assert cairn["depends_on"] == {"redis": {"condition": "service_healthy"},
                                   "postgres": {"condition": "service_healthy"}}
    assert cairn["healthcheck"]["test"][:3] == ["CMD", "cairn", "health"]
    env = cairn["environment"]
    assert set(env) <= config_env_names(), set(env) - config_env_names()
    assert env["CAIRN_REDIS_URL"].startswith("redis://redis:")
    assert "@postgres:5432/" in env["CAIRN_POSTGRES_DSN"]
    assert any(str(p).endswith(f":{IMAGE_PORT}") for p in cairn["ports"])
    redis = services["redis"]["command"]  # a bounded cache (issue 32)
    assert redis[redis.index("--maxmemory-policy") + 1] == "allkeys-lru" and "--maxmemory" in redis


def _sidecar_pod() -> dict[str, Any]:
    yaml = _yaml()
    docs = [d for d in yaml.safe_load_all(SIDECAR.read_text()) if d]
    [pod] = [d for d in docs if d.get("kind") == "Pod"]
    return pod


def _cairn_sidecar(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod["spec"]
    found = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "cairn"]
    assert len(found) == 1, "exactly one container named cairn"
    return found[0]


def test_sidecar_pod_shares_the_unix_socket() -> None:
    pod = _sidecar_pod()
    spec = pod["spec"]
    cairn = _cairn_sidecar(pod)
    if cairn in spec.get("initContainers", []):
        assert cairn.get("restartPolicy") == "Always", "a sidecar init container needs restartPolicy: Always"
    listen = cairn["args"][cairn["args"].index("--listen") + 1]
    assert listen == "unix:/var/run/cairn/cairn.sock"
    sock_dir = str(Path(listen[len("unix:"):]).parent)
    volumes = {v["name"]: v for v in spec["volumes"]}
    agents = [c for c in spec["containers"] if c["name"] != "cairn"]
    assert agents, "no agent container"

    def socket_volume(container: dict[str, Any]) -> str:
        [mount] = [m for m in container.get("volumeMounts", []) if m["mountPath"] == sock_dir]
        return mount["name"]

    shared = socket_volume(cairn)
    assert "emptyDir" in volumes[shared]
    for agent in agents:
        assert socket_volume(agent) == shared
        env = {e["name"]: e.get("value") for e in agent.get("env", [])}
        assert env.get("CAIRN_TARGET") == listen
    for probe in ("readinessProbe", "startupProbe", "livenessProbe"):
        if probe in cairn:
            assert cairn[probe]["exec"]["command"] == ["cairn", "health", "--target", listen]
    assert "readinessProbe" in cairn
    names = {e["name"] for e in cairn.get("env", [])}
    assert names <= config_env_names(), names - config_env_names()
    ctx = spec.get("securityContext", {})
    assert ctx.get("runAsNonRoot") is True and ctx.get("runAsUser") not in (None, 0)


def test_sidecar_commands_run(tmp_path: Path) -> None:
    """The sidecar's args and probe, with its paths moved into a temp dir, start a server on the socket."""
    exe = cairn_exe()
    cairn = _cairn_sidecar(_sidecar_pod())
    with tempfile.TemporaryDirectory(prefix="cairn-k8s-", dir="/tmp") as d:  # unix socket paths are short
        base = Path(d)
        mounts = {m["mountPath"]: base / m["name"] for m in cairn["volumeMounts"]}
        for path in mounts.values():
            path.mkdir()

        pattern = re.compile("|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True)) + r"(?=/|$)")

        def local(text: str) -> str:  # one pass, so /tmp is not replaced inside the new paths
            return pattern.sub(lambda m: str(mounts[m.group(0)]), text)

        command = cairn.get("command", ["cairn"])
        argv = [exe if w == "cairn" else local(w) for w in [*command, *cairn["args"]]]
        env = _clean_env(**{**{e["name"]: local(e["value"]) for e in cairn.get("env", []) if "value" in e},
                            "CAIRN_LOG_LEVEL": "WARNING"})
        probe = [exe if w == "cairn" else local(w) for w in cairn["readinessProbe"]["exec"]["command"]]
        log = tmp_path / "cairn.log"
        with open(log, "wb") as log_fh:
            proc = subprocess.Popen(argv, env=env, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(probe, proc, env, log)
            target = probe[probe.index("--target") + 1]
            agent_env = _clean_env(CAIRN_TARGET=target)
            res = subprocess.run([exe, "threads", "--json"], capture_output=True, text=True, env=agent_env,
                                 timeout=60)
            assert res.returncode == 0 and json.loads(res.stdout) == {"threads": [], "next_page_token": ""}, res
        finally:
            rc = _stop(proc)
        assert rc == 0, log.read_text()[-3000:]
