"""The notebooks' first cell installs jaxpde in the Colab layout, where it would otherwise be shadowed.

On Colab the source sits in ``/content/jaxpde`` and the working folder is ``/content``, so the
repository folder is on the path as an empty namespace package named ``jaxpde``. The test
rebuilds that layout — a fresh clone inside a parent folder, run from the parent, in a virtual
environment without jaxpde (it borrows the other dependencies from this one) — and runs the
quickstart notebook's code there.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .isolated_env import venv_without_jaxpde

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def _notebook_code(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone the repository")
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to clone")
def test_quickstart_runs_from_the_parent_folder_of_a_fresh_clone(tmp_path):
    parent = tmp_path / "content"
    parent.mkdir()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(parent / "jaxpde")], check=True, timeout=120)

    venv = tmp_path / "venv"
    python, env = venv_without_jaxpde(venv)
    env.update(JAXPDE_SOURCE=str(parent / "jaxpde"), JAXPDE_NOTEBOOK_SMALL="1", MPLBACKEND="Agg")

    shadowed = subprocess.run([python, "-c", "import jaxpde; print(jaxpde.__file__)"], cwd=parent, env=env,
                              capture_output=True, text=True, timeout=120)
    assert shadowed.stdout.strip() == "None", "the layout should shadow jaxpde as a namespace package"

    done = subprocess.run([python, "-c", _notebook_code(NOTEBOOK)], cwd=parent, env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    where = subprocess.run([python, "-c", "import jaxpde; print(jaxpde.__file__)"], cwd=parent, env=env,
                           capture_output=True, text=True, timeout=120)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr


def test_every_notebook_installs_jaxpde_as_the_quickstart_does():
    # The layout test above runs the quickstart only; every other notebook must open with the
    # same install code, or it breaks on Colab where the quickstart works.
    def install_block(path):
        first = next(cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code")
        source = "".join(first["source"])
        end = source.find("importlib.invalidate_caches()")
        assert end >= 0, f"{path.name}: the first code cell does not install jaxpde like the quickstart"
        return source[:end]

    expected = install_block(NOTEBOOK)
    for path in sorted(NOTEBOOK.parent.glob("*.ipynb")):
        assert install_block(path) == expected, path.name
