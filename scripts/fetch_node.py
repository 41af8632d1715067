"""Fetch Node.js and npm from the npm registry into one directory (bin/node, bin/npm, bin/npx).

    python3 scripts/fetch_node.py --dest .tools/node

Node.js: the official Linux build that npm's `node` package installs on Linux (package `node-linux-<arch>`);
npm: the `npm` package, which bundles its dependencies. Both are pinned with their registry integrity
(sha512), like a lockfile, and verified before anything is unpacked. The registry is $npm_config_registry,
else https://registry.npmjs.org. Standard library only: it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

NODE_VERSION = "20.20.2"
NODE_INTEGRITY = {
    "x64": "sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==",
    "arm64": "sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==",
}
NPM_VERSION = "10.8.2"
NPM_INTEGRITY = "sha512-x/AIjFIKRllrhcb48dqUNAAZl0ig9+qMuN91RpZo3Cb2+zuibfh+KISl6+kVVyktDz230JKc208UkQwwMqyB+w=="
ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def fetch(registry: str, package: str, version: str, integrity: str) -> bytes:
    """The package's tarball, after checking it against its pinned sha512 integrity."""
    url = f"{registry}/{package}/-/{package}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        raise SystemExit(f"fetch_node: {url} does not match its pinned integrity ({digest} != {integrity})")
    return data


def unpack(data: bytes, into: Path) -> None:
    """Extracts an npm tarball (whose entries sit under package/) into a directory."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = []
        for member in tar.getmembers():
            name = member.name.split("/", 1)[1] if "/" in member.name else ""
            if not name or name.startswith("/") or ".." in Path(name).parts:
                continue
            member.name = name
            members.append(member)
        tar.extractall(into, members=members)  # noqa: S202 -- names checked above


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dest", type=Path, default=Path(".tools/node"), help="install directory")
    args = parser.parse_args()
    if sys.platform != "linux" or platform.machine() not in ARCHES:
        print(f"fetch_node: no pinned Node.js build for {sys.platform}/{platform.machine()}", file=sys.stderr)
        return 1
    arch = ARCHES[platform.machine()]
    registry = os.environ.get("npm_config_registry", "https://registry.npmjs.org").rstrip("/")
    dest: Path = args.dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".node-", dir=dest.parent))
    try:
        unpack(fetch(registry, f"node-linux-{arch}", NODE_VERSION, NODE_INTEGRITY[arch]), tmp)
        npm_dir = tmp / "lib" / "node_modules" / "npm"
        npm_dir.mkdir(parents=True)
        unpack(fetch(registry, "npm", NPM_VERSION, NPM_INTEGRITY), npm_dir)
        for tool in ("npm", "npx"):
            (tmp / "bin" / tool).symlink_to(f"../lib/node_modules/npm/bin/{tool}-cli.js")
        (tmp / "bin" / "node").chmod(0o755)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    except OSError as exc:
        print(f"fetch_node: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"fetch_node: node {NODE_VERSION} and npm {NPM_VERSION} from {registry} in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
