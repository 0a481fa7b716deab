"""`berth`: docker's command line. Global flags, then a command looked up in a lazy table so that
a command imports only its own module (start-up time is the CLI's main cost)."""

from __future__ import annotations

import sys

from berth.cli.app import Cli, StatusError
from berth.cli.flags import UsageError

# name -> "module:function" (module under berth.cli.commands), or a group: {sub: "module:function"}
_CONTAINER = {
    "attach": "stream:attach", "commit": "container:commit", "cp": "copy:cp", "create": "run:create",
    "diff": "container:diff", "exec": "stream:exec_", "export": "container:export",
    "inspect": "inspect:container_inspect", "kill": "container:kill", "logs": "stream:logs",
    "ls": "ps:ps", "list": "ps:ps", "ps": "ps:ps", "pause": "container:pause", "port": "container:port",
    "prune": "container:prune", "rename": "container:rename", "restart": "container:restart",
    "rm": "container:rm", "remove": "container:rm", "run": "run:run", "start": "stream:start",
    "stats": "stats:stats", "stop": "container:stop", "top": "container:top", "unpause": "container:unpause",
    "update": "container:update", "wait": "container:wait",
}
_IMAGE = {
    "bootstrap": "image:bootstrap", "history": "image:history", "import": "image:import_",
    "inspect": "inspect:image_inspect", "load": "image:load", "ls": "image:images", "list": "image:images",
    "prune": "image:prune", "pull": "image:pull", "push": "image:push", "rm": "image:rmi", "remove": "image:rmi",
    "save": "image:save", "tag": "image:tag",
}
_SYSTEM = {"df": "system:df", "events": "system:events", "info": "system:info", "prune": "system:prune"}
_REGISTRY = {"serve": "registry:serve"}

COMMANDS: dict[str, str | dict[str, str]] = {
    "attach": "stream:attach", "commit": "container:commit", "cp": "copy:cp", "create": "run:create",
    "diff": "container:diff", "events": "system:events", "exec": "stream:exec_", "export": "container:export",
    "history": "image:history", "images": "image:images", "import": "image:import_", "info": "system:info",
    "inspect": "inspect:inspect", "kill": "container:kill", "load": "image:load", "login": "registry:login",
    "logout": "registry:logout", "logs": "stream:logs", "pause": "container:pause", "port": "container:port",
    "ps": "ps:ps", "pull": "image:pull", "push": "image:push", "rename": "container:rename",
    "restart": "container:restart", "rm": "container:rm", "rmi": "image:rmi", "run": "run:run",
    "save": "image:save", "search": "registry:search", "start": "stream:start", "stats": "stats:stats",
    "stop": "container:stop", "tag": "image:tag", "top": "container:top", "unpause": "container:unpause",
    "update": "container:update", "version": "system:version", "wait": "container:wait",
    "container": _CONTAINER, "image": _IMAGE, "system": _SYSTEM, "registry": _REGISTRY,
}

DESCRIPTIONS = {
    "run": "Create and run a new container from an image", "exec": "Execute a command in a running container",
    "ps": "List containers", "pull": "Download an image from a registry", "push": "Upload an image to a registry",
    "images": "List images", "login": "Authenticate to a registry", "logout": "Log out from a registry",
    "search": "Search a registry for images", "version": "Show the berth version information",
    "info": "Display system-wide information", "container": "Manage containers", "image": "Manage images",
    "system": "Manage berth", "registry": "Run and manage registries",
    "attach": "Attach local standard input, output, and error streams to a running container",
    "commit": "Create a new image from a container's changes",
    "cp": "Copy files/folders between a container and the local filesystem", "create": "Create a new container",
    "diff": "Inspect changes to files or directories on a container's filesystem",
    "events": "Get real time events from the server", "export": "Export a container's filesystem as a tar archive",
    "history": "Show the history of an image",
    "import": "Import the contents from a tarball to create a filesystem image",
    "inspect": "Return low-level information on berth objects", "kill": "Kill one or more running containers",
    "load": "Load an image from a tar archive or STDIN", "logs": "Fetch the logs of a container",
    "pause": "Pause all processes within one or more containers",
    "port": "List port mappings or a specific mapping for the container", "rename": "Rename a container",
    "restart": "Restart one or more containers", "rm": "Remove one or more containers",
    "rmi": "Remove one or more images",
    "save": "Save one or more images to a tar archive (streamed to STDOUT by default)",
    "start": "Start one or more stopped containers",
    "stats": "Display a live stream of container(s) resource usage statistics",
    "stop": "Stop one or more running containers", "tag": "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    "top": "Display the running processes of a container",
    "unpause": "Unpause all processes within one or more containers",
    "update": "Update configuration of one or more containers",
    "wait": "Block until one or more containers stop, then print their exit codes",
}

