"""Labels for the models of one report: unique, and derived from what differs.

Two QAT checkpoints at activation scales 1 and 4 are both ``qat``; a table keyed by
that label would keep only one. :func:`unique_labels` names each after what sets it
apart: the configuration fields that differ, else the file name, else the path.

    >>> unique_labels(["qat", "qat", "nit:pcm"], [{"act_scale": 1.0}, {"act_scale": 4.0}, {}], ["a.pt", "b.pt", "c.pt"])
    ['qat[act_scale=1]', 'qat[act_scale=4]', 'nit:pcm']
    >>> unique_labels(["clean", "clean"], [{"seed": 0}, {"seed": 0}], ["runs/a.pt", "runs/b.pt"])
    ['clean[a.pt]', 'clean[b.pt]']
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Fields that say where data came from, not what the model is.
_IGNORED = frozenset({"data_root", "download"})


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def unique_labels(labels: Sequence[str], configs: Sequence[dict[str, Any]], paths: Sequence[str | Path]) -> list[str]:
    """Make ``labels`` unique, appending to each repeated label what tells its models apart."""
    out = list(labels)
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    for label, members in groups.items():
        if len(members) < 2:
            continue
        dicts = [configs[i] for i in members]
        keys = sorted({k for d in dicts for k in d} - _IGNORED)
        differing = [k for k in keys if len({json.dumps(d.get(k), sort_keys=True) for d in dicts}) > 1]
        names = [Path(paths[i]).name for i in members]
        for n, i in enumerate(members):
            if differing:
                suffix = ",".join(f"{k}={_value(configs[i].get(k))}" for k in differing)
            elif len(set(names)) == len(names):
                suffix = names[n]
            else:
                suffix = str(paths[i])
            out[i] = f"{label}[{suffix}]"
    # The same file given twice: number the repeats rather than drop one.
    seen: dict[str, int] = {}
    for i, label in enumerate(out):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            out[i] = f"{label}#{seen[label]}"
    return out


def slug(label: str) -> str:
    """A label as a file-name part: ``nit:pcm[act_scale=4]`` -> ``nit-pcm-act_scale=4``."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "-", label).strip("-")


def relabel(models: Sequence[Any]) -> list[Any]:
    """Give models of one report (objects with ``label``, ``config`` and ``path``, such as
    :class:`hwprofiles.eval.chips.Trained`) unique labels, in place; returns them."""
    labels = unique_labels([m.label for m in models], [m.config.to_dict() for m in models], [m.path for m in models])
    for model, label in zip(models, labels):
        model.label = label
    return list(models)
