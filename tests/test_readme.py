"""The README stays true: CI runs its test command, and its results table matches the files."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    marker = next(i for i, line in enumerate(lines) if "README's test command" in line)
    command = lines[marker + 1].strip()
    assert command.startswith("pip install") and "pytest" in command
    assert f"```bash\n{command}\n```" in README


def test_readme_main_job_command():
    assert "```bash\npip install -e \".[plots]\" && jaxpde run\n```" in README


def test_results_table_is_current():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    assert report.readme_with_table(README) == README, "run `python benchmarks/report.py --write`"


def test_readme_python_examples_run(tmp_path, monkeypatch):
    """Every ```python block runs, in order, in one namespace (the dataset example, which
    generates FNO-size data, is exercised by tests/data instead)."""
    monkeypatch.chdir(tmp_path)
    namespace = {}
    blocks = README.split("```python\n")[1:]
    assert len(blocks) >= 3
    for block in blocks:
        code = block.split("```", 1)[0]
        if "load_dataset" in code:
            continue
        exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].step == 2000
    assert namespace["pressure"].shape == (85, 85)
