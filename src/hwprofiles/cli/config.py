"""Config files of the experiment commands: ``--config run.yaml`` gives option values,
flags on the command line override them, and ``--print-config`` writes the values a
command would run with as a file that ``--config`` reads back.

A config file is a YAML mapping from option names (``batch-size`` or ``batch_size``, without
the dashes in front) to values; a repeatable option or an argument that takes several values
takes a list. The values become the command's defaults (click's ``default_map``), so one
value has one meaning whether it comes from the file or the command line, and the same
checks (types, ranges, choices) apply. Precedence: the command line, then an environment
variable an option reads (``HWPROFILES_STORAGE``), then the file, then the built-in default;
a flag the file sets is switched off by its ``--no-`` form. Paths in the file are read from
the working directory, as on the command line.

Nothing here imports torch.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path, PurePath
from typing import Annotated, Any, TypeVar, cast

import typer

from hwprofiles.errors import ConfigFileError
from hwprofiles.named_registry import did_you_mean
from hwprofiles.untrusted import printable, read_yaml_file

KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY

# Parameters a config file never sets: the file itself, --print-config, --help.
NOT_CONFIGURABLE = frozenset({"config", "print_config", "help"})

Command = TypeVar("Command", bound=Callable[..., Any])


def option_key(param: Any) -> str:
    """The key of ``param`` in a config file: its long option name without the dashes
    (``batch-size``), or the name of an argument (``checkpoints``)."""
    long_names = [name for name in getattr(param, "opts", ()) if name.startswith("--")]
    return long_names[0][2:] if long_names else str(param.name).replace("_", "-")


def command_name(ctx: Any) -> str:
    """``hwprofiles train``: the command of ``ctx`` as a user types it."""
    return " ".join(["hwprofiles", *ctx.command_path.split()[1:]])


def _configurable_params(ctx: Any) -> dict[str, Any]:
    return {option_key(p): p for p in ctx.command.params if p.name not in NOT_CONFIGURABLE}


def parse_config(ctx: Any, source: str, data: Any) -> dict[str, Any]:
    """The option values of a config file's ``data`` for the command of ``ctx``, by parameter
    name (what ``default_map`` takes), each checked as the command line checks it.

    Raises:
        ConfigFileError: a key that names no option of the command (with close matches), a
            key given twice, or a value of the wrong type; the message names ``source`` and the key.
    """
    command = command_name(ctx)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigFileError(
            f"{source}: a config file is a mapping of option names to values (epochs: 3), not a {type(data).__name__}"
        )
    params = _configurable_params(ctx)
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for raw_key, value in data.items():
        key = printable(str(raw_key))
        name = key.replace("_", "-")
        param = params.get(name)
        if param is None:
            hint = did_you_mean(name, list(params))
            raise ConfigFileError(
                f"{source}: {key}: {command} has no option --{name}.{hint} Its options are listed by {command} --help."
            )
        if name in seen:
            raise ConfigFileError(f"{source}: {key}: given twice (also as {seen[name]})")
        seen[name] = key
        if value is not None:  # null: the built-in default
            values[param.name] = _checked(ctx, source, key, param, value)
    return values


def _checked(ctx: Any, source: str, key: str, param: Any, value: Any) -> Any:
    """``value`` if ``param`` takes it (type, range, choice), else a :class:`ConfigFileError`."""
    takes_many = bool(getattr(param, "multiple", False)) or param.nargs == -1
    if isinstance(value, list) and not takes_many:
        raise ConfigFileError(f"{source}: {key}: takes one value, not a list")
    items = value if isinstance(value, list) else [value]
    is_flag = bool(getattr(param, "is_flag", False))
    expected = param.display_type(ctx).strip("<>")
    for item in items:
        if isinstance(item, (dict, list)):
            raise ConfigFileError(f"{source}: {key}: expected {expected}, not a {type(item).__name__}")
        if is_flag and not isinstance(item, bool):
            raise ConfigFileError(f"{source}: {key}: expected true or false, not {item!r}")
        if not is_flag and isinstance(item, bool):
            # YAML reads yes/no/on/off as booleans; a number or a name is never one
            raise ConfigFileError(f"{source}: {key}: expected {expected}, not {str(item).lower()}")
    try:
        param.get_runtime_param().coerce(items if takes_many else value, param=param, ctx=ctx)
    except (typer.BadParameter, ValueError, TypeError) as exc:
        message = exc.message if isinstance(exc, typer.BadParameter) else str(exc)
        raise ConfigFileError(f"{source}: {key}: {message}") from None
    return items if takes_many else value


def _read_config(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """``--config``: read the file before any other option, and make its values the defaults."""
    if value is None or ctx.resilient_parsing:
        return value
    source = printable(str(value))
    data = read_yaml_file(value, error=ConfigFileError)
    ctx.default_map = {**(ctx.default_map or {}), **parse_config(ctx, source, data)}
    return value


def _plain(value: Any) -> Any:
    """A value as YAML writes it and ``--config`` reads it back."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_config(ctx: Any, values: Mapping[str, Any]) -> str:
    """``values`` (by parameter name) as the YAML of a config file of the command of ``ctx``."""
    import yaml

    keys = {p.name: option_key(p) for p in ctx.command.params}
    document = {keys[name]: _plain(value) for name, value in values.items() if name not in NOT_CONFIGURABLE}
    header = f"# {command_name(ctx)}: read back with --config FILE; null means the built-in default.\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=False)


ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Take option values from this YAML file (keys: option names); options given here override it.",
        is_eager=True,
        callback=_read_config,
        metavar="FILE",
        dir_okay=False,
        show_default=False,
    ),
]
PrintConfig = Annotated[
    bool,
    typer.Option("--print-config", help="Print the options as a --config file (YAML) and exit without running."),
]


def configurable(command: Command) -> Command:
    """Give a command ``--config FILE`` and ``--print-config`` (put it above ``option_group``)."""
    signature = inspect.signature(command, eval_str=True)
    # typer fills only one parameter annotated typer.Context: share the command's own, if it has one
    own = next((p.name for p in signature.parameters.values() if p.annotation is typer.Context), None)
    context_name = own or "config_context"
    added = [
        *([] if own else [inspect.Parameter("config_context", KEYWORD_ONLY, annotation=typer.Context)]),
        inspect.Parameter("config", KEYWORD_ONLY, default=None, annotation=ConfigFile),
        inspect.Parameter("print_config", KEYWORD_ONLY, default=False, annotation=PrintConfig),
    ]
    names = {p.name for p in added}
    if names & set(signature.parameters):
        raise TypeError(f"{command.__qualname__} already has a parameter named {', '.join(sorted(names))}")
    parameters = [*added, *(p.replace(kind=KEYWORD_ONLY) for p in signature.parameters.values())]
    signature = signature.replace(parameters=parameters)

    @functools.wraps(command)
    def with_config(**kwargs: Any) -> Any:
        ctx = kwargs[context_name] if own else kwargs.pop(context_name)
        kwargs.pop("config")
        if kwargs.pop("print_config"):
            typer.echo(dump_config(ctx, {k: v for k, v in kwargs.items() if k != own}), nl=False)
            return None
        return command(**kwargs)

    with_config.__signature__ = signature  # type: ignore[attr-defined]
    with_config.__annotations__ = {p.name: p.annotation for p in parameters}
    with_config.__annotations__["return"] = signature.return_annotation
    return cast(Command, with_config)
