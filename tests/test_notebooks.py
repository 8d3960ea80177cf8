"""Every notebook runs top to bottom at its small size (JAXPDE_NOTEBOOK_SMALL=1)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
# The family notebooks compile training loops (about 50 s each on 2 cores), the classical-numerics
# one solvers at several sizes (38 s): run with -m slow, to keep the default suite within its 10
# minutes. The quickstart (15 s) is there too: its code runs in the default set, from a fresh
# clone in the Colab layout, in tests/test_colab_layout.py.
SLOW_NOTEBOOKS = {"classical_numerics", "preconditioners", "samplers", "implicit", "neural_operators", "pinns",
                  "quickstart"}
NOTEBOOKS = [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW_NOTEBOOKS else p for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: getattr(p, "stem", p))
def test_notebook_runs(path, monkeypatch, tmp_path):
    monkeypatch.setenv("JAXPDE_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()


def test_there_are_notebooks():
    assert NOTEBOOKS
