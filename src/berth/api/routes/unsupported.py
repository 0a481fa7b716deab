"""What berth does not do (Docker's Tier 3): swarm, plugins, checkpoints.

Answers follow moby on a node that is not in a swarm, so clients behave as they do against such a
Docker: cluster reads and writes get 503 "This node is not a swarm manager...", `/swarm/leave` gets
503 "This node is not part of a swarm" (docker-py's network tests call it in every tearDown and
accept 503), the plugin list is empty and a named plugin is not found (`docker inspect` moves on).
"""

from __future__ import annotations

from berth.errors import NotFound, NotImplementedYet, Unavailable
from berth.httpd import Request, Response, Router, json_response

NOT_MANAGER = ('This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
               "node to swarm and try again.")
NOT_IN_SWARM = "This node is not part of a swarm"

_CLUSTER = ("nodes", "services", "tasks", "secrets", "configs")


async def _not_manager(req: Request) -> Response:
    raise Unavailable(NOT_MANAGER)


async def _not_in_swarm(req: Request) -> Response:
    raise Unavailable(NOT_IN_SWARM)


async def _no_swarm_mode(req: Request) -> Response:
    raise NotImplementedYet("swarm mode is not supported by berth")


async def _no_plugins(req: Request) -> Response:
    return json_response([])


async def _no_plugin(req: Request) -> Response:
    raise NotFound(f'plugin "{req.params.get("name", "")}" not found')


async def _no_plugin_ops(req: Request) -> Response:
    raise NotImplementedYet("plugins are not supported by berth")


async def _no_checkpoints(req: Request) -> Response:
    raise NotImplementedYet("checkpoints are not supported by berth")


def register(r: Router) -> None:
    r.add(["GET"], "/swarm", _not_manager)
    r.add("GET", "/swarm/unlockkey", _not_manager)
    r.add("POST", "/swarm/update", _not_manager)
    r.add("POST", "/swarm/unlock", _not_manager)
    r.add("POST", "/swarm/leave", _not_in_swarm)
    r.add("POST", "/swarm/init", _no_swarm_mode)
    r.add("POST", "/swarm/join", _no_swarm_mode)
    for kind in _CLUSTER:
        r.add(["GET", "POST"], f"/{kind}", _not_manager)
        r.add(["GET", "POST", "DELETE"], f"/{kind}/{{rest:.*}}", _not_manager)
    r.add("GET", "/plugins", _no_plugins)
    r.add("GET", "/plugins/privileges", _no_plugin_ops)
    r.add("POST", "/plugins/pull", _no_plugin_ops)
    r.add("POST", "/plugins/create", _no_plugin_ops)
    r.add("GET", "/plugins/{name:.*}/json", _no_plugin)
    r.add("DELETE", "/plugins/{name:.*}", _no_plugin)
    r.add("POST", "/plugins/{name:.*}/{op}", _no_plugin)
    r.add(["GET", "POST"], "/containers/{name:.*}/checkpoints", _no_checkpoints)
    r.add("DELETE", "/containers/{name:.*}/checkpoints/{cp}", _no_checkpoints)
