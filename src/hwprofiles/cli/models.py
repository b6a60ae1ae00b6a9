"""``hwprofiles models``: the registered model names (:func:`hwprofiles.models.list_models`),
what each is, and who registered it. Torch is not imported: a builder named as
``"module:function"`` is described from its source file's docstring, not imported."""

from __future__ import annotations

import ast
import importlib.util
import inspect
from typing import Annotated, Any

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.output import cell, console, print_json, table

app = typer.Typer()


@app.command("models")
def models_command(
    pattern: Annotated[
        str, typer.Argument(help="Only names matching this shell pattern (resnet*).", show_default=False)
    ] = "*",
    as_json: opt.Json = False,
) -> None:
    """The model names --model takes (with torchvision:NAME and module:factory), what each is, and its plugin."""
    from hwprofiles.models import list_models, registered_models

    entries = registered_models()
    rows = [
        {"name": name, "description": describe(entries[name].source), "owner": entries[name].owner}
        for name in list_models(pattern)
    ]
    if as_json:
        print_json(rows)
        return
    listed = table("name", "description", "plugin")
    for row in rows:
        listed.add_row(*map(cell, (row["name"], row["description"], row["owner"])))
    console().print(listed)
    typer.echo(
        "Also: torchvision:NAME (any torchvision classification model) and module:factory (a model of your own).",
        err=True,
    )


def describe(builder: Any) -> str:
    """The first line of a builder's docstring, or ``""``; a ``"module:function"`` builder is
    read from its module's source file without importing it (which would import torch)."""
    if not isinstance(builder, str):
        return (inspect.getdoc(builder) or "").strip().split("\n", 1)[0]
    module_name, _, function = builder.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return ""
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (ImportError, ValueError, OSError, SyntaxError):
        return ""  # a description is a courtesy: the name is listed all the same
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == function:
            return (ast.get_docstring(node) or "").strip().split("\n", 1)[0]
    return ""
