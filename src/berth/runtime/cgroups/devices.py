"""The v1 devices cgroup as the kernel models it, so `apply` writes only the difference.

The kernel (security/device_cgroup.c) keeps a default (allow or deny everything) and a set of
exceptions keyed by (type, major, minor), each with access bits; a write to the opposite file of the
default adds bits to an exception, a write to the same file removes bits, and type "a" resets it
all. `devices.list` shows "a *:* rwm" in allow mode and the exceptions in deny mode.

Diffing instead of "deny all, then allow" matters for `update`: a running container never sees a
moment where /dev/null is denied."""

from __future__ import annotations

from berth.errors import InvalidArgument

Key = tuple[str, int, int]  # (type "b"|"c", major, minor); -1 is the "*" wildcard
_BITS = {"r": 1, "w": 2, "m": 4}


def _bits(access: str) -> int:
    out = 0
    for ch in access:
        if ch not in _BITS:
            raise InvalidArgument(f"invalid device access {access!r}: only r, w and m are allowed")
        out |= _BITS[ch]
    return out


def _access(bits: int) -> str:
    return "".join(ch for ch, b in _BITS.items() if bits & b)


def rule_string(kind: str, major: int, minor: int, bits: int) -> str:
    if kind == "a":
        return "a"
    maj = "*" if major < 0 else str(major)
    mnr = "*" if minor < 0 else str(minor)
    return f"{kind} {maj}:{mnr} {_access(bits)}"


class DeviceState:
    """A default (allow or deny everything) and exceptions with access bits."""

    __slots__ = ("default_allow", "exceptions")

    def __init__(self, default_allow: bool = False, exceptions: dict[Key, int] | None = None) -> None:
        self.default_allow = default_allow
        self.exceptions: dict[Key, int] = dict(exceptions or {})

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DeviceState)
            and other.default_allow == self.default_allow
            and other.exceptions == self.exceptions
        )

    def __repr__(self) -> str:
        return f"DeviceState(default_allow={self.default_allow}, exceptions={self.exceptions})"

    def apply(self, allow: bool, kind: str, major: int, minor: int, bits: int) -> None:
        if kind == "a":
            self.default_allow = allow
            self.exceptions.clear()
            return
        key = (kind, major, minor)
        if allow != self.default_allow:
            self.exceptions[key] = self.exceptions.get(key, 0) | bits
        elif key in self.exceptions:
            left = self.exceptions[key] & ~bits
            if left:
                self.exceptions[key] = left
            else:
                del self.exceptions[key]


def parse_list(text: str) -> DeviceState:
    """A state from `devices.list`."""
    state = DeviceState()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        kind, numbers, access = parts
        if kind == "a":
            return DeviceState(default_allow=True)
        maj, _, mnr = numbers.partition(":")
        state.exceptions[(kind, -1 if maj == "*" else int(maj), -1 if mnr == "*" else int(mnr))] = _bits(access)
    return state


def from_oci(rules: list[dict]) -> DeviceState:
    """The state OCI `linux.resources.devices` asks for, applied in order on a deny-all start (runc)."""
    state = DeviceState()
    for i, r in enumerate(rules):
        if not isinstance(r, dict):
            raise InvalidArgument(f"linux.resources.devices[{i}] must be an object")
        kind = r.get("type") or "a"
        if kind == "u":
            kind = "c"
        if kind not in ("a", "b", "c"):
            raise InvalidArgument(f"invalid device type {kind!r} in linux.resources.devices[{i}]")
        access = r.get("access")
        if not access:
            raise InvalidArgument(f"device access at {i} field cannot be empty")
        major, minor = r.get("major"), r.get("minor")
        for name, v in (("major", major), ("minor", minor)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise InvalidArgument(f"linux.resources.devices[{i}].{name} must be an integer")
        state.apply(
            bool(r.get("allow")), kind, -1 if major is None else major, -1 if minor is None else minor, _bits(access)
        )
    return state


def transition(current: DeviceState, target: DeviceState) -> list[tuple[str, str]]:
    """(file, rule) writes that take the kernel from `current` to `target`."""
    if target.default_allow:
        # Exceptions in allow mode are invisible in devices.list: always start from a clean allow-all.
        writes = [("devices.allow", "a")]
        writes += [("devices.deny", rule_string(*k, b)) for k, b in target.exceptions.items()]
        return writes
    if current.default_allow:
        writes = [("devices.deny", "a")]
        writes += [("devices.allow", rule_string(*k, b)) for k, b in target.exceptions.items()]
        return writes
    writes = []
    for key, want in target.exceptions.items():
        add = want & ~current.exceptions.get(key, 0)
        if add:
            writes.append(("devices.allow", rule_string(*key, add)))
    for key, have in current.exceptions.items():
        drop = have & ~target.exceptions.get(key, 0)
        if drop:
            writes.append(("devices.deny", rule_string(*key, drop)))
    return writes


def _rule(kind: str, major: int | None, minor: int | None, access: str, path: str = "") -> dict:
    return {"allow": True, "type": kind, "major": major, "minor": minor, "access": access, "path": path}


# runc appends these to every container's device rules (specconv.AllowedDevices): mknod of anything,
# the standard nodes, /dev/pts/*, /dev/ptmx and /dev/net/tun. Docker's own rules rely on it (they
# do not list /dev/pts). runc's maintainers call it questionable, but containers depend on it.
RUNC_ALLOWED_DEVICES = (
    _rule("c", None, None, "m"),
    _rule("b", None, None, "m"),
    _rule("c", 1, 3, "rwm", "/dev/null"),
    _rule("c", 1, 8, "rwm", "/dev/random"),
    _rule("c", 1, 7, "rwm", "/dev/full"),
    _rule("c", 5, 0, "rwm", "/dev/tty"),
    _rule("c", 1, 5, "rwm", "/dev/zero"),
    _rule("c", 1, 9, "rwm", "/dev/urandom"),
    _rule("c", 136, None, "rwm"),
    _rule("c", 5, 2, "rwm"),
    _rule("c", 10, 200, "rwm"),
)


def with_runc_defaults(resources: dict, linux_devices: list | None = None) -> dict:
    """`linux.resources` as runc applies it at create: the spec's device rules (a deny-all start
    when there are none), then runc's allowed devices, except those whose path the spec's
    `linux.devices` redefines (runc's createDevices). Not for rootless containers."""
    spec_paths = {d.get("path") for d in linux_devices or [] if isinstance(d, dict)}
    rules = list(resources.get("devices") or [])
    rules += [
        {k: v for k, v in r.items() if k != "path" and v is not None}
        for r in RUNC_ALLOWED_DEVICES
        if not (r["path"] and r["path"] in spec_paths)
    ]
    return {**resources, "devices": rules}
