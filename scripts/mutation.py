"""Mutation run over the *tables* of src/collabdesk/domain: what mutmut 3 leaves alone.

mutmut 3 mutates code inside functions only. The rulebook, though, lives largely in
module- and class-level statements: the transition table, TERMINAL_STATES, the role sets,
REPLY_REQUIREMENTS, AMOUNT_REQUIRED, the Policy defaults, enum values, patterns. This
script mutates exactly those statements (never a function body: that is mutmut's part),
one change at a time, and runs the unit tests that import the mutated module against it.

Operators: drop one element of a set, list or tuple; drop one dict entry; drop one keyword
argument of a call; int n -> n+1; flip a bool; wrap a string or bytes in "XX"; swap an
arithmetic, comparison or boolean operator.

Each mutant runs in a forked child of a process that has already imported pytest and the
third-party libraries, with an import hook that serves the mutated source for its module:
first against the pinned test modules (PINNED, quick to collect), then, if it survives
them, against every unit test file that imports its module; pytest stops at the first
failing test (-x). The randomised state-machine test is left
out (as in the mutmut configuration): its kills are not repeatable and it takes ~30 s.

    .venv/bin/python scripts/mutation.py            # run everything, print survivors
    .venv/bin/python scripts/mutation.py --list     # list the mutants, run nothing
    .venv/bin/python scripts/mutation.py --again    # rerun what the last run left alive
    .venv/bin/python scripts/mutation.py --only states.py --jobs 1
    .venv/bin/python scripts/mutation.py --show 'states.py:29:...'   # the diff of one
"""

# ruff: noqa: T201 - a command-line tool: it prints its report
from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import importlib.abc
import importlib.machinery
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ROOT / "src" / "collabdesk" / "domain"
UNIT = ROOT / "tests" / "unit"
LEFT_OUT = "tests/unit/test_state_machine.py::test_random_histories_keep_the_rules"
# The tests that state the rulebook with literal values: tried first, as they kill most.
PINNED = frozenset({
    "test_rules_pinned.py", "test_audit_events.py", "test_refusals.py", "test_bounds.py",
    "test_evidence_pinned.py", "test_metrics_violations_pinned.py", "test_value_objects.py",
    "test_metric_rollups_pinned.py",
})

# Mutants that change no behaviour, with the reason (id -> why). Excluded from the score.
EQUIVALENT: dict[str, str] = {
    "evidence.py:21:18-28 drop element int":
        "ReadAt is a type alias: no code reads its parameters at run time",
    **{f"metrics.py:{where} drop element {kind}":
       "DayKey and MinuteKey are type aliases: no code reads their parameters at run time"
       for where, kinds in (("155:15-24", ("str", "date")),
                            ("156:18-32", ("str", "date", "int")))
       for kind in kinds},
    "evidence.py:74:18-19 0 -> 1":
        "bitrate index 0 (free format) is refused before the table is read",
    "evidence.py:75:18-19 0 -> 1":
        "bitrate index 0 (free format) is refused before the table is read",
    # A sample rate only serves the frame length, and one more hertz gives the same
    # whole-byte length at every Layer III bitrate.
    "evidence.py:76:21-26 44100 -> 44101": "the same frame length at every bitrate",
    "evidence.py:76:47-52 22050 -> 22051": "the same frame length at every bitrate",
    "evidence.py:76:73-78 11025 -> 11026": "the same frame length at every bitrate",
}


@dataclass(frozen=True)
class Mutant:
    id: str  # "<file>:<line>:<col>-<end col> <what>", stable while the line stays put
    module: str  # collabdesk.domain.<name>
    path: Path
    source: str  # the whole mutated module


# ---- generating mutants ----------------------------------------------------------------------

Undo = Callable[[], None]
_OP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.Pow: ast.Mult, ast.BitOr: ast.BitAnd, ast.BitAnd: ast.BitOr,
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.And: ast.Or, ast.Or: ast.And,
}


