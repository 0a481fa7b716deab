"""berth's compact seccomp profile format, and its conversion to and from Docker's profile format.

Docker's profile (moby/profiles seccomp/default.json) spells every rule out in full. berth keeps its
default profile as a short list of rules instead, one line per rule in the JSON file:

    [action, [names…], {conditions}]

- action: "allow", "errno", "kill", "kill_process", "trap", "trace", "log", … (SCMP_ACT_ without the
  prefix, lower case); "errno:38" / "trace:1" carry an errnoRet.
- conditions (all optional): "caps" / "notCaps" (Docker's includes.caps / excludes.caps), "arches" /
  "notArches", "minKernel" / "notMinKernel", "args" as [[index, op, value(, valueTwo)]…] with ops
  "!=", "<", "<=", "==", ">=", ">", "&==" (SCMP_CMP_MASKED_EQ: arg & value == valueTwo), "comment".

`python -m berth.runtime.seccomp.compact DOCKER_PROFILE.json > default.json` regenerates berth's file
from a newer Docker profile; the test suite proves the two resolve to the same policy.
"""

from __future__ import annotations

import json
import sys
from typing import Any

OPS = {"!=": "SCMP_CMP_NE", "<": "SCMP_CMP_LT", "<=": "SCMP_CMP_LE", "==": "SCMP_CMP_EQ",
       ">=": "SCMP_CMP_GE", ">": "SCMP_CMP_GT", "&==": "SCMP_CMP_MASKED_EQ"}
_OPS_BACK = {v: k for k, v in OPS.items()}
# compact key -> (Docker's block, key inside it)
_CONDITIONS = {"caps": ("includes", "caps"), "notCaps": ("excludes", "caps"),
               "arches": ("includes", "arches"), "notArches": ("excludes", "arches"),
               "minKernel": ("includes", "minKernel"), "notMinKernel": ("excludes", "minKernel")}
_CONDITIONS_BACK = {v: k for k, v in _CONDITIONS.items()}

ORIGIN = ("Derived from Docker's default seccomp profile, moby/profiles seccomp/default.json "
          "(Copyright The Moby Authors, Apache License 2.0, see default.LICENSE beside this file), "
          "rewritten in berth's compact rule format (berth/runtime/seccomp/compact.py). Same policy.")


def _action(action: str, errno_ret: int | None) -> str:
    short = action.removeprefix("SCMP_ACT_").lower()
    return short if errno_ret is None else f"{short}:{errno_ret}"


def _unaction(short: str) -> tuple[str, int | None]:
    name, _, ret = short.partition(":")
    return "SCMP_ACT_" + name.upper(), int(ret) if ret else None


def from_docker(profile: dict[str, Any]) -> dict[str, Any]:
    """Docker's profile format -> berth's compact format (rule order kept)."""
    out: dict[str, Any] = {"_origin": ORIGIN}
    out["default"] = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
    if profile.get("archMap"):
        out["archMap"] = {a["architecture"]: a.get("subArchitectures") or [] for a in profile["archMap"]}
    for key in ("architectures", "flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    rules = []
    for call in profile.get("syscalls") or []:
        names = call.get("names") or [call["name"]]
        cond: dict[str, Any] = {}
        for block in ("includes", "excludes"):
            for key, value in (call.get(block) or {}).items():
                if value:
                    cond[_CONDITIONS_BACK[(block, key)]] = value
        if call.get("args"):
            cond["args"] = [[a["index"], _OPS_BACK[a["op"]], a["value"]] for a in call["args"]]
            for a, packed in zip(call["args"], cond["args"], strict=True):
                if a.get("valueTwo"):
                    packed.append(a["valueTwo"])
        if call.get("comment"):
            cond["comment"] = call["comment"]
        rule: list[Any] = [_action(call["action"], call.get("errnoRet")), list(names)]
        if cond:
            rule.append(cond)
        rules.append(rule)
    out["rules"] = rules
    return out


def to_docker(compact: dict[str, Any]) -> dict[str, Any]:
    """berth's compact format -> Docker's profile format (a new dict every call)."""
    action, errno_ret = _unaction(compact["default"])
    out: dict[str, Any] = {"defaultAction": action}
    if errno_ret is not None:
        out["defaultErrnoRet"] = errno_ret
    if "archMap" in compact:
        out["archMap"] = [{"architecture": a, "subArchitectures": list(subs)} for a, subs in compact["archMap"].items()]
    for key in ("architectures", "flags", "listenerPath", "listenerMetadata"):
        if key in compact:
            out[key] = compact[key]
    syscalls = []
    for rule in compact["rules"]:
        action, errno_ret = _unaction(rule[0])
        call: dict[str, Any] = {"names": list(rule[1]), "action": action}
        if errno_ret is not None:
            call["errnoRet"] = errno_ret
        for key, value in (rule[2] if len(rule) > 2 else {}).items():
            if key == "args":
                call["args"] = [{"index": a[0], "op": OPS[a[1]], "value": a[2]} for a in value]
                for a, out_arg in zip(value, call["args"], strict=True):
                    if len(a) > 3:
                        out_arg["valueTwo"] = a[3]
            elif key == "comment":
                call["comment"] = value
            else:
                block, inner = _CONDITIONS[key]
                call.setdefault(block, {})[inner] = value
        syscalls.append(call)
    out["syscalls"] = syscalls
    return out


def dumps(compact: dict[str, Any]) -> str:
    """Pretty but short: one line per rule, so diffs against a newer Docker profile stay readable."""
    head = {k: v for k, v in compact.items() if k != "rules"}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "rules": [')
    rules = compact["rules"]
    for i, rule in enumerate(rules):
        lines.append("    " + json.dumps(rule) + ("," if i < len(rules) - 1 else ""))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m berth.runtime.seccomp.compact DOCKER_PROFILE.json > default.json", file=sys.stderr)
        return 2
    with open(args[0]) as f:
        sys.stdout.write(dumps(from_docker(json.load(f))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
