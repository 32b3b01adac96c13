"""Recipes: the options of `edge-sdk train` in a file (`--config recipe.yaml` or .json), and the
data options of a trained model reused by the commands that take its model directory.

A recipe maps option names (``input-size`` or ``input_size``; the flag without its dashes) to
values. It is turned into command-line words placed before the user's own, then parsed by the
command's own parser: every value goes through the same checks as on the command line, and an
option given on the command line wins over the recipe. `edge-sdk train` stores the options it ran
with in the model directory (config.json, training.recipe); `eval`, `report` and `export` on that
directory take its data and region options from there unless given.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

MAX_RECIPE_BYTES = 1 << 20
# Options that describe the run, not the model: never written into a stored recipe.
NOT_RECORDED = {"config", "out", "overwrite", "no_progress", "threads", "func", "command", "parser", "argv", "nproc",
                "resume", "checkpoint", "checkpoint_every"}
# What `eval`, `report` and `export` take from a model's stored recipe: where its data is.
DATA_OPTIONS = ("data", "layout", "category", "split_seed", "test_fraction", "normal_dir", "abnormal_dir",
                "mask_dir", "regions", "no_regions")
MODEL_DIR_COMMANDS = ("eval", "report", "export")


class RecipeError(ValueError):
    pass


def load_recipe(path: str | os.PathLike) -> dict:
    """The mapping in a .yaml / .yml (PyYAML) or .json recipe file; RecipeError naming the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{p}: {size} bytes; a recipe is at most {MAX_RECIPE_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"--config {p}: cannot read it ({exc})") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml  # the `train` extra installs PyYAML

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RecipeError(f"{p}: not valid YAML ({exc})") from exc
    elif p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{p}: not valid JSON ({exc})") from exc
    else:
        raise RecipeError(f"--config {p}: expected a .yaml, .yml or .json file")
    if not isinstance(data, dict):
        raise RecipeError(f"{p}: expected a mapping of option names to values, got {type(data).__name__}")
    return data


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """dest -> action of the parser's optional arguments."""
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}


def recipe_words(recipe: dict, parser: argparse.ArgumentParser, source: str, *, only=None) -> list[str]:
    """Command-line words for ``recipe`` under ``parser``; RecipeError for a name the command does
    not have (unless ``only`` limits the names taken) or a value of the wrong kind."""
    actions = _actions(parser)
    words: list[str] = []
    for key, value in recipe.items():
        dest = str(key).lstrip("-").replace("-", "_")
        if only is not None and dest not in only:
            continue
        if dest == "config" or dest not in actions:
            raise RecipeError(f"{source}: {key!r} is not an option of `edge-sdk {parser.prog.split()[-1]}`")
        action = actions[dest]
        flag = action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):
            if not isinstance(value, bool):
                raise RecipeError(f"{source}: {key!r} expects true or false, got {value!r}")
            words += [flag] if value else []
        elif value is None:
            continue
        elif isinstance(value, (list, tuple)):
            words += [flag, ",".join(str(v) for v in value)]
        elif isinstance(value, (dict, bool)):
            raise RecipeError(f"{source}: {key!r} expects a value, got {value!r}")
        else:
            words += [flag, str(value)]
    return words


def recorded(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The options a run used, as a recipe (what `train` stores in the model directory)."""
    out = {}
    for dest, action in _actions(parser).items():
        if dest in NOT_RECORDED or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        if isinstance(action, argparse._StoreTrueAction) and not value:
            continue
        if value is not None:
            out[dest.replace("_", "-")] = value
    return out


def stored_recipe(model_dir: str | os.PathLike) -> dict | None:
    """The recipe `train` stored in a model directory's config.json, or None."""
    path = Path(model_dir) / "config.json"
    try:
        if path.stat().st_size > 64 * MAX_RECIPE_BYTES:
            return None
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not a model directory: the command itself says so
    recipe = (config.get("training") or {}).get("recipe") if isinstance(config, dict) else None
    return recipe if isinstance(recipe, dict) else None


def expand(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``argv`` with the recipe's words inserted after the command name: `train --config FILE`, or
    the stored data options of the model directory of `eval`, `report` and `export`."""
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if sub is None or not argv or argv[0] not in sub.choices:
        return argv
    command, rest = argv[0], argv[1:]
    cmd_parser = sub.choices[command]
    if command == "train":
        path = _option_value(rest, "--config")
        if path is None:
            return argv
        return [command, *recipe_words(load_recipe(path), cmd_parser, str(path)), *rest]
    if command in MODEL_DIR_COMMANDS:
        model_dir = _first_positional(rest, cmd_parser)
        recipe = stored_recipe(model_dir) if model_dir else None
        if recipe:
            words = recipe_words(recipe, cmd_parser, f"{model_dir}/config.json (training.recipe)",
                                 only=set(DATA_OPTIONS) & set(_actions(cmd_parser)))
            return [command, *words, *rest]
    return argv


def _option_value(words: list[str], flag: str) -> str | None:
    for i, w in enumerate(words):
        if w == flag and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(flag + "="):
            return w[len(flag) + 1:]
    return None


def _first_positional(words: list[str], parser: argparse.ArgumentParser) -> str | None:
    """The first positional argument of ``words`` under ``parser`` (options and their values
    skipped)."""
    takes_value = {s for a in parser._actions if a.option_strings and a.nargs != 0 for s in a.option_strings}
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        if w.startswith("-"):
            skip = w in takes_value
            continue
        return w
    return None
