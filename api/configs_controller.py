"""Routes under ``/api/configs``: presets and custom agent configurations."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

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
    async def validate(self, data: JSONBody[dict[str, Any]]) -> dict[str, Any]:
        """200 with the normalised config, or 422 listing every invalid field."""
        return {"valid": True, "config": parse_config(data).to_wire()}

    @post("/custom", status_code=HTTP_201_CREATED, summary="Save a custom configuration")
    async def save_custom(
        self, data: JSONBody[dict[str, Any]], services: ServicesDep
    ) -> dict[str, Any]:
        """Validate and store; 409 when the id is a preset's, 422 when invalid."""
        cfg = parse_config(data)
        await asyncio.to_thread(services.configs.save_custom, cfg)
        return {**cfg.to_wire(), "source": "custom"}

    @delete("/custom/{config_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete")
    async def delete_custom(self, config_id: FromPath[str], services: ServicesDep) -> None:
        """Remove a custom config (403 for a preset, 404 if unknown)."""
        await asyncio.to_thread(services.configs.delete_custom, config_id)
