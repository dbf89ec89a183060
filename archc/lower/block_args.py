"""A block's argument declarations: the accepted types and the default of each argument."""

from __future__ import annotations

from typing import Any

from archc import expr

ARG_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,), "any": (object,),
}
REQUIRED = object()
"""The default of an argument that has none."""


def declared_args(decl: dict[str, Any]) -> dict[str, tuple[tuple[type, ...], Any]]:
    """name -> (accepted types, default or REQUIRED)."""
    out: dict[str, tuple[tuple[type, ...], Any]] = {}
    for name, value in decl.items():
        if isinstance(value, dict) and set(value) <= {"type", "default", "doc"} and "type" in value:
            # `k: {type: any, default: 1}`: a default whose type alone would be too narrow
            types = ARG_TYPES.get(str(value["type"]), (object,))
            out[name] = (types, value.get("default", REQUIRED))
        elif isinstance(value, str) and value in ARG_TYPES:
            out[name] = (ARG_TYPES[value], REQUIRED)
        elif isinstance(value, bool):
            out[name] = ((bool,), value)
        elif isinstance(value, float):
            out[name] = ((int, float), value)
        elif expr.is_expression(value):  # `mid: $out // 4`: its type is known once it is evaluated
            out[name] = ((object,), value)
        else:
            out[name] = ((type(value),) if value is not None else (object,), value)
    return out


def accepts(types: tuple[type, ...], value: Any) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types and object not in types)


def type_names(types: tuple[type, ...]) -> str:
    return " or ".join("any" if t is object else t.__name__ for t in types)
