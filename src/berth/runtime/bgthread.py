"""A helper thread for one blocking system call on the start path.

Built on _thread, not threading (whose import costs milliseconds on every container start). The
thread starts with every signal blocked, so that signals keep reaching the main thread, which
forwards them to the container and whose blocking calls they must interrupt.
"""

from __future__ import annotations

import _signal
import _thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def start(fn: Callable[[], None]) -> Callable[[], None]:
    """Run fn in a thread; the returned function waits for it and raises its error."""
    done = _thread.allocate_lock()
    done.acquire()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # handed to the waiting thread
            errors.append(e)
        finally:
            done.release()

    old = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        _thread.start_new_thread(run, ())
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old)

    def wait() -> None:
        done.acquire()
        if errors:
            raise errors[0]
    return wait
