"""Small fixtures shared by several test packages: a fake credential helper, a tree with a submount."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def fake_credential_helper(bindir: str, db: str, name: str = "berthtest") -> None:
    """docker-credential-<name> in `bindir`: the helper protocol (get/store/erase) over a JSON file."""
    os.makedirs(bindir, exist_ok=True)
    path = os.path.join(bindir, f"docker-credential-{name}")
    with open(path, "w") as f:
        f.write(f"""#!{sys.executable}
import json, os, sys
path = {db!r}
db = json.load(open(path)) if os.path.exists(path) else {{}}
if sys.argv[1] == "store":
    e = json.load(sys.stdin)
    db[e["ServerURL"]] = {{"Username": e["Username"], "Secret": e["Secret"]}}
else:
    url = sys.stdin.read().strip()
    if url not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    if sys.argv[1] == "get":
        print(json.dumps(db[url]))
    else:
        del db[url]
json.dump(db, open(path, "w"))
""")
    os.chmod(path, 0o755)


@contextmanager
def tree_with_submount(base: str) -> Iterator[str]:
    """`base`/top with a tmpfs mounted on its `sub` directory (unmounted on exit)."""
    top = os.path.join(base, "top")
    os.makedirs(os.path.join(top, "sub"))
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(top, "sub")], check=True)
    try:
        yield top
    finally:
        subprocess.run(["umount", "-l", os.path.join(top, "sub")], check=True)
