"""`--change` instructions for import and commit (moby's validCommitCommands), applied to an image's
container config: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
WORKDIR. JSON-array arguments are exec form; anything else is shell form (`/bin/sh -c …`)."""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from berth.errors import InvalidArgument

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME",
           "WORKDIR")
_DURATION = {"ns": 1, "us": 1000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


def _json_list(arg: str) -> list[str] | None:
    try:
        v = json.loads(arg)
    except ValueError:
        return None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def _cmd(arg: str, shell: list[str]) -> list[str]:
    exec_form = _json_list(arg)
    return exec_form if exec_form is not None else [*shell, arg]


def _pairs(arg: str, instr: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"` or the legacy `k v` form."""
    words = shlex.split(arg)
    if words and "=" not in words[0]:
        key, _, value = arg.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            if not k:
                raise InvalidArgument(f"{instr} names can not be blank")
            raise InvalidArgument(f"Syntax error - can't find = in {w!r}. Must be of the form: name=value")
        out.append((k, v))
    return out


def _duration(text: str) -> int:
    total, num = 0, ""
    i = 0
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            num += text[i]
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "ms", "s", "m", "h") if text.startswith(u, i)), None)
        if unit is None or not num:
            raise InvalidArgument(f"time: invalid duration {text!r}")
        total += int(float(num) * _DURATION[unit])
        num = ""
        i += len(unit)
    if num:
        raise InvalidArgument(f"time: missing unit in duration {text!r}")
    return total


def apply(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply `changes` to a container config dict (returned, modified in place)."""
    shell = config.get("Shell") or ["/bin/sh", "-c"]
    for change in changes:
        line = change.strip()
        if not line:
            continue
        instr, _, arg = line.partition(" ")
        instr = instr.upper()
        arg = arg.strip()
        if instr not in ALLOWED:
            raise InvalidArgument(f"{instr} is not a valid change command")
        if instr == "CMD":
            config["Cmd"] = _cmd(arg, shell)
        elif instr == "ENTRYPOINT":
            config["Entrypoint"] = _cmd(arg, shell) if arg else None
            config["Cmd"] = None  # setting ENTRYPOINT resets an inherited CMD
        elif instr == "ENV":
            env = list(config.get("Env") or [])
            for k, v in _pairs(arg, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            config["Env"] = env
        elif instr == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(arg, "LABEL"))
            config["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for p in arg.split():
                ports[p if "/" in p else p + "/tcp"] = {}
            config["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(config.get("Volumes") or {})
            for v in _json_list(arg) or arg.split():
                vols[v] = {}
            config["Volumes"] = vols
        elif instr == "WORKDIR":
            config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", arg)
        elif instr == "USER":
            config["User"] = arg
        elif instr == "STOPSIGNAL":
            config["StopSignal"] = arg
        elif instr == "ONBUILD":
            config["OnBuild"] = [*(config.get("OnBuild") or []), arg]
        elif instr == "HEALTHCHECK":
            config["Healthcheck"] = _healthcheck(arg, shell)
    return config


def _healthcheck(arg: str, shell: list[str]) -> dict[str, Any]:
    words = arg.split(" ")
    hc: dict[str, Any] = {}
    while words and words[0].startswith("--"):
        k, _, v = words.pop(0)[2:].partition("=")
        key = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
               "start-interval": "StartInterval", "retries": "Retries"}.get(k)
        if key is None:
            raise InvalidArgument(f"Unknown flag: {k}")
        hc[key] = int(v) if key == "Retries" else _duration(v)
    rest = " ".join(words).strip()
    kind, _, cmd = rest.partition(" ")
    if kind.upper() == "NONE":
        return {"Test": ["NONE"]}
    if kind.upper() != "CMD":
        raise InvalidArgument(f"Unknown type \"{kind}\" in HEALTHCHECK (try CMD)")
    exec_form = _json_list(cmd.strip())
    hc["Test"] = ["CMD", *exec_form] if exec_form is not None else ["CMD-SHELL", cmd.strip()]
    return hc
