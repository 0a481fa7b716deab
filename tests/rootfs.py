"""Root filesystems for tests, made from what Debian's packages put on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess

BUSYBOX = "/bin/busybox"


def make_busybox_rootfs(dest: str) -> str:
    """A minimal busybox rootfs: applets as symlinks, /etc/passwd and /etc/group with a few users."""
    if not os.path.exists(BUSYBOX):
        raise RuntimeError("busybox-static is not installed (apt-get install busybox-static)")
    for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "home/user", "var", "usr/bin"):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(dest, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        link = os.path.join(dest, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(dest, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n"
                "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                "user:x:1000:1000:user:/home/user:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(dest, "etc/group"), "w") as f:
        f.write("root:x:0:\ndaemon:x:1:\ntty:x:5:\nusers:x:100:user\nuser:x:1000:\nextra:x:2000:user\n"
                "nogroup:x:65534:\n")
    os.chown(os.path.join(dest, "home/user"), 1000, 1000)
    return dest
