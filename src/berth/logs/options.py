"""Docker's `--log-opt` map for the json-file driver, checked as dockerd checks it (jsonfilelog.New and
ValidateLogOpt, go-units FromHumanSize), turned into JSONFileWriter's keyword arguments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from berth.errors import InvalidArgument
from berth.logs.writer import check_options

# Options every driver takes (logger.builtInLogOpts) and the attribute options json-file accepts; berth
# writes no "attrs", so these are accepted and otherwise ignored.
_ACCEPTED = {"mode", "max-buffer-size", "env", "env-regex", "labels", "labels-regex", "tag"}
_DECIMAL = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5}
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def from_human_size(text: str) -> int:
    """go-units FromHumanSize: "10m" is 10,000,000 bytes (SI, even when written "10MiB")."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise InvalidArgument(f"invalid size: '{text}'")
    num, sfx = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " else (text[:sep], text[sep + 1:])
    if not _FLOAT.fullmatch(num):  # Python's float() also takes "1_0" and blanks; Go's does not
        raise InvalidArgument(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    size = float(num)
    if size < 0:
        raise InvalidArgument(f"invalid size: '{text}'")
    if not sfx:
        return int(size)
    low = sfx.lower()
    if len(sfx) > 3 or (low[0] == "b" and len(low) > 1) or (low[0] != "b" and (
            low[0] not in _DECIMAL or (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"))):
        raise InvalidArgument(f"invalid suffix: '{low if len(sfx) <= 3 else sfx}'")
    return int(size) if low[0] == "b" else int(size * _DECIMAL[low[0]])


def parse_log_opts(opts: Mapping[str, str] | None) -> dict[str, Any]:
    """{"max_size": int | None, "max_file": int, "compress": bool} for JSONFileWriter."""
    opts = opts or {}
    for key in opts:
        if key not in _ACCEPTED and key not in ("max-size", "max-file", "compress"):
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    max_size = from_human_size(opts["max-size"]) if "max-size" in opts else None
    max_file = 1
    if "max-file" in opts:
        if not re.fullmatch(r"[+-]?[0-9]+", opts["max-file"]):
            raise InvalidArgument(f'strconv.Atoi: parsing "{opts["max-file"]}": invalid syntax')
        max_file = int(opts["max-file"])
    compress = False
    if "compress" in opts:
        value = opts["compress"]
        if value not in _TRUE | _FALSE:
            raise InvalidArgument(f'strconv.ParseBool: parsing "{value}": invalid syntax')
        compress = value in _TRUE
    check_options(max_size, max_file, compress)
    return {"max_size": max_size, "max_file": max_file, "compress": compress}
