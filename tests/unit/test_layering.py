"""The import graph keeps the architecture honest (ARCHITECTURE C7, C8).

Which part may import which is a table, not a line of layers (a line would let delivery
import policy and an admin command build the server).  The table lives in
``docs/architecture.md`` ("Layering"), where people read it; this test reads it from
there, so the document and the rule cannot drift.  Protocol code never imports the
database or hashing libraries: it reaches them only through the store's thread pool and
the portal.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "mailstack"
DOC = ROOT / "docs" / "architecture.md"


def _table(name: str) -> list[list[str]]:
    """The rows of the table under ``<!-- layering: NAME ... -->``, as lists of cells."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    marker = [i for i, line in enumerate(lines) if line.startswith(f"<!-- layering: {name} ")]
    assert len(marker) == 1, f"docs/architecture.md has no single '{name}' layering table"
    rows = []
    for line in lines[marker[0] + 3:]:          # after the header and the |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# part -> (its module prefixes, the parts it may import); the part itself always.
PARTS = {row[0]: (_names(row[1]), set(_names(row[2])) | {row[0]}) for row in _table("parts")}
# library -> the parts it may be imported in.
LIBRARIES = {library: set(_names(row[1])) for row in _table("libraries")
             for library in _names(row[0])}
# (importing module, imported module) pairs allowed although their parts' rows forbid them.
EXCEPTIONS = {(row[0].strip("`"), row[1].strip("`")) for row in _table("exceptions")}


def part_of(module: str) -> str | None:
    """The part of ``module`` (dotted, without ``mailstack.``): the longest prefix listed."""
    best, length = None, -1
    for part, (prefixes, _) in PARTS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = part, len(prefix)
    return best


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        name = name.removesuffix("__init__").rstrip(".")
        if name:                      # the package root holds only ``__version__``
            yield name, path


def imports(name: str, path: Path):
    """Every module ``path`` imports, dotted; ``from x import y`` yields x and x.y."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:            # relative: resolved against this module's package
                base = ["mailstack", *package][:len(package) + 2 - node.level]
                module = ".".join(base + ([module] if module else []))
            yield module
            yield from (f"{module}.{a.name}" for a in node.names)


def ours(imported: str) -> str | None:
    """``mailstack.store.db`` -> ``store.db``; None for other packages and the root."""
    if imported.startswith("mailstack."):
        return imported.removeprefix("mailstack.")
    return None


def excepted(name: str, target: str) -> tuple[str, str] | None:
    """The exception that allows ``name`` to import ``target``, if any.  ``from x import y``
    yields both x and x.y, so an exception for x.y covers x too, and the names inside it."""
    for importer, imported in EXCEPTIONS:
        if importer == name and (target == imported or imported.startswith(target + ".")
                                 or target.startswith(imported + ".")):
            return importer, imported
    return None


MODULES = list(modules())


def test_the_table_names_known_parts():
    for part, (prefixes, allowed) in PARTS.items():
        assert prefixes, f"part {part} has no modules"
        assert allowed <= set(PARTS), f"{part} may import unknown parts {allowed - set(PARTS)}"
    for library, parts in LIBRARIES.items():
        assert parts <= set(PARTS), f"{library} is allowed in unknown parts"


def test_the_table_keeps_the_rules_a_line_of_layers_could_not():
    assert "policy" not in PARTS["delivery"][1]       # delivery acts on decisions taken
    assert "service" not in PARTS["cli"][1]           # admin commands never build the server
    assert "protocols" not in PARTS["cli"][1]
    for part, (_, allowed) in PARTS.items():
        if part not in ("service", "entry points"):
            assert not allowed & {"service", "entry points"}, f"{part} may import the wiring"


@pytest.mark.parametrize("name, path", MODULES, ids=[name for name, _ in MODULES])
def test_module_belongs_to_a_part(name, path):
    assert part_of(name) is not None, f"mailstack.{name}: no row of docs/architecture.md names it"


@pytest.mark.parametrize("name, path", MODULES, ids=[name for name, _ in MODULES])
def test_module_imports_only_what_its_part_may(name, path):
    part = part_of(name)
    allowed = PARTS[part][1]
    for imported in imports(name, path):
        target = ours(imported)
        if target is None:
            library = imported.split(".")[0]
            if library in LIBRARIES:
                assert part in LIBRARIES[library], f"mailstack.{name} imports {imported}"
            continue
        if part_of(target) in allowed or excepted(name, target):
            continue
        pytest.fail(f"mailstack.{name} ({part}) imports {imported} ({part_of(target)}): "
                    f"not allowed by its row in docs/architecture.md")


def test_every_exception_is_still_needed():
    used = {excepted(name, ours(i)) for name, path in MODULES for i in imports(name, path)
            if ours(i) is not None}
    assert EXCEPTIONS <= used, f"stale exceptions in docs/architecture.md: {EXCEPTIONS - used}"


@pytest.mark.parametrize("name, path", [(n, p) for n, p in MODULES if n.startswith("protocols")],
                         ids=lambda v: str(v))
def test_protocol_code_never_imports_the_database_or_hashing_libraries(name, path):
    for imported in imports(name, path):
        assert not imported.startswith(("sqlalchemy", "passlib")), f"{name} imports {imported}"
