"""Each distribution installs everything in its folder, and each service needs only what it
says it needs: a plain (non-editable) install, as the images do, must not lose a sub-package
that the editable install of the tests would still find."""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "shared": "hookflow_shared",
    "services/gateway": "hookflow_gateway",
    "services/executor": "hookflow_executor",
    "services/config-api": "hookflow_config_api",
    "services/cli": "hookflow_cli",
}


def packages_in_tree(folder: Path, package: str) -> set[str]:
    """Every package of the source tree, as dotted names (folders with an __init__.py)."""
    root = folder / package
    return {
        ".".join(init.parent.relative_to(folder).parts)
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_the_layout_is_the_import_path() -> None:
    for folder, package in DISTRIBUTIONS.items():
        assert (ROOT / folder / package / "__init__.py").is_file(), f"{folder}/{package}"
        assert (ROOT / folder / "pyproject.toml").is_file()


@pytest.mark.parametrize("folder", list(DISTRIBUTIONS))
def test_a_plain_install_gets_every_package_of_the_tree(folder: str, tmp_path: Path) -> None:
    package = DISTRIBUTIONS[folder]
    # Built from a copy: setuptools leaves build/ and *.egg-info beside the sources.
    source = shutil.copytree(
        ROOT / folder, tmp_path / "source", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
            "--no-build-isolation", "--wheel-dir", str(tmp_path / "wheels"), str(source),
        ],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    packaged = {
        name.removesuffix("/__init__.py").replace("/", ".")
        for name in names
        if name.endswith("/__init__.py")
    }
    assert packaged == packages_in_tree(ROOT / folder, package)
    sources = {
        str(path.relative_to(ROOT / folder))
        for path in (ROOT / folder / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sources <= set(names), f"left out of the wheel: {sorted(sources - set(names))}"


def requirements(folder: str) -> list[str]:
    document = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
    return list(document["project"]["dependencies"])


def test_the_gateway_needs_no_expression_language() -> None:
    assert requirements("services/gateway") == ["hookflow-shared"]
    assert "hookflow-shared[language]" in requirements("services/executor")
    assert "hookflow-shared[language]" in requirements("services/config-api")
    # Importing the whole gateway with CEL made unimportable: nothing reaches for it.
    probe = (
        "import sys; sys.modules['cel'] = None\n"
        "import hookflow_gateway.main, hookflow_gateway.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('hookflow_')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    loaded = eval(result.stdout)  # noqa: S307 (our own probe's repr of a list of str)
    assert not [m for m in loaded if m.startswith(("hookflow_executor", "hookflow_config_api"))]
