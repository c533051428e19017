"""The type stubs (qshm/__init__.pyi) name what the module has, and everything has docs."""

import ast
from pathlib import Path

import qshm

STUB = Path(__file__).resolve().parents[1] / "qshm" / "__init__.pyi"
PROTOCOL_ONLY = {"__buffer__", "__init__"}  # __buffer__: the C-level buffer protocol


def test_stubs_match_the_module():
    tree = ast.parse(STUB.read_text())
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert {c.name for c in classes} >= {"SharedMemory", "LockGuard", "SystemSemaphore",
                                         "MappedSegment"}
    for c in classes:
        runtime = getattr(qshm, c.name)
        for f in c.body:
            if isinstance(f, ast.FunctionDef) and f.name not in PROTOCOL_ONLY:
                assert hasattr(runtime, f.name), f"{c.name}.{f.name} in the stub only"
        stubbed = {f.name for f in c.body if isinstance(f, ast.FunctionDef)}
        for name in dir(runtime):
            if not name.startswith("_"):
                assert name in stubbed, f"{c.name}.{name} missing from the stub"


def test_public_items_have_docstrings():
    for cls in (qshm.SharedMemory, qshm.LockGuard, qshm.SystemSemaphore, qshm.MappedSegment):
        assert cls.__doc__, cls
        for name in dir(cls):
            if not name.startswith("_"):
                assert getattr(cls, name).__doc__, f"{cls.__name__}.{name}"


def test_module_docstring_example_runs():
    import doctest

    failed, attempted = doctest.testmod(qshm, verbose=False)
    assert attempted > 0 and failed == 0
