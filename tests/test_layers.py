"""The package's shape: imports flow one way through the layers, no cycles, small modules, and serving
loads no training code.

python -m pytest tests/test_layers.py

Layers, from the ground up (a module may import its own layer and those below, never one above):

    0    rmcore (the package), rmcore.config, rmcore.atomic, rmcore.figures
    1    rmcore.data, in sub-layers that follow the data:
    1.0    rmcore.data (the package), rmcore.data.records, rmcore.data.identity
    1.1    rmcore.data.formats      raw files -> judgments and rankings
    1.2    rmcore.data.lake         the Delta lake, its schemas, DuckDB, check, migrate
    1.3    rmcore.data.ingest       formats -> lake
    1.4    rmcore.data.pairs        lake -> pairs (load: a label file is ingested first)
    1.5    rmcore.data.quality      lake + pairs -> the data report
    1.6    rmcore.data.suites       benchmark files (RewardBench, RewardBench 2, RM-Bench) -> suite items
    2    rmcore.model, rmcore.sample
    3  rmcore.training, rmcore.evaluation, rmcore.scoring
    4  rmcore.tracking, rmcore.reward_pyfunc
    5  rmcore.cli, flows

Imports inside functions count like any other.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rmcore", "flows")
MAX_LINES = 500

LAYERS: dict[str, float] = {
    "rmcore": 0,
    "rmcore.config": 0,
    "rmcore.atomic": 0,
    "rmcore.figures": 0,
    "rmcore.data": 1.0,
    "rmcore.data.records": 1.0,
    "rmcore.data.identity": 1.0,
    "rmcore.data.formats": 1.1,
    "rmcore.data.lake": 1.2,
    "rmcore.data.ingest": 1.3,
    "rmcore.data.pairs": 1.4,
    "rmcore.data.quality": 1.5,
    "rmcore.data.suites": 1.6,
    "rmcore.model": 2,
    "rmcore.sample": 2,
    "rmcore.training": 3,
    "rmcore.evaluation": 3,
    "rmcore.scoring": 3,
    "rmcore.tracking": 4,
    "rmcore.reward_pyfunc": 4,
    "rmcore.cli": 5,
    "flows": 5,
}
"""Layer of each module or package; a module takes the layer of its longest prefix listed here."""

ONLY_IMPORTED_BY = {
    "prefect": ("flows",),
    "mlflow": ("rmcore.tracking", "rmcore.reward_pyfunc"),
    "peft": ("rmcore.training.lora",),
    "torch.distributed": ("rmcore.training.distributed",),
}
"""Third-party packages and who alone may import them: orchestration only in flows, tracking behind
one module, LoRA and process groups only where training needs them."""

SERVING_MUST_NOT_LOAD = ("rmcore.training", "peft", "prefect")
"""What loading a registered model (the MLflow pyfunc) or `rmcore score` must never import. rmcore's
DDP and FSDP code is in rmcore.training; torch's own FSDP package cannot be on this list, because
transformers imports it with its model classes (transformers.integrations.deepspeed)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    """Every module of rmcore/ and flows/, by dotted name."""
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imported_names(path: Path, known: set[str]) -> set[str]:
    """Dotted names a module imports anywhere in its file (functions included); for
    `from package import module`, the module itself when it is one of `known`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
    return names


def layer(name: str) -> float | None:
    """The layer of a dotted module name, by its longest listed prefix; None for outside modules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    return None


def is_within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def own_module(name: str, known: set[str]) -> str | None:
    """The module of rmcore/ or flows/ an imported dotted name is (or is inside); None for others."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Module -> the modules of rmcore/ and flows/ it imports.

    `import a.b.c` runs the package `a.b` first, but that is not a dependency of the importer: a
    package that imports its members (rmcore.data.formats) is not in a cycle with each of them.
    """
    modules = sources()
    known = set(modules)
    return {
        name: {
            m
            for imported in imported_names(path, known)
            if (m := own_module(imported, known)) not in (None, name)
        }
        for name, path in modules.items()
    }


def test_every_module_has_a_layer() -> None:
    unplaced = [name for name in sources() if layer(name) is None]
    assert not unplaced, f"modules outside every layer (add them to LAYERS): {unplaced}"


def test_imports_never_point_up_a_layer(graph: dict[str, set[str]]) -> None:
    upward = [
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        for source, targets in graph.items()
        for target in sorted(targets)
        if (layer(target) or 0) > (layer(source) or 0)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_no_module_is_over_500_lines() -> None:
    long = {
        name: n for name, path in sources().items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


@pytest.mark.parametrize(("package", "allowed"), list(ONLY_IMPORTED_BY.items()))
def test_some_packages_are_imported_in_one_place(package: str, allowed: tuple[str, ...]) -> None:
    modules = sources()
    offenders = [
        name
        for name, path in modules.items()
        if not any(is_within(name, owner) for owner in allowed)
        and any(is_within(imported, package) for imported in imported_names(path, set(modules)))
    ]
    assert not offenders, f"{package} imported outside {allowed}: {offenders}"


@pytest.mark.parametrize("entry", ["rmcore.reward_pyfunc", "rmcore.scoring"])
def test_serving_a_model_loads_no_training_code(entry: str) -> None:
    # given a fresh interpreter / when it imports what serves a model (the pyfunc, `rmcore score`)
    probe = f"import sys, {entry}; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = done.stdout.split()

    # then no training module, peft, FSDP or Prefect was loaded
    assert entry in loaded
    found = [name for name in loaded if any(is_within(name, banned) for banned in SERVING_MUST_NOT_LOAD)]
    assert not found, found
