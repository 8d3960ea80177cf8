"""``jaxpde``: list, run and resume experiments.

    jaxpde list                                   the experiments, one line each
    jaxpde run [NAME] [--set key=value ...] [--out DIR] [--record]
    jaxpde resume DIR                             continue an interrupted run in DIR

An experiment is a module of the installed package ``jaxpde_experiments`` (the source
folder ``experiments/``; ``$JAXPDE_EXPERIMENTS`` points at another folder) that follows
`jaxpde.experiment.Experiment`: a frozen dataclass ``Config`` (every field with a default;
``--set`` overrides them, parsed by the field's type, validated by its ``__post_init__``) and
``run(config, out_dir) -> dict``, which trains with `jaxpde.training.fit` (checkpoints in
``out_dir``), writes its plots there and returns its results. ``list`` reads each module's
docstring without importing it. The CLI writes ``config.json`` before the run and
``results.json`` after it; ``resume`` re-reads ``config.json`` and calls ``run`` again on the
same folder, which picks up from the newest checkpoint. With no NAME, ``run`` runs the tour
(`DEFAULT_EXPERIMENT`).

A run folder has one writer at a time (a lock), and holds one run: ``run --out DIR`` on a
folder that holds a run with a different config is refused, naming the keys that differ —
except a larger ``steps``, which extends the run.

Mistakes on the command line — an unknown experiment or key, a value of the wrong type or
out of range, an unwritable ``--out``, a folder held by another process or holding another
run — exit with status 2 and a message that says what was expected, before any work is done.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import sys
import time
import types
import typing
from pathlib import Path

from .experiment import EXTENDABLE_KEY, RUN_INDEPENDENT_KEYS

DEFAULT_EXPERIMENT = "tour"
USAGE_ERROR = 2
_PACKAGE = "jaxpde_experiments"


class UsageError(Exception):
    """A mistake on the command line; reported without a traceback, exit status 2."""


def experiments_dir() -> Path:
    """``$JAXPDE_EXPERIMENTS`` if set, else the folder of the installed ``jaxpde_experiments``."""
    override = os.environ.get("JAXPDE_EXPERIMENTS")
    if override:
        path = Path(override)
    else:
        spec = importlib.util.find_spec(_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(
                f"the experiments package `{_PACKAGE}` is not installed; reinstall jaxpde (`pip install .`) "
                "or point $JAXPDE_EXPERIMENTS at a folder of experiment modules."
            )
        path = Path(next(iter(spec.submodule_search_locations)))
    if not path.is_dir():
        raise UsageError(f"no experiments folder at {path} (from $JAXPDE_EXPERIMENTS).")
    return path


def available() -> dict[str, Path]:
    """Experiment name -> module path."""
    return {p.stem: p for p in sorted(experiments_dir().glob("*.py")) if not p.stem.startswith("_")}


def describe(path: Path) -> str:
    """The first line of the experiment's docstring, read without importing the module."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return docstring.strip().splitlines()[0] if docstring else ""


def canonical(name: str) -> str:
    """The module name of experiment `name`: ``precond-darcy`` and ``precond_darcy`` are one."""
    return name.replace("-", "_")


