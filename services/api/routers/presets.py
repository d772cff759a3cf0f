"""``/v1/presets``: server settings of common providers."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.auth import CallerDep
from services.api.presets import PRESETS, Preset, preset_for_address

router = APIRouter(prefix="/v1/presets", tags=["presets"])


@router.get("")
async def list_presets(caller: CallerDep) -> list[Preset]:
    return list(PRESETS.values())


@router.get("/for-address")
async def guess_preset(address: str, caller: CallerDep) -> Preset | None:
    """The preset of the address's provider, or null for any other host."""
    return preset_for_address(address)
