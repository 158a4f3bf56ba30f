"""What every rulebook model shares: the base class and the common field types."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from retainer.rulebook.windows import Window, parse_duration

# Lowercase words joined by single underscores: `__` is reserved for internal columns.
NAME_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Entity = Literal["account", "contact"]
WindowField = Annotated[Window, BeforeValidator(Window.parse)]
DurationField = Annotated[timedelta, BeforeValidator(parse_duration)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              arbitrary_types_allowed=True)


def is_name(text: str) -> bool:
    return re.match(NAME_PATTERN, text) is not None
