"""Every third-party module the code imports comes from a package pyproject.toml
declares: the library code's from `dependencies`, the tests' and the benchmarks'
from those or the dev extra. An undeclared import works only while some other
package happens to pull it in."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages() -> tuple[str, ...]:
    """The project's own packages, as pyproject.toml ships them, and its migrations."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        include = tomllib.load(f)["tool"]["setuptools"]["packages"]["find"]["include"]
    return (*(pattern.rstrip("*") for pattern in include), "migrations")


LIBRARY = _packages()
DEV = ("tests", "bench")
FIRST_PARTY = frozenset(LIBRARY + DEV)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], set[str]]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]

    def names(requirements: list[str]) -> set[str]:
        return {
            _normalise(m.group())
            for m in (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r) for r in requirements)
            if m
        }

    return names(project["dependencies"]), names(project["optional-dependencies"]["dev"])


def _imports(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Top-level third-party modules imported under `folders`, each with where."""
    found: dict[str, set[str]] = {}
    paths = sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.partition(".")[0]
                # Scripts (bench/) import the modules beside them.
                beside = (path.parent / f"{top}.py").exists() or (path.parent / top).is_dir()
                if top in sys.stdlib_module_names or top in FIRST_PARTY or beside:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def _undeclared(folders: tuple[str, ...], allowed: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    for module, paths in sorted(_imports(folders).items()):
        providers = {_normalise(d) for d in distributions.get(module, [])}
        if not providers:
            problems.append(f"{module}, which no installed package provides: {sorted(paths)}")
        elif not providers & allowed:
            problems.append(f"{' or '.join(sorted(providers))}: {sorted(paths)}")
    return problems


def test_the_library_imports_only_its_declared_dependencies() -> None:
    runtime, _ = _declared()
    problems = _undeclared(LIBRARY, runtime)
    assert not problems, "add these to [project] dependencies in pyproject.toml:\n" + "\n".join(
        problems
    )


def test_tests_and_benchmarks_import_only_declared_packages() -> None:
    runtime, dev = _declared()
    problems = _undeclared(DEV, runtime | dev)
    assert not problems, "add these to the dev extra in pyproject.toml:\n" + "\n".join(problems)
