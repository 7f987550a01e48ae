"""Every network module says what it guards against, and what it does not (ARCHITECTURE C8).

A ``Security:`` line in the module docstring of every module of ``protocols/`` and
``delivery/`` and of ``dns.py`` and ``tls.py``: the reader of code that faces the network
should find, in one place, which attacks it was written against and which are left to
someone else.  A package's ``__init__`` holds no code and is not asked.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "mailstack"
NETWORK = sorted([*PACKAGE.glob("protocols/*.py"), *PACKAGE.glob("delivery/*.py"),
                  PACKAGE / "dns.py", PACKAGE / "tls.py"])
NETWORK = [p for p in NETWORK if p.name != "__init__.py"]

def has_security_line(path: Path) -> bool:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return any(line.startswith("Security:") for line in docstring.splitlines())


@pytest.mark.parametrize("path", NETWORK, ids=[str(p.relative_to(PACKAGE)) for p in NETWORK])
def test_network_module_has_a_security_line(path):
    relative = str(path.relative_to(PACKAGE))
    assert has_security_line(path), f"mailstack/{relative}: no 'Security:' line in its docstring"
