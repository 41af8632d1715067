"""Fails when a module imports across a layer boundary of docs/architecture.md (every import, at any depth).

    python3 scripts/check_imports.py
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("api_py", "client_py", "server", "tools")
PACKAGES = ("cairn", "cairn_client", "cairn_server", "cairn_tools", "cairn_console")

# (importer prefix, imported prefix): forbidden. A longer importer prefix in ALLOWED lifts a rule for it.
FORBIDDEN = [
    ("cairn.", "cairn_client"), ("cairn.", "cairn_server"), ("cairn.", "cairn_tools"), ("cairn.", "cairn_console"),
    ("cairn_client", "cairn_server"), ("cairn_client", "cairn_tools"), ("cairn_client", "cairn_console"),
    ("cairn_server", "cairn_client"), ("cairn_server", "cairn_tools"), ("cairn_server", "cairn_console"),
    ("cairn_tools", "cairn_server"), ("cairn_console", "cairn_server"),
    ("cairn_tools", "cairn_client._shared"), ("cairn_console", "cairn_client._shared"),
    ("cairn_server.storage.", "cairn_server.storage.tiered"),  # leaves never import their composer
    *((f"cairn_server.storage.", f"cairn_server.{edge}") for edge in ("service", "calls", "convert", "page_tokens")),
    ("cairn_client.graph.runner", "cairn_client.graph.builder"), ("cairn_client.graph.topology", "cairn_client.graph."),
]
ALLOWED = [
    ("cairn_server.cli", "cairn_tools"), ("cairn_server.cli", "cairn_console"),  # the `cairn` command's plugins
    ("cairn_client.graph.topology", "cairn_client.graph.constants"), ("cairn_client.graph.topology",
                                                                     "cairn_client.graph.retry"),
    ("cairn_client.graph.topology", "cairn_client.graph.state"),
]


def module_name(path: Path, source: Path) -> str:
    parts = list(path.relative_to(source).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(parent + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names]
    return found


def matches(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".") or (
        not prefix.endswith(".") and name == prefix)


def main() -> int:
    bad = []
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            module = module_name(path, ROOT / source)
            if not module.startswith(PACKAGES) or "_pb2" in path.name:
                continue
            tree = ast.parse(path.read_text(), str(path))
            for line, name in imports(tree, module, path.name == "__init__.py"):
                for importer, imported in FORBIDDEN:
                    if matches(module, importer) and matches(name, imported) and not any(
                            matches(module, a) and matches(name, b) for a, b in ALLOWED):
                        bad.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {name} "
                                   f"({importer.rstrip('.')} may not import {imported.rstrip('.')})")
    for line in bad:
        print(line, file=sys.stderr)
    print(f"check_imports: {'FAIL, ' + str(len(bad)) + ' imports across a boundary' if bad else 'layers respected'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