_COMMON = ["run", "exec", "ps", "pull", "push", "images", "login", "logout", "search", "version", "info"]
_MANAGEMENT = ["container", "image", "registry", "system"]


def _usage(bin_name: str) -> str:
    lines = [f"Usage:  {bin_name} [OPTIONS] COMMAND", "", "A container engine that speaks the Docker Engine API", "",
             "Common Commands:"]
    lines += [f"  {c:<11} {DESCRIPTIONS[c]}" for c in _COMMON]
    lines += ["", "Management Commands:"] + [f"  {c:<11} {DESCRIPTIONS[c]}" for c in _MANAGEMENT]
    lines += ["", "Commands:"]
    lines += [f"  {c:<11} {DESCRIPTIONS.get(c, '')}" for c in sorted(COMMANDS)
              if c not in _COMMON and c not in _MANAGEMENT]
    lines += ["", "Global Options:",
              "      --config string      Location of client config files (default \"~/.docker\")",
              "  -D, --debug              Enable debug mode",
              "  -H, --host list          Daemon socket to connect to",
              "  -l, --log-level string   Set the logging level (\"debug\", \"info\", \"warn\", \"error\", \"fatal\")",
              "      --tls                Use TLS; implied by --tlsverify",
              "      --tlscacert string   Trust certs signed only by this CA",
              "      --tlscert string     Path to TLS certificate file",
              "      --tlskey string      Path to TLS key file",
              "      --tlsverify          Use TLS and verify the remote",
              "  -v, --version            Print version information and quit", "",
              f"Run '{bin_name} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


def _group_usage(bin_name: str, group: str, subs: dict[str, str]) -> str:
    lines = [f"Usage:  {bin_name} {group} COMMAND", "", DESCRIPTIONS.get(group, ""), "", "Commands:"]
    lines += [f"  {s:<11}" for s in sorted(subs)]
    lines += ["", f"Run '{bin_name} {group} COMMAND --help' for more information on a command.", ""]
    return "\n".join(lines)


class GlobalOptions:
    def __init__(self) -> None:
        self.hosts: list[str] = []
        self.config: str | None = None
        self.debug = False
        self.tls = False
        self.tlsverify: bool | None = None
        self.tlscacert: str | None = None
        self.tlscert: str | None = None
        self.tlskey: str | None = None
        self.version = False
        self.help = False


_GLOBAL_VALUE = {"-H": "host", "--host": "host", "--config": "config", "-l": "log-level", "--log-level": "log-level",
                 "-c": "context", "--context": "context", "--tlscacert": "tlscacert", "--tlscert": "tlscert",
                 "--tlskey": "tlskey"}


def parse_global(argv: list[str]) -> tuple[GlobalOptions, list[str]]:
    """Global flags come before the command (docker's root command does not intersperse)."""
    g = GlobalOptions()
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "-":
            break
        if a == "--":
            i += 1
            break
        name, eq, val = a.partition("=")
        if name in _GLOBAL_VALUE or (name[:2] in ("-H", "-l", "-c") and len(name) > 2 and not name.startswith("--")):
            if name not in _GLOBAL_VALUE:  # -Hunix:///x
                name, val, eq = name[:2], a[2:], "="
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: {name}", f"{'berth'} [OPTIONS] COMMAND")
                val = argv[i]
            key = _GLOBAL_VALUE[name]
            if key == "host":
                g.hosts.append(val)
            elif key == "config":
                g.config = val
            elif key in ("tlscacert", "tlscert", "tlskey"):
                setattr(g, key, val)
            # log-level and context are accepted and ignored (berth has no contexts)
        elif name in ("-D", "--debug"):
            g.debug = True
        elif name == "--tls":
            g.tls = val.lower() not in ("false", "0") if eq else True
        elif name == "--tlsverify":
            g.tlsverify = val.lower() not in ("false", "0") if eq else True
        elif name in ("-v", "--version"):
            g.version = True
        elif name in ("-h", "--help"):
            g.help = True
        else:
            raise UsageError(f"unknown flag: {name}" if name.startswith("--") else
                             f"unknown shorthand flag: '{name[1:2]}' in {name}", "berth [OPTIONS] COMMAND")
        i += 1
    return g, argv[i:]


def _resolve(bin_name: str, rest: list[str]) -> tuple[str, str, list[str]] | None:
    """(path, "module:function", args) for the command line, or None after printing help."""
    name = rest[0]
    entry = COMMANDS.get(name)
    if entry is None:
        raise StatusError(1, f"{bin_name}: unknown command: {bin_name} {name}\n\n"
                             f"Run '{bin_name} --help' for more information")
    if isinstance(entry, dict):
        if len(rest) < 2 or rest[1] in ("--help", "-h", "help"):
            sys.stdout.write(_group_usage(bin_name, name, entry))
            return None
        sub = entry.get(rest[1])
        if sub is None:
            if rest[1].startswith("-"):
                raise UsageError(f"unknown flag: {rest[1]}", f"{bin_name} {name} COMMAND")
            raise StatusError(1, f"{bin_name}: unknown command: {bin_name} {name} {rest[1]}\n\n"
                                 f"Usage:  {bin_name} {name}\n\n"
                                 f"Run '{bin_name} {name} --help' for more information")
        return f"{bin_name} {name} {rest[1]}", sub, rest[2:]
    return f"{bin_name} {name}", entry, rest[1:]


def _print_usage_error(e: UsageError) -> int:
    msg = e.message
    cmd = e.usage.split(" [", 1)[0].split(" IMAGE", 1)[0]
    words = []
    for w in cmd.split():
        if w.isupper() or w.startswith(("[", "<")):
            break
        words.append(w)
    cmd = " ".join(words)
    text = msg
    if e.usage:
        text += f"\n\nUsage:  {e.usage}\n\n{e.help_word} '{cmd} --help' for more information"
    sys.stdout.flush()
    sys.stderr.write(text + "\n")
    return e.code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bin_name = "berth"
    cli: Cli | None = None
    try:
        g, rest = parse_global(argv)
        if g.version:
            from berth import __version__

            sys.stdout.write(f"berth version {__version__}\n")
            return 0
        if not rest or g.help or rest[0] == "help":
            if len(rest) > 1 and rest[0] == "help":
                return main([*argv[: len(argv) - len(rest)], *rest[1:], "--help"])
            sys.stdout.write(_usage(bin_name))
            return 0
        tls = None
        if g.tls or g.tlsverify is not None or g.tlscacert or g.tlscert or g.tlskey:
            from berth.client.hosts import tls_config

            tls = tls_config(tls=g.tls, verify=g.tlsverify, ca=g.tlscacert, cert=g.tlscert, key=g.tlskey)
        else:
            import os

            if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("BERTH_TLS_VERIFY"):
                from berth.client.hosts import tls_config

                tls = tls_config()
        from berth.client.hosts import select_host

        cli = Cli(host=select_host(g.hosts), tls=tls, config_dir=g.config, debug=g.debug, bin_name=bin_name)
        resolved = _resolve(bin_name, rest)
        if resolved is None:
            return 0
        path, target, args = resolved
        module, func = target.split(":")
        mod = __import__(f"berth.cli.commands.{module}", fromlist=[func])
        code = getattr(mod, func)(cli, path, args)
        return int(code or 0)
    except UsageError as e:
        return _print_usage_error(e)
    except StatusError as e:
        if e.message:
            sys.stdout.flush()
            sys.stderr.write(e.message.rstrip("\n") + "\n")
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        from berth.errors import BerthError

        if not isinstance(e, BerthError) and (cli is None or not cli.debug):
            if isinstance(e, OSError):
                sys.stderr.write(f"{e}\n")
                return 1
            raise
        sys.stdout.flush()
        sys.stderr.write(f"{e}\n")
        return 1
    finally:
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
        if cli is not None:
            cli.close()


if __name__ == "__main__":
    sys.exit(main())
