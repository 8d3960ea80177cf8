"""A virtual environment without jaxpde that borrows every other package from this one.

Used to test installs (non-editable, Colab layout) without downloads: this environment's
site-packages goes on the new one's path as a plain entry, so its ``.pth`` files — and with
them the editable jaxpde — are not processed there, and pip builds without build isolation.
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def venv_without_jaxpde(folder: Path) -> tuple[Path, dict]:
    """Create it in `folder`; returns its python and the environment variables to run it with."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JAXPDE_EXPERIMENTS")}
    env.update(PIP_NO_BUILD_ISOLATION="0", PIP_NO_DEPS="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PATH=f"{folder / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    return python, env
