"""The early no-op cgroup join, and the clone that must stay safe while its thread runs."""
import os
import subprocess
import sys
import textwrap

import pytest

from berth.runtime import attachwarm

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@needs_root
def test_own_procs_file_is_the_cgroup_we_are_in() -> None:
    procs = attachwarm._own_procs_file()
    assert procs is not None
    with open(procs) as f:
        assert str(os.getpid()) in f.read().split()


@needs_root
def test_rejoin_leaves_us_where_we_were() -> None:
    with open("/proc/self/cgroup") as f:
        before = f.read()
    attachwarm._rejoin(attachwarm._own_procs_file() or "")
    with open("/proc/self/cgroup") as f:
        assert f.read() == before


@needs_root
def test_clone_while_another_thread_wants_the_gil_does_not_hang() -> None:
    # A thread that keeps leaving and re-taking the GIL (as the warm-up thread does when its write
    # returns) while the main thread clones: if the clone let go of the GIL, a child could be born
    # with the GIL held by a thread it does not have, and hang. Run in a subprocess, with a timeout.
    code = textwrap.dedent("""
        import _thread, os, time
        from berth.runtime.linux import syscalls as sc
        stop = []
        def spin():
            while not stop:
                os.stat("/")  # releases and re-takes the GIL
        _thread.start_new_thread(spin, ())
        for _ in range(300):
            pid = sc.clone(0)
            if pid == 0:
                os._exit(7)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 7
        stop.append(1)
        print("done")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done"


@needs_root
def test_child_of_clone_switches_user_while_another_thread_lives() -> None:
    # glibc's set*id wrappers signal every thread glibc knows of and wait for each to follow. After
    # our raw clone the child still lists the parent's other threads, which do not exist there: the
    # wrappers (os.setresuid) would wait forever. This hung 1 exec in ~10 while the warm-up ran.
    code = textwrap.dedent("""
        import _thread, os
        from berth.runtime.linux import syscalls as sc
        lock = _thread.allocate_lock()
        lock.acquire()
        _thread.start_new_thread(lock.acquire, ())  # a thread alive for the whole test
        pid = sc.clone(0)
        if pid == 0:
            sc.setgroups([5, 6])
            sc.setresgid(1000)
            sc.setresuid(1000)
            os._exit(0 if os.getresuid() == (1000,) * 3 and os.getgroups() == [5, 6] else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)  # the hung child too
        p.communicate()
        raise
    assert out.strip() == "0"


def test_helper_thread_blocks_signals_and_hands_back_its_error() -> None:
    from berth.runtime import bgthread

    seen: list[str] = []

    def read_mask() -> None:
        with open("/proc/thread-self/status") as f:
            seen.extend(line.split()[1] for line in f if line.startswith("SigBlk:"))
        raise ValueError("from the thread")

    wait = bgthread.start(read_mask)
    with pytest.raises(ValueError, match="from the thread"):
        wait()
    assert seen and int(seen[0], 16) & (1 << (15 - 1))  # SIGTERM blocked there
    with open("/proc/thread-self/status") as f:  # and not here
        mine = next(line.split()[1] for line in f if line.startswith("SigBlk:"))
    assert not int(mine, 16) & (1 << (15 - 1))
