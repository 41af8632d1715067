"""The public Python API documents its arguments, results and errors, and `make docs` builds a reference from it.

The Go, TypeScript and Java references are built by scripts/test_all.sh's last step (scripts/build_docs.sh with
every toolchain it has); here the Python one, which needs nothing beyond the dev dependencies.
"""

from __future__ import annotations

import inspect
import os
import subprocess
from pathlib import Path

import pytest

from cairn_client import CheckpointClient
from cairn_client.aio import AsyncCheckpointClient
from cairn_client.langgraph import CairnSaver

ROOT = Path(__file__).resolve().parent.parent

# Methods that make no call, so there is nothing for a Raises section to list (closing a channel does not fail;
# the saver's lease bookkeeping and version numbers are local).
NO_RAISES = {"close", "aclose", "hold_lease", "release_lease", "get_next_version"}


def public_methods(cls: type) -> list[tuple[str, object]]:
    """The public methods a class defines itself (the saver's inherited LangGraph helpers are LangGraph's)."""
    return [(name, fn) for name, fn in vars(cls).items()
            if not name.startswith("_") and inspect.isfunction(fn)] + [("__init__", vars(cls)["__init__"])]


@pytest.mark.parametrize("cls", [CheckpointClient, AsyncCheckpointClient, CairnSaver], ids=lambda c: c.__name__)
def test_every_public_method_has_args_returns_and_raises(cls: type) -> None:
    missing = []
    for name, fn in public_methods(cls):
        doc = inspect.getdoc(fn) or ""
        if name == "__init__":
            doc += "\n" + (inspect.getdoc(cls) or "")  # the constructor's arguments may sit on the class
        sig = inspect.signature(fn)  # type: ignore[arg-type]
        params = [p for p in sig.parameters if p not in ("self", "cls")]
        sections = []
        if params and "Args:" not in doc:
            sections.append("Args")
        if sig.return_annotation not in ("None", None) and not any(s in doc for s in ("Returns:", "Yields:")):
            sections.append("Returns")
        if name not in NO_RAISES and name != "__init__" and "Raises:" not in doc:
            sections.append("Raises")
        if name == "__init__" and cls is CairnSaver and "Raises:" not in doc:
            sections.append("Raises")  # it refuses a missing target and an unknown on_corrupt_head
        if sections:
            missing.append(f"{cls.__name__}.{name}: {', '.join(sections)}")
    assert not missing, "docstrings without their sections:\n" + "\n".join(missing)


def test_make_docs_builds_the_python_reference(tmp_path: Path) -> None:
    """scripts/build_docs.sh python (what `make docs` runs for Python) renders the docstrings' sections."""
    env = {**os.environ, "DOCS_OUT": str(tmp_path)}
    done = subprocess.run(["bash", "scripts/build_docs.sh", "python"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "python" / "cairn_client.html").read_text()
    assert "CheckpointClient" in page and "AsyncCheckpointClient" in page
    save = page[page.index('id="CheckpointClient.save"'):]
    for section in ("Arguments:", "Returns:", "Raises:"):  # pdoc's headings for Google-style sections
        assert section in save[:20_000], section
    assert (tmp_path / "python" / "cairn_client" / "langgraph.html").exists()
    assert 'href="python/index.html"' in (tmp_path / "index.html").read_text()
