"""Shared test fixtures.

Tests run in float32 by default, like users on accelerators. A test that needs float64 takes the
`x64` fixture, which turns it on for that test alone.

Compilation: most of the default suite's time is XLA compiling many small programs, and most of a
CPU compile is LLVM optimising the generated code, which these tests run once or a few times. The
suite therefore compiles with LLVM's optimisation level 0 (`--xla_backend_optimization_level=0`):
the same HLO, the same IEEE operations, only less optimised machine code. Measured on a jit'd
float32 Darcy CG solve and its gradient (32²): compile 3.0-4.1 s -> 1.2-1.9 s CPU, running
0.002 s -> 0.007 s; tests/pdes/test_elliptic.py 54.5 s -> 42.2 s CPU, no test slower. The flag is
set before jax creates its backend and reaches subprocesses through the environment (tests that
set XLA_FLAGS for a child append to it, so parent and child compile alike). An optimisation level
already in XLA_FLAGS wins. A persistent compilation cache measured slower (74 s on the same file:
writing every entry costs more than the few identical programs it finds).

XLA's CPU fusion emitters (MLIR code generation for fused loops) compile slower than the older
emitters by a further factor of about two: with them off (`--xla_cpu_use_fusion_emitters=false`)
on top of level 0, an FNO's construction took 1.1 s instead of 2.6 s and the README's four
preconditioned CG solves 5.4 s instead of 13.0 s (jaxlib 0.10.2). The flag is XLA's own and may
go in a later release (an unknown flag stops XLA), so it is set for jaxlib 0.10 only.
"""

import os
from importlib.metadata import version


def _jaxlib_version() -> tuple[int, ...]:
    return tuple(int(part) for part in version("jaxlib").split(".")[:3] if part.isdigit())


_OPT_LEVEL = "--xla_backend_optimization_level"
if _OPT_LEVEL not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_OPT_LEVEL}=0".strip()
_FUSION_EMITTERS = "--xla_cpu_use_fusion_emitters"
if _FUSION_EMITTERS not in os.environ["XLA_FLAGS"] and _jaxlib_version()[:2] == (0, 10):
    os.environ["XLA_FLAGS"] += f" {_FUSION_EMITTERS}=false"

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them once, when it starts)
import pytest  # noqa: E402


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# Scheduling: `--dist loadfile` hands whole files to the two workers in collection order, so a
# heavy file collected last runs alone while the other worker idles (on a clean clone the suite's
# last minute was one worker finishing tests/test_tour.py). The known heavy files (CPU seconds
# measured on a clean clone) go first; the rest keep their order. The order is deterministic, as
# xdist requires every worker to collect the same one.
_HEAVY_FILES = {
    "tests/test_tour.py": 64,
    "tests/test_readme.py": 55,
    "tests/reliability/test_training.py": 37,
    "tests/training/test_engine.py": 26,
    "tests/test_colab_layout.py": 17,
}


def pytest_collection_modifyitems(session, config, items):
    root = config.rootpath

    def weight(item):
        try:
            relative = item.path.relative_to(root).as_posix()
        except ValueError:
            return 0
        return _HEAVY_FILES.get(relative, 0)

    items.sort(key=lambda item: -weight(item))  # stable: ties keep the collection order


@pytest.fixture
def refused(tmp_path, monkeypatch, capsys):
    """``refused(name, setting)``: ``jaxpde run NAME --set SETTING`` exits with 2 and a message
    naming the setting's key, before any work — the experiment's `run` is replaced by a failure,
    so a setting that has become valid fails the test at once instead of running the experiment.
    (Here, not in tests/cli_experiments: that folder doubles as the CLI tests' experiments folder.)"""
    from jaxpde import cli

    def check(name: str, setting: str) -> None:
        module = cli.load(name)
        monkeypatch.setattr(module, "run", lambda config, out_dir: pytest.fail(f"{name} ran with {setting}: a valid config"))
        code = cli.main(["run", name, "--out", str(tmp_path / "x"), "--set", setting])
        message = capsys.readouterr().err
        assert code == 2, message
        key = setting.split("=")[0]
        assert f"`{key}`" in message or f"'{key}'" in message, message

    return check
