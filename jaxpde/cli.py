"""``jaxpde``: list, run and resume experiments.

    jaxpde list                                   the experiments, one line each
    jaxpde run [NAME] [--set key=value ...] [--out DIR] [--record]
    jaxpde resume DIR                             continue an interrupted run in DIR

An experiment is a module ``experiments/NAME.py`` with a frozen dataclass ``Config`` (every
field with a default; ``--set`` overrides them, parsed by the field's type) and a function
``run(config, out_dir) -> dict`` that trains with `jaxpde.training.fit` (checkpoints in
``out_dir``), writes its plots there and returns its results. The CLI writes
``config.json`` before the run and ``results.json`` after it; ``resume`` re-reads
``config.json`` and calls ``run`` again on the same folder, which picks up from the newest
checkpoint. With no NAME, ``run`` runs the tour (`DEFAULT_EXPERIMENT`).

Mistakes on the command line (an unknown experiment or key, a value of the wrong type) exit
with status 2 and a message that lists the valid choices.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time
import types
import typing
from pathlib import Path

DEFAULT_EXPERIMENT = "tour"
USAGE_ERROR = 2


class UsageError(Exception):
    """A mistake on the command line; reported without a traceback, exit status 2."""


def experiments_dir() -> Path:
    """``$JAXPDE_EXPERIMENTS`` if set, else the ``experiments/`` folder of the source checkout."""
    override = os.environ.get("JAXPDE_EXPERIMENTS")
    path = Path(override) if override else Path(__file__).resolve().parent.parent / "experiments"
    if not path.is_dir():
        raise UsageError(
            f"no experiments folder at {path}. Experiments ship with the source checkout: install with "
            "`pip install -e .` from a clone, or point $JAXPDE_EXPERIMENTS at the folder."
        )
    return path


def available() -> dict[str, Path]:
    """Experiment name -> module path."""
    return {p.stem: p for p in sorted(experiments_dir().glob("*.py")) if not p.stem.startswith("_")}


def load(name: str) -> types.ModuleType:
    """Import experiment `name` (under the private package name ``jaxpde_experiments``)."""
    experiments = available()
    if name not in experiments:
        raise UsageError(f"unknown experiment {name!r}; choose one of: {', '.join(experiments)}.")
    module_name = f"jaxpde_experiments.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, experiments[name])
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    for attribute in ("Config", "run"):
        if not hasattr(module, attribute):
            raise UsageError(f"experiment {name!r} ({experiments[name]}) defines no `{attribute}`.")
    return module


def describe(module: types.ModuleType) -> str:
    """The first line of the experiment's docstring."""
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def make_config(config_cls, overrides: list[str] | dict):
    """Build `config_cls` from ``key=value`` strings (or an already-parsed dict)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    values = {}
    items = overrides.items() if isinstance(overrides, dict) else (_split(item) for item in overrides)
    for key, raw in items:
        if key not in fields:
            valid = ", ".join(f"{k} ({_type_name(hints[k])})" for k in fields)
            raise UsageError(f"unknown config key {key!r}; valid keys: {valid}.")
        if isinstance(raw, str):
            values[key] = _parse(raw, hints[key], key)
        else:  # from config.json: JSON has lists where the config has tuples
            values[key] = tuple(raw) if isinstance(raw, list) else raw
    return config_cls(**values)


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise UsageError(f"--set expects key=value, got {item!r}.")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _parse(raw: str, annotation, key: str):
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if str(choice) == raw:
                return choice
        raise UsageError(f"config key {key!r} must be one of {', '.join(map(str, choices))}; got {raw!r}.")
    if annotation is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"config key {key!r} expects a bool (true/false); got {raw!r}.")
    if origin is tuple:
        (element, *_) = typing.get_args(annotation)
        return tuple(_parse(part, element, key) for part in raw.split(",") if part)
    try:
        return annotation(raw)
    except (TypeError, ValueError):
        raise UsageError(f"config key {key!r} expects {_type_name(annotation)}; got {raw!r}.") from None


def _type_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(map(str, typing.get_args(annotation)))
    return getattr(annotation, "__name__", str(annotation))


def run_experiment(name: str, config, out_dir: Path, record: bool = False) -> dict:
    """Run experiment `name` with `config` in `out_dir`, writing config.json and results.json.

    With `record`, the results (with the config and the machine) are also written to
    ``experiments/results/NAME.json``, from which the README's results table is built.
    """
    module = load(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_record = {"experiment": name, "config": dataclasses.asdict(config)}
    (out_dir / "config.json").write_text(json.dumps(run_record, indent=2) + "\n")
    started = time.perf_counter()
    results = module.run(config, out_dir)
    results = {**results, "wall_s": time.perf_counter() - started}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=_jsonable) + "\n")
    if record:
        recorded = {
            "experiment": name,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": _machine(),
            "config": dataclasses.asdict(config),
            **results,
        }
        if "summary" in results:
            recorded["summary"] = [*results["summary"], [f"{name}: whole run", f"{results['wall_s']:.0f} s", "—"]]
        path = experiments_dir() / "results" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(recorded, indent=2, default=_jsonable) + "\n")
    _print_results(name, results, out_dir)
    return results


def _machine() -> dict:
    import platform

    import jax

    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
    }


def _jsonable(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _print_results(name: str, results: dict, out_dir: Path) -> None:
    rows = results.get("table")
    print(f"\n{name}: results in {out_dir}")
    if rows:
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    else:
        for key, value in results.items():
            print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaxpde", description="Run jaxpde experiments.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments")
    run = commands.add_parser("run", help="run an experiment (default: the tour)")
    run.add_argument("name", nargs="?", default=DEFAULT_EXPERIMENT)
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME/TIMESTAMP)")
    run.add_argument("--record", action="store_true", help="also write experiments/results/NAME.json (README table)")
    resume = commands.add_parser("resume", help="resume an interrupted run from its folder")
    resume.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            for name in available():
                print(f"{name:28s} {describe(load(name))}")
            return 0
        if args.command == "run":
            module = load(args.name)
            config = make_config(module.Config, args.overrides)
            out_dir = args.out or Path("runs") / args.name / time.strftime("%Y%m%d-%H%M%S")
            run_experiment(args.name, config, out_dir, record=args.record)
            return 0
        record_path = args.out_dir / "config.json"
        if not record_path.exists():
            raise UsageError(f"{args.out_dir} is not a run folder: it has no config.json.")
        record = json.loads(record_path.read_text())
        module = load(record["experiment"])
        run_experiment(record["experiment"], make_config(module.Config, record["config"]), args.out_dir)
        return 0
    except UsageError as error:
        print(f"jaxpde: error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
