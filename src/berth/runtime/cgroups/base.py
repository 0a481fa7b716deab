"""What the v1 and v2 managers share: signalling every process, and `apply` as a transaction."""

from __future__ import annotations

import os

from berth.errors import BerthError, InvalidArgument, NotFound

from . import fs

SIGKILL = 9  # not signal.SIGKILL: importing signal (and enum) costs milliseconds per start


class ManagerBase:
    """Common behaviour; subclasses provide the hierarchy-specific parts."""

    version: str
    path: str  # in the hierarchy, as /proc/<pid>/cgroup shows it: "/docker/<id>"
    dir: str  # its absolute directory (v1: in the devices hierarchy, runc's reference)
    root: str
    paths: dict[str, str]
    warnings: list[str]  # what apply skipped because the kernel cannot do it (Docker warns the same)

    # --- provided by subclasses -------------------------------------------------------------
    def pids(self) -> list[int]:
        raise NotImplementedError

    def _freeze(self) -> None:
        raise NotImplementedError

    def _thaw(self) -> None:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def _apply(self, resources: dict, txn: fs.Txn) -> None:
        raise NotImplementedError

    def _kill_file(self) -> str | None:
        """A cgroup.kill to use for SIGKILL (v2, or the hybrid tree on v1), if this cgroup has one."""
        return None

    # --- shared -----------------------------------------------------------------------------
    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in dict.fromkeys(self.paths.values())]

    def add_pid(self, pid: int) -> None:
        for procs in self.procs_files():
            fs.write_pid(procs, pid)

    def apply(self, resources: dict) -> None:
        """Apply OCI `linux.resources`, all or nothing: on a refused value, undo what was written."""
        if not resources:
            return
        if not isinstance(resources, dict):
            raise InvalidArgument("linux.resources must be an object")
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")
        txn = fs.Txn()
        try:
            self._apply(resources, txn)
        except OSError as e:  # a read the kernel refused (the cgroup vanished, ...): not the user's fault
            txn.rollback()
            raise fs.CgroupError(f"{e.filename}: {fs.go_strerror(e.errno or 0)}") from None
        except BaseException:
            txn.rollback()
            raise

    def freeze(self) -> None:
        """Pause every process; returns once the kernel reports the cgroup frozen."""
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")
        self._freeze()

    def thaw(self) -> None:
        """Resume; nothing to do when the cgroup is gone (delete may thaw after a kill)."""
        if self.exists():
            self._thaw()

    def kill_all(self, sig: int) -> None:
        """Signal every process in the cgroup.

        SIGKILL goes through cgroup.kill where the kernel has it (atomic, no fork can escape).
        Otherwise the cgroup is frozen while its pids are listed and signalled, so no child forked
        in between is missed; it is thawed again unless it was paused before (SIGKILL always thaws:
        a v1-frozen task cannot act on it)."""
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")
        kill_file = self._kill_file() if sig == SIGKILL else None
        if kill_file is not None:
            try:
                fs.write(kill_file, "1")
            except fs.CgroupWriteError as e:
                raise fs.CgroupError(str(e)) from None
            if self.is_frozen():
                self.thaw()
            return
        was_frozen = self.is_frozen()
        frozen_here = False
        try:
            self.freeze()
            frozen_here = True
        except BerthError:
            pass  # no freezer: signal anyway, as runc does
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if frozen_here and (not was_frozen or sig == SIGKILL):
                self.thaw()