def load(name: str) -> types.ModuleType:
    """Import experiment `name` and check it has the `jaxpde.experiment.Experiment` names."""
    name = canonical(name)
    experiments = available()
    if name not in experiments:
        raise UsageError(f"unknown experiment {name!r}; choose one of: {', '.join(n.replace('_', '-') for n in experiments)}.")
    if os.environ.get("JAXPDE_EXPERIMENTS"):
        # A folder outside the package: load by path under a private name of its own, so it can
        # neither shadow nor be shadowed by the installed experiments.
        module_name = f"jaxpde_user_experiments.{name}"
        module = sys.modules.get(module_name)
        # Reloaded when the variable now names another folder: the cached module is another file.
        if module is None or Path(module.__file__) != Path(experiments[name]):
            spec = importlib.util.spec_from_file_location(module_name, experiments[name])
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    else:
        module = importlib.import_module(f"{_PACKAGE}.{name}")
    for attribute in ("Config", "run"):
        if not hasattr(module, attribute):
            raise UsageError(f"experiment {name!r} ({experiments[name]}) defines no `{attribute}`.")
    return module


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
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as error:  # the Config's own validation (__post_init__)
        raise UsageError(f"invalid config: {error}") from None


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

    The folder is held with `jaxpde.training.run_lock` for the whole run (one writer per run
    folder). A folder that already holds a run is continued only if it is the same run
    (`check_same_run`), or the same run with more steps.

    With `record`, the results (with the config and the machine) are also written to
    ``experiments/results/NAME.json`` of the source checkout, from which the README's results
    table is built — ``NAME_full.json`` for a ``scale=full`` run, so that the published budget's
    record stands beside the CPU budget's instead of replacing it.
    """
    from .training import RunLockedError, RunMismatchError, run_lock

    module = load(name)
    prepare_out_dir(out_dir)
    results_dir = experiments_dir() / "results"
    if record and not os.access(experiments_dir(), os.W_OK):
        raise UsageError(f"--record writes {results_dir}, which is not writable: record from a source checkout.")
    run_record = {"experiment": name, "config": dataclasses.asdict(config)}
    try:
        with run_lock(out_dir):
            check_same_run(out_dir, run_record, module.Config)
            (out_dir / "config.json").write_text(json.dumps(run_record, indent=2) + "\n")
            started = time.perf_counter()
            results = module.run(config, out_dir)
            results = {k: v for k, v in results.items() if not k.startswith("_")}
            results = {**results, "wall_s": time.perf_counter() - started}
            (out_dir / "results.json").write_text(_strict_json(results))
    except (RunLockedError, RunMismatchError) as error:
        raise UsageError(str(error)) from None
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
        results_dir.mkdir(exist_ok=True)
        (results_dir / f"{record_name(name, config)}.json").write_text(_strict_json(recorded))
    _print_results(name, results, out_dir)
    return results


def record_name(name: str, config) -> str:
    """The stem of the results file of a recorded run: ``NAME``, or ``NAME_full`` at ``scale=full``."""
    return f"{name}_full" if getattr(config, "scale", None) == "full" else name


def prepare_out_dir(out_dir: Path) -> None:
    """Create `out_dir` and check that files can be written there, before any work is done."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--out {out_dir} is not a writable folder: {error.strerror or error}.") from None


def check_same_run(out_dir: Path, run_record: dict, config_cls) -> None:
    """Refuse to reuse `out_dir` for a different run than the one its ``config.json`` records.

    Keys in ``RUN_INDEPENDENT_KEYS`` (the experiment's and `jaxpde.experiment`'s) may differ;
    ``steps`` may grow, which extends the run (and is said); any other difference is refused
    with the keys that differ, so the folder's record always describes the run that its
    checkpoints hold.
    """
    path = out_dir / "config.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    if old.get("experiment") != run_record["experiment"]:
        raise UsageError(
            f"{out_dir} holds a run of experiment {old.get('experiment')!r}, not {run_record['experiment']!r}; "
            "choose another --out."
        )
    ignored = {*RUN_INDEPENDENT_KEYS, *getattr(config_cls, "RUN_INDEPENDENT_KEYS", ())}
    before, after = old.get("config", {}), run_record["config"]
    differences = {
        key: (before.get(key), _as_json(after.get(key)))
        for key in sorted(set(before) | set(after))
        if key not in ignored and before.get(key) != _as_json(after.get(key))
    }
    steps = differences.pop(EXTENDABLE_KEY, None)
    if differences or (steps is not None and not _is_extension(*steps)):
        if steps is not None:
            differences[EXTENDABLE_KEY] = steps
        shown = ", ".join(f"{key}: {a!r} -> {b!r}" for key, a, b in ((k, *v) for k, v in differences.items()))
        raise UsageError(
            f"{out_dir} holds a different run ({shown}). Only `{EXTENDABLE_KEY}` may change, and only upwards "
            "(extending the run); choose another --out for a new run."
        )
    if steps is not None:
        print(f"jaxpde: extending the run in {out_dir} from {EXTENDABLE_KEY}={steps[0]} to {steps[1]}.", file=sys.stderr)


def _as_json(value):
    return json.loads(json.dumps(value))


def _is_extension(old, new) -> bool:
    return isinstance(old, int) and isinstance(new, int) and new > old


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


def _strict_json(value) -> str:
    """`value` as standard JSON: a NaN or infinite figure (a classical setting that blew up) is
    written as ``null``, since ``NaN``/``Infinity`` are not JSON and strict readers refuse them."""

    def finite(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {key: finite(v) for key, v in item.items()}
        if isinstance(item, list):
            return [finite(v) for v in item]
        return item

    plain = json.loads(json.dumps(value, default=_jsonable))
    return json.dumps(finite(plain), indent=2, allow_nan=False) + "\n"


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
            experiments = available()  # the main job first, then the rest by name
            ordered = sorted(experiments, key=lambda n: (n != DEFAULT_EXPERIMENT, n))
            for name, path in ((n, experiments[n]) for n in ordered):
                print(f"{name.replace('_', '-'):28s} {describe(path)}")
            return 0
        if args.command == "run":
            args.name = canonical(args.name)
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
