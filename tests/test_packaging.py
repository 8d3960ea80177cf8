"""The package installs as the README says: every subpackage listed, experiments included."""

import subprocess
import tomllib
from pathlib import Path

import pytest

from .isolated_env import venv_without_jaxpde

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "jaxpde").rglob("__init__.py")}
    assert found | {"jaxpde_experiments"} == listed


def _install_elsewhere(tmp_path):
    """A non-editable install into a fresh venv, and a working folder outside the checkout."""
    python, env = venv_without_jaxpde(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT)], check=True, env=env, timeout=300,
                   cwd=tmp_path)
    work = tmp_path / "elsewhere"  # not the checkout: nothing of the source tree is on the path
    work.mkdir()
    return python, env, work


def test_non_editable_install_imports_every_package_and_loads_the_experiments(tmp_path):
    python, env, work = _install_elsewhere(tmp_path)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    assert 'site-packages' in importlib.import_module(name).__file__, name"
    imported = subprocess.run([python, "-c", code, *packages], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr[-3000:]
    listed = subprocess.run(["jaxpde", "list"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.startswith("tour "), listed.stderr
    # The tour's module and Config load from the install: an out-of-range value is refused by name.
    refused = subprocess.run(["jaxpde", "run", "tour", "--out", str(tmp_path / "run"), "--set", "steps=0"], cwd=work,
                             env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "steps" in refused.stderr, refused.stderr[-3000:]


@pytest.mark.slow
def test_non_editable_install_lists_and_runs_the_tour(tmp_path):
    python, env, work = _install_elsewhere(tmp_path)
    listed = subprocess.run(["jaxpde", "list"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and listed.stdout.startswith("tour "), listed.stderr
    small = ["n_train=20", "n_test=10", "steps=30", "batch_size=10", "darcy_points=15", "burgers_points=64",
             f"cache_dir={tmp_path / 'cache'}", "progress=false",
             "preconditioner_steps=5", "sampler_points=64"]
    argv = ["jaxpde", "run", "tour", "--out", str(tmp_path / "run")]
    for item in small:
        argv += ["--set", item]
    ran = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=400)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "site-packages" in subprocess.run([python, "-c", "import jaxpde_experiments; print(jaxpde_experiments.__file__)"],
                                             cwd=work, env=env, capture_output=True, text=True).stdout
    assert (tmp_path / "run" / "results.json").exists()