def _drop(items: list[ast.expr] | list[ast.keyword], i: int) -> Undo:
    removed = items.pop(i)
    return lambda: items.insert(i, removed)  # type: ignore[arg-type]


def _set(node: ast.AST, attr: str, value: object) -> Undo:
    old = getattr(node, attr)
    setattr(node, attr, value)
    return lambda: setattr(node, attr, old)


def _changes(node: ast.AST) -> Iterator[tuple[str, Callable[[], Undo]]]:
    """(what, apply) for every single change to `node` itself; apply returns its undo."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool):
            yield f"{v} -> {not v}", lambda: _set(node, "value", not v)
        elif isinstance(v, int):
            yield f"{v} -> {v + 1}", lambda: _set(node, "value", v + 1)
        elif isinstance(v, str):
            yield f"{v!r} -> 'XX..XX'", lambda: _set(node, "value", f"XX{v}XX")
        elif isinstance(v, bytes):
            yield f"{v!r} -> b'XX..XX'", lambda: _set(node, "value", b"XX" + v + b"XX")
    elif isinstance(node, ast.Set | ast.List | ast.Tuple) and isinstance(
            getattr(node, "ctx", ast.Load()), ast.Load):
        for i, elt in enumerate(node.elts):
            yield (f"drop element {ast.unparse(elt)[:60]}",
                   lambda i=i: _drop(node.elts, i))  # type: ignore[misc]
    elif isinstance(node, ast.Dict):
        for i, key in enumerate(node.keys):
            def drop_entry(i: int = i) -> Undo:
                k, v = node.keys.pop(i), node.values.pop(i)

                def undo() -> None:
                    node.keys.insert(i, k)
                    node.values.insert(i, v)
                return undo
            yield f"drop entry {ast.unparse(key) if key else '**'}"[:80], drop_entry
    elif isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):
            yield (f"drop keyword {kw.arg}={ast.unparse(kw.value)[:40]}",
                   lambda i=i: _drop(node.keywords, i))  # type: ignore[misc]
    elif isinstance(node, ast.BinOp | ast.BoolOp) and type(node.op) in _OP_SWAP:
        new = _OP_SWAP[type(node.op)]
        yield (f"{type(node.op).__name__} -> {new.__name__}",
               lambda: _set(node, "op", new()))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _OP_SWAP:
                new = _OP_SWAP[type(op)]

                def swap(i: int = i, new: type = new) -> Undo:
                    old = node.ops[i]
                    node.ops[i] = new()
                    return lambda: node.ops.__setitem__(i, old)
                yield f"{type(op).__name__} -> {new.__name__}", swap
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop not", lambda: _set(node, "op", ast.UAdd())


def _table_nodes(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every expression node of module- or class-level statements, skipping functions,
    imports, docstrings and annotations."""
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.Import
                      | ast.ImportFrom):
            continue
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # an attribute's docstring
        if isinstance(stmt, ast.ClassDef):
            for deco in stmt.decorator_list:
                yield from ast.walk(deco)
            yield from _table_nodes(stmt.body)
            continue
        parts: list[ast.AST] = []
        if isinstance(stmt, ast.AnnAssign):
            parts = [stmt.value] if stmt.value else []
        elif isinstance(stmt, ast.Assign):
            parts = [stmt.value]
        elif isinstance(stmt, ast.For):
            parts = [stmt.iter, *stmt.body]
        else:
            parts = [stmt]
        for part in parts:
            yield from ast.walk(part)


def mutants_of(path: Path) -> Iterator[Mutant]:
    text = path.read_text("utf-8")
    tree = ast.parse(text)
    original = ast.unparse(tree)
    seen = {original}
    module = f"collabdesk.domain.{path.stem}"
    for node in list(_table_nodes(tree.body)):
        for what, apply in list(_changes(node)):
            undo = apply()
            try:
                source = ast.unparse(tree)
            finally:
                undo()
            if source in seen:
                continue  # the same program as the original or as an earlier mutant
            seen.add(source)
            line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0)
            end = getattr(node, "end_col_offset", 0)
            yield Mutant(f"{path.name}:{line}:{col}-{end} {what}", module, path, source)


