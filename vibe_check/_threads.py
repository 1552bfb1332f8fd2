"""One BLAS/OpenMP thread while vibe-check works on a single clip, safe across threads.

Native thread pools are process-wide. The service predicts on several threads at once, so each
prediction cannot save and restore the limits on its own: one call restoring the original limits
would hand threads back to another still running, and the last to leave would restore the
limits it saw on entry, the ones another call had set. Here the first caller sets one thread and
the last one out restores what was there before.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["one_thread"]

_lock = threading.Lock()
_users = 0
_limiter = None
_controller = None
_modules_seen = 0


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with every BLAS and OpenMP pool limited to one thread.

    The rows here are few (one clip's features, a 40 x 257 mel basis), so more threads only add
    start-up and spin-wait costs: on two busy cores a single-clip ensemble prediction took 207 ms
    with OpenMP's default threads and 11 ms with one, and two BLAS threads made extraction 2.4x
    slower; parallel work runs one process per core anyway.

    Examples
    --------
    >>> with one_thread():
    ...     pass
    """
    global _users, _limiter, _controller, _modules_seen
    with _lock:
        if _users == 0:
            # Listing the loaded native libraries costs milliseconds: redone only when imports
            # happened since (so scikit-learn's OpenMP runtime is seen once a model is loaded).
            if _controller is None or len(sys.modules) != _modules_seen:
                from threadpoolctl import ThreadpoolController

                _controller, _modules_seen = ThreadpoolController(), len(sys.modules)
            _limiter = _controller.limit(limits=1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
