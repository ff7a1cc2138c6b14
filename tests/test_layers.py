"""Imports follow the layers (../shared/docs/architecture.md): nothing imports upward, not even
inside a function. benchmarks/ and features/ are the ground floor (each may use the other's small
data types), aggregators/ sits on them, analysis/ on those, experiments/ (the apps) on top, and deepagg's Hydra launchers
(hydra_plugins/deepagg_launchers/) above the app they launch. Hydra and omegaconf are imported by
the apps only."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEVEL = {"benchmarks": 0, "features": 0, "aggregators": 1, "analysis": 2, "experiments": 3,
         "hydra_plugins": 4}   # deepagg's launchers: Hydra plugins that record for the run app


def imports(path: Path) -> set[str]:
    """Top-level packages a module imports, anywhere in it (function bodies included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("package", sorted(LEVEL))
def test_no_module_imports_upward(package):
    for path in sorted((REPO / package).rglob("*.py")):
        above = {p for p in imports(path) & set(LEVEL) if LEVEL[p] > LEVEL[package]}
        assert not above, f"{path.relative_to(REPO)} imports {sorted(above)} (a layer above {package})"


#: the apps layer and above: the only places that may import Hydra or omegaconf
APPS = {p for p, level in LEVEL.items() if level >= LEVEL["experiments"]}


@pytest.mark.parametrize("package", sorted(set(LEVEL) - APPS))
def test_no_hydra_below_the_apps(package):
    """The layers below experiments/ take plain arguments (usable from a notebook)."""
    for path in sorted((REPO / package).rglob("*.py")):
        config = imports(path) & {"hydra", "omegaconf"}
        assert not config, f"{path.relative_to(REPO)} imports {sorted(config)} (only experiments/ may)"


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from experiments.run import main\n    import analysis.tables\n")
    assert imports(f) == {"experiments", "analysis"}