# ---- which tests can see a module ------------------------------------------------------------


def _imports(path: Path, package: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def _module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in (ROOT / "src").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path
    for path in (ROOT / "tests").glob("*.py"):
        files[f"tests.{path.stem}"] = path
    for path in UNIT.glob("*.py"):
        files[f"tests.unit.{path.stem}"] = path
    return files


def tests_for(module: str) -> list[Path]:
    """The unit test files whose imports reach `module`, fastest first."""
    files = _module_files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = {m for m in _imports(path, package) if m in files}

    def reaches(start: str) -> bool:
        todo, done = [start], set()
        while todo:
            name = todo.pop()
            if name == module:
                return True
            if name not in done:
                done.add(name)
                todo.extend(graph.get(name, ()))
        return False

    tests = [p for p in sorted(UNIT.glob("test_*.py")) if reaches(f"tests.unit.{p.stem}")]
    slow = {"test_state_machine.py": 2, "test_evidence_types.py": 1, "test_services.py": 1}
    return sorted(tests, key=lambda p: slow.get(p.name, 0))


# ---- running one mutant ----------------------------------------------------------------------


class _Serve(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the mutated source for one module name; every other import is untouched."""

    def __init__(self, mutant: Mutant) -> None:
        self.mutant = mutant

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.mutant.module:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self, origin=str(self.mutant.path))
        spec.has_location = True
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(compile(self.mutant.source, str(self.mutant.path), "exec"), module.__dict__)  # noqa: S102


def _start(mutant: Mutant | None, tests: list[Path]) -> int:
    """Fork a child that runs `tests` (against `mutant`, if any); returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        sys.dont_write_bytecode = True
        if mutant is not None:
            sys.meta_path.insert(0, _Serve(mutant))
        import pytest

        code = pytest.main([*map(str, tests), "-x", "-q", "-p", "no:cacheprovider",
                            "--hypothesis-seed=0", "--deselect", LEFT_OUT,
                            "-W", "ignore::pytest.PytestAssertRewriteWarning"])
        os._exit(int(code))
    except BaseException:
        os._exit(99)


def _preload() -> None:
    """Import what every child needs but no mutant changes, once, before forking."""
    from importlib.metadata import entry_points

    import pytest  # noqa: F401

    for plugin in entry_points(group="pytest11"):
        plugin.load()
    for name in ("hypothesis", "fastapi", "fastapi.testclient", "sqlalchemy", "pydantic",
                 "pydantic_settings", "alembic", "prometheus_client", "httpx", "tqdm"):
        with contextlib.suppress(ImportError):
            __import__(name)
    assert not any(m.startswith("collabdesk") for m in sys.modules), "preloaded collabdesk"


@dataclass
class Result:
    mutant: Mutant
    outcome: str  # killed, survived, timeout, error
    seconds: float


def run(mutants: list[Mutant], jobs: int, timeout: float) -> Iterator[Result]:
    """Each mutant runs first against the pinned tests (small and quick to collect), and only
    if they all pass against every unit test file that imports its module."""
    tests = {module: tests_for(module) for module in {m.module for m in mutants}}
    quick = {module: [p for p in files if p.name in PINNED] for module, files in tests.items()}
    queue: list[tuple[Mutant, int]] = [(m, 1 if quick[m.module] else 2) for m in mutants]
    running: dict[int, tuple[Mutant, int, float]] = {}
    while queue or running:
        while queue and len(running) < jobs:
            mutant, stage = queue.pop(0)
            files = quick[mutant.module] if stage == 1 else tests[mutant.module]
            running[_start(mutant, files)] = (mutant, stage, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.05)
            now = time.monotonic()
            for pid, (mutant, _, began) in list(running.items()):
                if now - began > timeout:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    del running[pid]
                    yield Result(mutant, "timeout", now - began)
            continue
        mutant, stage, began = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        # 1: a test failed; 2-4: the tests could not run (the mutated module or a test
        # module or conftest failed to import, or a plugin hook failed). All detect it.
        outcome = "survived" if code == 0 else "killed" if code in (1, 2, 3, 4) else "error"
        if outcome == "survived" and stage == 1:
            queue.insert(0, (mutant, 2))
            continue
        yield Result(mutant, outcome, time.monotonic() - began)


RESULTS = ROOT / "mutants" / "tables.tsv"  # git-ignored, like mutmut's work directory


def _load_results() -> dict[str, str]:
    if not RESULTS.exists():
        return {}
    rows = (line.split("\t", 1) for line in RESULTS.read_text("utf-8").splitlines() if line)
    return {mutant_id: outcome for outcome, mutant_id in rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", action="append", default=[],
                        help="a file name under domain/ (repeatable)")
    parser.add_argument("--again", action="store_true",
                        help="rerun only the mutants the last run did not kill")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--show", metavar="ID", help="print the diff of one mutant and stop")
    args = parser.parse_args()

    paths = sorted(p for p in DOMAIN.glob("*.py") if not args.only or p.name in args.only)
    mutants = [m for p in paths for m in mutants_of(p)]
    if args.list or args.show:
        for m in mutants:
            if args.list:
                print(m.id)
            elif m.id == args.show:
                before = ast.unparse(ast.parse(m.path.read_text("utf-8"))).splitlines()
                print("\n".join(difflib.unified_diff(before, m.source.splitlines(),
                                                     m.path.name, "mutant", lineterm="")))
        return 0

    outcomes = _load_results() if args.again else {}
    todo = [m for m in mutants if outcomes.get(m.id) != "killed"]
    _preload()
    began = time.monotonic()
    pid = _start(None, sorted(UNIT.glob("test_*.py")))
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        print("the unit tests fail without any mutant: fix them first", file=sys.stderr)
        return 2
    baseline = time.monotonic() - began
    timeout = 10 * baseline + 10
    print(f"{len(mutants)} mutants in {len(paths)} files, {len(todo)} to run; clean run "
          f"{baseline:.1f} s, timeout {timeout:.0f} s, {args.jobs} jobs", flush=True)

    for n, result in enumerate(run(todo, args.jobs, timeout), start=1):
        outcomes[result.mutant.id] = result.outcome
        mark = {"killed": ".", "survived": "S", "timeout": "T", "error": "E"}[result.outcome]
        print(mark, end="\n" if n % 60 == 0 else "", flush=True)
    print()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("".join(f"{outcomes[m.id]}\t{m.id}\n" for m in mutants
                               if m.id in outcomes), "utf-8")

    tally = {k: 0 for k in ("killed", "survived", "timeout", "error", "equivalent")}
    for m in mutants:
        outcome = outcomes[m.id]
        if m.id in EQUIVALENT and outcome != "killed":
            tally["equivalent"] += 1
            continue
        tally[outcome] += 1
        if outcome != "killed":
            print(f"{outcome.upper():9} {m.id}")
        elif m.id in EQUIVALENT:
            print(f"KILLED but listed as equivalent: {m.id}")
    scored = len(mutants) - tally["equivalent"]
    print(f"generated {len(mutants)}, killed {tally['killed']}, survived {tally['survived']}, "
          f"timed out {tally['timeout']}, errors {tally['error']}, equivalent "
          f"{tally['equivalent']}; score {tally['killed']}/{scored} = "
          f"{100 * tally['killed'] / scored if scored else 100:.1f}% "
          f"({time.monotonic() - began:.0f} s)")
    return 0 if tally["killed"] == scored else 1


if __name__ == "__main__":
    sys.exit(main())
