"""The import graph keeps the architecture honest (ARCHITECTURE C7, C8).

leaves ← store ← realm ← policy ← delivery ← protocols; only ``service``, ``twistd`` and
``cli`` sit on top, and nothing below imports them.  Protocol code never imports the
database or hashing libraries: it reaches them only through the store's thread pool and
the portal.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "mailstack"
LAYERS = {"store": 1, "realm": 2, "policy": 3, "delivery": 4, "protocols": 5,
          "service": 6, "twistd": 7, "cli": 7, "__main__": 8}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        yield name.removesuffix(".__init__"), path


def imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


@pytest.mark.parametrize("name, path", list(modules()), ids=lambda v: str(v))
def test_module_imports_only_from_its_layer_or_below(name, path):
    for imported in imports(path):
        if imported.startswith("mailstack.") and imported.split(".")[1] in LAYERS | {"": 0}:
            assert layer(imported) <= layer(name), f"{name} imports {imported}"
        if name.startswith("mailstack.protocols"):
            assert not imported.startswith(("sqlalchemy", "passlib")), f"{name} imports {imported}"
