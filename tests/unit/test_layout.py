"""Guards for the package layout (DESIGN §3): mapped folders stay PEP 420 portions, so the
repository's `signal/` folder can never shadow the standard library's `signal` module."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE_FOLDERS = {"edge", "gateway", "signal", "dashboard_api", "contract", "cli", "runtime"}


def _package_dir() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    mapping: dict[str, str] = data["tool"]["setuptools"]["package-dir"]
    packages: list[str] = data["tool"]["setuptools"]["packages"]
    assert set(mapping) <= set(packages), "every mapped folder must be a listed package"
    for extra in set(packages) - set(mapping):
        # Sub-packages (e.g. Alembic migrations) live inside a mapped folder.
        parent = next((p for p in mapping if extra.startswith(p + ".")), None)
        assert parent is not None, f"{extra} is not inside a mapped folder"
        folder = ROOT / mapping[parent] / extra.removeprefix(parent + ".").replace(".", "/")
        assert folder.is_dir(), f"{extra}: {folder} does not exist"
    return mapping


def test_every_code_folder_is_mapped_under_shuxin() -> None:
    mapping = _package_dir()
    assert set(mapping.values()) == CODE_FOLDERS
    for package, folder in mapping.items():
        assert package == f"shuxin.{folder}"
        assert (ROOT / folder).is_dir()


@pytest.mark.parametrize("folder", sorted(CODE_FOLDERS))
def test_mapped_folders_have_no_init(folder: str) -> None:
    assert not (ROOT / folder / "__init__.py").exists(), (
        f"{folder}/__init__.py must not exist (PEP 420 portion; see DESIGN §3)"
    )


def test_no_top_level_shuxin_folder() -> None:
    # A ./shuxin package would shadow the installed namespace from the repo root.
    assert not (ROOT / "shuxin").exists()


def test_stdlib_signal_wins_from_repo_root() -> None:
    code = "import asyncio, signal; signal.getsignal(signal.SIGINT); print(signal.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert str(ROOT) not in out.stdout


@pytest.mark.parametrize("package", sorted(f"shuxin.{f}" for f in CODE_FOLDERS))
def test_component_imports_from_checkout(package: str) -> None:
    module = importlib.import_module(package)
    paths = [Path(p).resolve() for p in module.__path__]
    assert any(p == ROOT / package.split(".")[1] for p in paths) or any(
        (p / "py.typed").exists() for p in paths
    )


@pytest.mark.parametrize("component", ["edge", "gateway", "signal", "dashboard_api", "cli"])
def test_python_m_component_help(component: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", f"shuxin.{component}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_shuxin_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shuxin.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("shuxin 0.")


def test_ruff_bans_bare_component_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import edge\nfrom gateway import x\nimport dashboard_api.y\n", encoding="utf-8")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--select",
            "TID251",
            "--config",
            str(ROOT / "pyproject.toml"),
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stdout.count("TID251") == 3, out.stdout


def test_test_file_names_are_unique() -> None:
    # No test folder has an __init__.py, so pytest imports test files by base name: two files
    # with one name would stop collection (docs/testing.md).
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == [], f"rename one of each: {duplicates}"
