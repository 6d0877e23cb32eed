"""The environment variables a command reads, listed in its --help from the settings classes
themselves (names, defaults, the fields' docstrings), so the help cannot fall behind them."""

from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings
from rich.markup import escape


def environment_help(*kinds: type[BaseSettings]) -> str:
    """The help epilog for a command configured by `kinds` (each variable once)."""
    seen: dict[str, str] = {}
    for kind in kinds:
        prefix = str(kind.model_config.get("env_prefix", ""))
        for name, field in kind.model_fields.items():
            variable = f"{prefix}{name}".upper()
            if variable not in seen:
                seen[variable] = _line(variable, field)
    lines = "\n".join(seen[v] for v in seen)
    return f"[bold]Environment variables[/bold] (default in parentheses):\n{lines}"


def _line(variable: str, field: FieldInfo) -> str:
    about = " ".join((field.description or "").split())
    text = f"  {variable} ({_default(field)})" + (f": {about}" if about else "")
    return escape(text)


def _default(field: FieldInfo) -> str:
    value: Any = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) or "empty"
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return str(value)
