"""Turn pydantic's validation errors into one operator-readable line per problem."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Every pydantic model reachable from a field annotation (through Optional, list, dict...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that holds the field at ``loc`` (best effort; None when unsure)."""
    model = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            # A discriminated union's tag ('rfc2136') or a dict key: keep looking below.
            continue
        candidates = _models_in(field.annotation)
        if not candidates:
            return None
        picked = candidates[0] if len(candidates) == 1 else _pick(candidates, loc)
        if picked is None:
            return None
        model = picked
    return model


def _pick(candidates: list[type[BaseModel]], loc: Sequence[int | str]) -> type[BaseModel] | None:
    for part in loc:
        for cand in candidates:
            tag = cand.model_fields.get("provider")
            if tag is not None and typing.get_args(tag.annotation) == (part,):
                return cand
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per error: the field's path, what is wrong, the bad value, what is allowed."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden":
            holder = _model_at(root, loc[:-1])
            allowed = f"; allowed: {', '.join(holder.model_fields)}" if holder else ""
            lines.append(f"{_path(loc)}: unknown field{allowed}")
            continue
        if kind == "missing":
            lines.append(f"{_path(loc)}: required field is missing")
            continue
        # Drop pydantic's internal union tags such as 'function-after[...]' from the path.
        loc = [p for p in loc if not (isinstance(p, str) and "[" in p)]
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{_path(loc)}: {msg} (got {_show(err.get('input'))})")
    return lines
