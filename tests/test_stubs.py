"""The typed stubs of the core (_core.pyi) name exactly what the compiled module exports."""
import ast
import inspect
from pathlib import Path

import onnxplain
from onnxplain import _core

STUB = Path(onnxplain.__file__).with_name("_core.pyi")


def stub_tree():
    return ast.parse(STUB.read_text())


def test_stub_and_marker_ship_with_the_package():
    assert STUB.is_file() and STUB.with_name("py.typed").is_file()


def test_stub_names_match_the_module():
    tree = stub_tree()
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stubbed |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    stubbed = {n for n in stubbed if not n.startswith("__")}
    exported = {n for n in dir(_core) if not n.startswith("__")}
    assert exported - stubbed == set(), "exported but not in _core.pyi"
    cuda_only = set() if _core.cuda_built else {n for n in stubbed if n.startswith("cuda_")} - {"cuda_built",
                                                                                             "cuda_device_count"}
    assert stubbed - exported == cuda_only, "in _core.pyi but not exported"


def test_stub_signatures_match_the_module():
    """Every stubbed function takes the module's keyword names, in order (pybind11 docstrings carry them)."""
    for node in stub_tree().body:
        if isinstance(node, ast.FunctionDef) and hasattr(_core, node.name):
            stub_args = [a.arg for a in node.args.args]
            first_line = getattr(_core, node.name).__doc__.splitlines()[0]
            assert first_line.startswith(f"{node.name}("), first_line
            for name in stub_args:
                assert f"{name}:" in first_line, (node.name, name, first_line)
        elif isinstance(node, ast.ClassDef):
            cls = getattr(_core, node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    assert inspect.isroutine(getattr(cls, item.name)) or isinstance(getattr(cls, item.name), property)
