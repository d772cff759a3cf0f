"""The base of every published model: frozen, strict about unknown fields, versioned."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A value we produce: immutable, and unknown fields are an error, not silently kept."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
