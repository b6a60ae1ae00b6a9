"""Reading files that come from others: YAML within fixed limits, names made printable.

Profiles and archives are shared between labs, so every file is read as if it were
hostile. YAML is parsed with PyYAML's safe loader (no Python object is ever built
from a tag), and, while the document is composed and *before* anything walks it,
these limits are enforced:

==========================  ==========  ==================================================
limit                       default     what it stops
==========================  ==========  ==================================================
``MAX_YAML_BYTES``          1 MiB       a huge file read whole into memory
``MAX_YAML_DEPTH``          64          a deeply nested document overflowing the stack
``MAX_YAML_ALIASES``        1,000       a document made of ``*alias`` references
``MAX_YAML_NODES``          100,000     aliases nested to expand into billions of values
                                        ("billion laughs"), counted as if expanded
``MAX_YAML_SCALAR_CHARS``   65,536      one string or number of absurd length
==========================  ==========  ==================================================

A profile file is a few kB, about 100 values, 5 levels deep and uses no alias, so
no real file comes near them. A file over a limit is refused with its name and the
limit that was hit; see ``docs/security.md``.

    >>> load_yaml("a: &x [1, 2]\\nb: *x", source="lab.yaml")
    {'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwprofiles.errors import YamlError

MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_ALIASES = 1_000
MAX_YAML_NODES = 100_000
MAX_YAML_SCALAR_CHARS = 65_536


@dataclass(frozen=True)
class YamlLimits:
    """The limits :func:`load_yaml` enforces (the module's ``MAX_YAML_*`` by default).

    Attributes:
        max_bytes: the largest document, in bytes (UTF-8).
        max_depth: the deepest nesting of sequences and mappings.
        max_aliases: the most ``*alias`` references in one document.
        max_nodes: the most values (scalars, sequences, mappings) the document may
            hold with every alias expanded.
        max_scalar_chars: the longest single scalar, in characters.
    """

    max_bytes: int = MAX_YAML_BYTES
    max_depth: int = MAX_YAML_DEPTH
    max_aliases: int = MAX_YAML_ALIASES
    max_nodes: int = MAX_YAML_NODES
    max_scalar_chars: int = MAX_YAML_SCALAR_CHARS


DEFAULT_YAML_LIMITS = YamlLimits()


class _LimitHit(yaml.YAMLError):
    def __init__(self, what: str, mark: Any) -> None:
        super().__init__(what)
        self.what = what
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting depth, aliases and expanded size while composing."""

    limits: YamlLimits = DEFAULT_YAML_LIMITS

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        # Expanded size of every composed node, by id: an alias adds the whole size of
        # the node it names, so nested aliases are caught before they are expanded.
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        limits = self.limits
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > limits.max_aliases:
                raise _LimitHit(f"more than {limits.max_aliases} alias references (*name)", event.start_mark)
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise _LimitHit(f"the alias *{event.anchor} refers to a node that contains it", event.start_mark)
            return node
        if isinstance(event, yaml.ScalarEvent) and len(event.value) > limits.max_scalar_chars:
            raise _LimitHit(
                f"a value of {len(event.value)} characters, more than {limits.max_scalar_chars}", event.start_mark
            )
        self._depth += 1
        if self._depth > limits.max_depth:
            raise _LimitHit(f"nesting deeper than {limits.max_depth} levels", event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes[id(child)] for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
        else:
            size = 1
        if size > limits.max_nodes:
            raise _LimitHit(f"more than {limits.max_nodes} values once its aliases are expanded", event.start_mark)
        self._sizes[id(node)] = size
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # 2001-13-01, an int of 5000 digits
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {exc}", node.start_mark
            ) from None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _too_big(source: str, size: int, limits: YamlLimits) -> YamlError:
    return YamlError(
        f"{source}: refusing this file: {size} bytes, more than {limits.max_bytes} "
        "(a profile is a few kB; see docs/security.md)"
    )


def load_yaml(data: str | bytes, source: str = "<yaml>", limits: YamlLimits = DEFAULT_YAML_LIMITS) -> Any:
    """Parse one YAML (or JSON) document with the safe loader, within ``limits``.

    Args:
        data: the document; bytes must be UTF-8.
        source: the file (or ``ARCHIVE:MEMBER``) named in error messages.
        limits: the limits to enforce.

    Returns:
        The plain data: dicts, lists, strings, numbers, booleans, ``None`` (and dates).

    Raises:
        YamlError: not UTF-8, not YAML, or over a limit; the message names ``source``,
            the line and the limit.

    >>> load_yaml("[" * 100 + "]" * 100, source="deep.yaml")
    Traceback (most recent call last):
    ...
    hwprofiles.errors.YamlError: deep.yaml: line 1, column 65: refusing this file: nesting deeper than 64 levels (see docs/security.md)
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise _too_big(source, size, limits)
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(f"{source}: not UTF-8 text: {exc}") from None
    loader = None
    try:
        loader = _BoundedLoader(data)  # refuses control characters as it starts reading
        loader.limits = limits
        return loader.get_single_data()
    except _LimitHit as exc:
        raise YamlError(f"{source}: {_where(exc.mark)}refusing this file: {exc.what} (see docs/security.md)") from None
    except yaml.reader.ReaderError as exc:
        line = data.count("\n", 0, exc.position)
        column = exc.position - (data.rfind("\n", 0, exc.position) + 1)
        raise YamlError(
            f"{source}: line {line + 1}, column {column + 1}: not valid YAML: the character "
            f"#x{exc.character:04x} is not allowed in YAML ({exc.reason})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{source}: {_where(mark)}not valid YAML: {problem}") from None
    except RecursionError:  # a last guard: the depth limit should make this unreachable
        raise YamlError(f"{source}: refusing this file: nested too deeply to read") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml_file(
    path: str | Path, limits: YamlLimits = DEFAULT_YAML_LIMITS, *, error: type[Exception] = YamlError
) -> Any:
    """:func:`load_yaml` of a file (YAML, or JSON, which is YAML), whose size is checked
    before it is read.

    Only regular files are read: a pipe or a device (``/dev/zero``) would never end.

    Args:
        path: the file.
        limits: the limits to enforce.
        error: the exception to raise, with the same message, instead of
            :class:`YamlError` (a caller reading a profile raises ``ProfileError``).

    Raises:
        YamlError: (or ``error``) the file is missing, unreadable, not a regular file,
            too large, or not valid YAML within ``limits``.
    """
    try:
        return _read_yaml_file(Path(path), limits)
    except YamlError as exc:
        if error is YamlError:
            raise
        raise error(str(exc)) from None


def _read_yaml_file(path: Path, limits: YamlLimits) -> Any:
    shown = printable(str(path))
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise YamlError(f"{shown}: not a regular file")
        if info.st_size > limits.max_bytes:
            raise _too_big(shown, info.st_size, limits)
        with open(path, "rb", opener=_no_block) as handle:
            data = handle.read(limits.max_bytes + 1)  # the file may have grown since stat
    except YamlError:
        raise
    except FileNotFoundError:
        raise YamlError(f"{shown}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise YamlError(f"{shown}: cannot be read: {printable(str(exc))}") from None
    return load_yaml(data, source=shown, limits=limits)


def _no_block(path: str, flags: int) -> int:
    # If a pipe took the file's place after the check above, fail instead of waiting.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped, as ``repr`` would write it.

    Names from archives and files reach the terminal through messages; an escape
    sequence in one could rewrite the screen. Printable text (backslashes included)
    comes back unchanged, so applying it twice changes nothing.

    >>> printable("lib/\\x1b[2Jevil.yaml")
    'lib/\\\\x1b[2Jevil.yaml'
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
