"""Turn pydantic validation errors into :class:`SceneError` messages people can act on.

One place formats every scene-file error: it names the file, the key (TOML path), what was
expected, and the fix (with a did-you-mean for misspelt keys).
"""
from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import SceneError, SceneErrors

T = TypeVar("T")


def key_path(loc: Sequence[Any]) -> str:
    """Format a location tuple as a TOML-style key: ``objects[0].shaders[1].type``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _unwrap(tp: Any) -> Any:
    """Strip Annotated/Optional/list wrappers down to the model class (or None)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(tp) if isinstance(a, type) and issubclass(a, BaseModel)]
            return models[0] if models else None
        elif origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        else:
            return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def fields_at(model: type[BaseModel] | None, loc: Sequence[Any]) -> list[str]:
    """Names of the keys a model accepts at ``loc`` (used for did-you-mean)."""
    current = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _unwrap(field.annotation)
    return list(current.model_fields) if current is not None else []


def field_at(model: type[BaseModel] | None, loc: Sequence[Any]):
    """The pydantic FieldInfo of the key at ``loc`` (list indices skipped), or None."""
    current, info = model, None
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None or str(part) not in current.model_fields:
            return info if isinstance(part, str) and not part.isidentifier() else None
        info = current.model_fields[str(part)]
        current = _unwrap(info.annotation)
    return info


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """Closest spelling of ``word`` among ``choices``, or None."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _describe(err: dict[str, Any], model: type[BaseModel] | None) -> tuple[str, str | None, str | None]:
    """(problem, fix, the key an unknown key was most likely meant to be, else None)."""
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = fields_at(model, loc[:-1])
        guess = did_you_mean(name, allowed)
        problem = f"unknown key '{name}'"
        if guess:
            return problem + f" — did you mean '{guess}'?", f"rename '{name}' to '{guess}'", guess
        return problem, "remove it; accepted keys here: " + ", ".join(allowed) if allowed else "remove it", None
    if kind == "missing":
        return "required key is missing", f"add '{loc[-1]}' to this table", None
    given = err.get("input")
    shown = repr(given)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    info = field_at(model, loc)
    description = info.description if info is not None else None
    msg = err["msg"].rstrip(".")
    if msg.startswith("Input should be "):
        wanted = msg.removeprefix("Input should be ")
        if wanted.split(" ")[0] in ("greater", "less"):        # 'greater than 0': a value …
            wanted = "a value " + wanted
        fix = "give " + wanted + (f" — {description}" if description else "")
    else:
        fix = f"give {description}" if description else None
    return f"{msg} (got {shown})", fix, None


def _tagged_member(tp: Any, tag: Any) -> type[BaseModel] | None:
    """The member of the union ``tp`` (Annotated/list wrappers stripped) that a discriminator value
    ``tag`` picks: the model with a Literal field admitting it; None if ``tp`` is no such union."""
    while typing.get_origin(tp) in (typing.Annotated, list, tuple):
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(tp):
        if isinstance(member, type) and issubclass(member, BaseModel) and any(
                typing.get_origin(f.annotation) is typing.Literal and tag in typing.get_args(f.annotation)
                for f in member.model_fields.values()):
            return member
    return None


def _clean_loc(model: type[BaseModel] | None,
               loc: Sequence[Any]) -> tuple[tuple[Any, ...], bool, type[BaseModel] | None, tuple[Any, ...]]:
    """Drop pydantic's union-member tags from ``loc``; say whether a member that no tag picks was
    dropped (the error is the union's); and give the model the last tag picked (a discriminated
    union's member, else ``model``) with the rest of ``loc`` relative to it, where its fields'
    descriptions are found."""
    out: list[Any] = []
    current: Any = model
    annotation: Any = model
    sub_model, sub_loc = model, []
    dropped = False
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            sub_loc.append(part)
            continue
        member = _tagged_member(annotation, part)
        if member is not None:          # a discriminated union's tag: go on in that member
            current = annotation = sub_model = member
            sub_loc = []
            continue
        if current is None or str(part) not in current.model_fields:
            if current is None:
                dropped = True
                continue
            out.append(part)
            sub_loc.append(part)
            current = annotation = None
            continue
        out.append(part)
        sub_loc.append(part)
        annotation = current.model_fields[str(part)].annotation
        current = _unwrap(annotation)
    return tuple(out), dropped, sub_model, tuple(sub_loc)


def validate_model(
    model: type[BaseModel], data: Any, file: str, prefix: Sequence[Any] = ()
) -> Any:
    """Validate ``data`` against ``model``; raise :class:`SceneErrors` listing every problem."""
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        found: list[tuple[tuple, str, SceneError]] = []
        renamed: set[tuple] = set()      # keys an unknown key was most likely meant to be
        seen: set[tuple] = set()
        base = model if isinstance(model, type) else None
        for err in exc.errors():
            loc, is_union, sub_model, sub_loc = _clean_loc(base, err["loc"])
            if loc in seen:
                continue  # one message per key, even when several union members failed
            seen.add(loc)
            if is_union:
                info = field_at(sub_model, sub_loc)
                shown = repr(err.get("input"))[:60]
                problem = f"invalid value (got {shown})"
                fix = f"give {info.description}" if info is not None and info.description else None
            else:
                problem, fix, meant = _describe({**err, "loc": sub_loc}, sub_model)
                if meant:
                    renamed.add(loc[:-1] + (meant,))
            found.append((loc, err["type"], SceneError(file, key_path(tuple(prefix) + loc), problem, fix)))
        # a misspelt required key is one mistake: its 'unknown key … did you mean' error says it,
        # so the same key's 'required key is missing' is not listed as well
        raise SceneErrors([error for loc, kind, error in found if not (kind == "missing" and loc in renamed)]) from None


def read_named_file(scene_file: str, key: str, path: Path, what: str, read: Callable[[Path], T], fix: str,
                    missing_fix: str = "give a path relative to the scene file",
                    errors: tuple[type[BaseException], ...] = (ValueError,)) -> T:
    """``read(path)`` for a file that the scene key ``key`` names.

    Raises SceneError at ``key`` when the file does not exist, or when ``read`` raises one of
    ``errors`` (``what`` names the file in the message, e.g. "impact file"; ``fix`` says how to
    write a good one).
    """
    if not path.is_file():
        raise SceneError(scene_file, key, f"{what} '{path}' does not exist", missing_fix)
    try:
        return read(path)
    except errors as exc:
        raise SceneError(scene_file, key, f"bad {what} '{path}': {exc}", fix) from None
