"""What publishing needs, checked on the files: the PyPI name used in every hint, the LICENSE and URLs, npm
and Maven metadata, one buf version, and scripts that run on a bare Debian (python3, never `python`).

The registries themselves are asked by hand (the PyPI name was free when chosen: `pip index versions
cairn-checkpoint` found nothing, while `cairn` is an unrelated project); `make fresh-debian` runs the scripts.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DIST = PYPROJECT["project"]["name"]


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / p for p in out.stdout.split()]


def test_the_distribution_is_not_the_unrelated_pypi_cairn() -> None:
    assert DIST == "cairn-checkpoint"
    assert PYPROJECT["project"]["scripts"] == {"cairn": "cairn_server.cli:main"}


def test_every_pip_hint_names_the_distribution() -> None:
    bad = []
    for path in tracked("*.py", "*.md", "*.sh", "*.toml", "Dockerfile"):
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for name in re.findall(r"pip install ['\"]?(cairn[\w-]*)\[", line):
                if name != DIST:
                    bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
            for name in re.findall(r"\"(cairn[\w-]*)\[", line) if path.name == "pyproject.toml" else []:
                if name != DIST:
                    bad.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not bad, "hints that install the wrong distribution:\n" + "\n".join(bad)


def test_license_file_and_urls() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    urls = PYPROJECT["project"]["urls"]
    assert {"Homepage", "Repository", "Issues"} <= set(urls)
    assert all(u.startswith("https://") for u in urls.values())


def test_npm_metadata_is_complete() -> None:
    pkg = json.loads((ROOT / "client_ts/package.json").read_text())
    assert pkg["license"] == "Apache-2.0"
    assert pkg["repository"]["url"].startswith("git+https://") and pkg["repository"]["directory"] == "client_ts"
    assert pkg["homepage"].startswith("https://") and pkg["bugs"]["url"].startswith("https://")
    assert pkg["publishConfig"]["access"] == "public"
    assert {"dist", "README.md"} <= set(pkg["files"])
    assert not pkg.get("private")


def test_maven_pom_is_deployable_to_central() -> None:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(ROOT / "client_java/pom.xml").getroot()
    text = lambda path: (pom.findtext(path, namespaces=ns) or "").strip()  # noqa: E731
    assert re.fullmatch(r"\d+\.\d+\.\d+", text("m:version")), "a released version, not a SNAPSHOT"
    for path in ("m:name", "m:description", "m:url", "m:licenses/m:license/m:name", "m:licenses/m:license/m:url",
                 "m:developers/m:developer/m:name", "m:scm/m:url", "m:scm/m:connection"):
        assert text(path), f"{path} is required by Maven Central"
    plugins = {p.findtext("m:artifactId", namespaces=ns) for p in pom.iterfind(".//m:build/m:plugins/m:plugin", ns)}
    assert {"maven-source-plugin", "maven-javadoc-plugin"} <= plugins
    release = {p.findtext("m:artifactId", namespaces=ns)
               for p in pom.iterfind(".//m:profile[m:id='release']//m:plugin", ns)}
    assert {"maven-gpg-plugin", "central-publishing-maven-plugin"} <= release
    outside_comments = re.sub(r"<!--.*?-->", "", (ROOT / "client_java/pom.xml").read_text(), flags=re.S)
    assert "../" not in outside_comments, "the POM must build outside the repository"


def test_java_vendored_proto_matches() -> None:
    for src in (ROOT / "proto").rglob("*.proto"):
        copy = ROOT / "client_java/src/main/proto" / src.relative_to(ROOT / "proto")
        assert copy.read_bytes() == src.read_bytes(), f"{copy} is stale: run scripts/gen_proto.sh"


def test_one_buf_version() -> None:
    versions = {
        "scripts/check_generated.sh": re.search(r"BUF_VERSION=(\S+)", (ROOT / "scripts/check_generated.sh").read_text()),
        "scripts/gen_proto.sh": re.search(r"BUF_VERSION=(\S+)", (ROOT / "scripts/gen_proto.sh").read_text()),
    }
    found = {k: m.group(1) for k, m in versions.items() if m}
    found["client_ts/package.json"] = json.loads((ROOT / "client_ts/package.json").read_text())["devDependencies"][
        "@bufbuild/buf"]
    lock = json.loads((ROOT / "client_ts/package-lock.json").read_text())
    found["client_ts/package-lock.json"] = lock["packages"]["node_modules/@bufbuild/buf"]["version"]
    assert len(set(found.values())) == 1, found


def test_scripts_never_call_a_bare_python() -> None:
    """Debian 12 has python3 and no `python` until a venv is active."""
    for path in tracked("scripts/*.sh", "scripts/lib/*.sh", ".ci/run"):
        text = path.read_text()
        if "ensure_venv" in text:
            text = text.split("ensure_venv", 1)[0]  # after it, `python` is the venv's
        assert not re.search(r"(^|[\s;(])python(\s|$)", text, re.M), f"{path.relative_to(ROOT)} calls `python`"


def test_every_readme_code_block_says_how_it_is_checked() -> None:
    """scripts/run_examples.py refuses a README code block without an `<!-- example: ... -->` directive."""
    import sys

    out = subprocess.run([sys.executable, "scripts/run_examples.py", "--list"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    runs = [line for line in out.stdout.splitlines() if line.split()[2] == "run"]
    assert {line.split()[1] for line in runs} >= {"python", "sh", "go", "ts", "java"}
