"""Build the Litestar application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    OpenAPIRenderPlugin,
    RapidocRenderPlugin,
    RedocRenderPlugin,
    ScalarRenderPlugin,
    StoplightRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.response import File
from litestar.static_files import create_static_files_router

from api import errors, supervisor_metrics
from api.agents.approvals import ApprovalsController
from api.agents.controller import AgentsController
from api.browser import BrowserGuard
from api.configs_controller import ConfigsController
from api.files.controller import FilesController
from api.health import health
from api.services import lifespan, provide_services
from api.settings import ApiSettings

# Paths that belong to the API: a miss there is a JSON 404, never the dashboard's index.html.
API_PREFIXES = ("/api/", "/health", "/schema", "/metrics")


def _spa_fallback(web_dir: Path) -> Any:
    """404 handler: unknown dashboard routes get index.html (client-side routing)."""
    index = web_dir / "index.html"

    def handler(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
        path = request.url.path
        if (
            request.method in ("GET", "HEAD")
            and not path.startswith(API_PREFIXES)
            and index.is_file()
        ):
            return File(index, content_disposition_type="inline", media_type="text/html")
        return errors.handle_http_exception(request, exc)

    return handler


def create_app(settings: ApiSettings | None = None) -> Litestar:
    """The API with its routes, error mapping, OpenAPI at ``/schema`` and metrics at ``/metrics``."""
    settings = settings or ApiSettings()
    prometheus = PrometheusConfig(app_name="agc_api", prefix="agc", group_path=True)
    # Under `agcluster up`, /metrics also counts the supervisor's restarts of every process.
    supervisor_metrics.register(settings.state_dir)
    route_handlers: list[Any] = [
        health,
        ConfigsController,
        AgentsController,
        ApprovalsController,
        FilesController,
        PrometheusController,
    ]
    if (settings.web_dir / "index.html").is_file():
        route_handlers.append(
            create_static_files_router(
                path="/",
                directories=[settings.web_dir],
                html_mode=True,
                name="web",
                include_in_schema=False,
            )
        )
    handlers = dict(errors.EXCEPTION_HANDLERS)
    handlers[NotFoundException] = _spa_fallback(settings.web_dir)
    app = Litestar(
        route_handlers=route_handlers,
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        lifespan=[lifespan],
        exception_handlers=handlers,
        middleware=[prometheus.middleware],
        openapi_config=OpenAPIConfig(
            title="AgCluster API",
            version="0.1.0",
            description="Run Claude Agent SDK agents in locked-down containers.",
            path="/schema",
            render_plugins=_openapi_plugins(settings.openapi_viewers),
        ),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    app.state.settings = settings
    # Around everything Litestar does (routing, 404s, the dashboard's files), like its own CORS.
    app.asgi_handler = BrowserGuard(
        app.asgi_handler,
        cors_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
        viewer_paths=("/schema",) if settings.openapi_viewers else (),
    )
    return app


def _openapi_plugins(viewers: bool) -> list[OpenAPIRenderPlugin]:
    """The schema as JSON (also at ``/schema``) and YAML; the CDN-loading viewers on request."""
    plugins: list[OpenAPIRenderPlugin] = [JsonRenderPlugin(), YamlRenderPlugin()]
    if viewers:
        plugins += [
            ScalarRenderPlugin(),
            SwaggerRenderPlugin(),
            RedocRenderPlugin(),
            RapidocRenderPlugin(),
            StoplightRenderPlugin(),
        ]
    return plugins
