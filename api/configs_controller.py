"""Routes under ``/api/configs``: presets and custom agent configurations."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from api.limits import check_ceilings
from api.operator import operator_guard
from api.services import ServicesDep
from configs.store import parse_config


class ConfigsController(Controller):
    path = "/api/configs"
    tags = ["configs"]

    @get("/", summary="List agent configurations")
    async def list_configs(self, services: ServicesDep) -> dict[str, Any]:
        """Presets and custom configs, summarised."""
        store = services.configs
        configs = [
            {**c.summary(), "source": "preset" if store.is_preset(c.id) else "custom"}
            for c in await asyncio.to_thread(store.list_configs)
        ]
        return {"configs": configs, "total": len(configs)}

    @get("/{config_id:str}", summary="One agent configuration")
    async def get_config(self, config_id: FromPath[str], services: ServicesDep) -> dict[str, Any]:
        """The full configuration (404 if unknown)."""
        cfg = await asyncio.to_thread(services.configs.get, config_id)
        source = "preset" if services.configs.is_preset(cfg.id) else "custom"
        return {**cfg.to_wire(), "source": source}

    @post("/validate", status_code=HTTP_200_OK, summary="Validate a configuration")
    async def validate(
        self, data: JSONBody[dict[str, Any]], services: ServicesDep
    ) -> dict[str, Any]:
        """200 with the normalised config, or 422 listing every invalid field (or ceiling)."""
        cfg = check_ceilings(parse_config(data), services.ceilings)
        return {"valid": True, "config": cfg.to_wire()}

    @post(
        "/custom",
        status_code=HTTP_201_CREATED,
        summary="Save a custom configuration (operator token)",
        guards=[operator_guard],
    )
    async def save_custom(
        self, data: JSONBody[dict[str, Any]], services: ServicesDep
    ) -> dict[str, Any]:
        """Validate and store; 401 without the operator token, 409 for a preset's id, 422 invalid."""
        cfg = check_ceilings(parse_config(data), services.ceilings)
        await asyncio.to_thread(services.configs.save_custom, cfg)
        return {**cfg.to_wire(), "source": "custom"}

    @delete(
        "/custom/{config_id:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a custom configuration (operator token)",
        guards=[operator_guard],
    )
    async def delete_custom(self, config_id: FromPath[str], services: ServicesDep) -> None:
        """Remove a custom config (401 without the operator token, 403 preset, 404 unknown)."""
        await asyncio.to_thread(services.configs.delete_custom, config_id)
