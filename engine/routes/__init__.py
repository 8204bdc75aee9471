"""Routes as data: ``routes/*.yaml`` read with positions, validated, linted, turned into runtime routes.

Public API:
- ``load_routes(directory, env=None) -> list[RouteConfig]`` (raises RouteConfigError with every problem)
- ``check_routes(directory, env=None) -> list[ConfigError]``
- ``load_route_file(path, env=None) -> RouteConfig``
- ``RouteConfig.to_route() -> engine.channel.Route``; ``config.source`` configures the listener
  (``source.mllp_limits()``, ``source.ssl_context()``).
"""
from engine.routes.config import Accept, RouteConfig
from engine.routes.errors import ConfigError, RouteConfigError
from engine.routes.loading import check_routes, load_route_file, load_routes, route_files
from engine.routes.source import MllpLimits, MllpSource, MllpTls

__all__ = [
    "Accept",
    "ConfigError",
    "MllpLimits",
    "MllpSource",
    "MllpTls",
    "RouteConfig",
    "RouteConfigError",
    "check_routes",
    "load_route_file",
    "load_routes",
    "route_files",
]
