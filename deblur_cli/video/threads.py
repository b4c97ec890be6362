"""Decoding and encoding on worker threads beside the caller's, joined by small bounded
queues: the stages overlap and memory stays at a few frames whatever the clip's length."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from ..runtime import yield_to_network

T = TypeVar("T")
QUEUE_FRAMES = 4


class _Failure:
    def __init__(self, err: BaseException) -> None:
        self.err = err


_DONE = object()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(make: Callable[[], Iterable[T]], maxsize: int = QUEUE_FRAMES) -> Iterator[T]:
    """Run an iterator in a thread, a few items ahead; its errors re-raise here."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def run() -> None:
        yield_to_network()
        it = iter(make())
        try:
            for item in it:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            _put(q, _Failure(err), stop)
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    thread = threading.Thread(target=run, name="deblur-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.err
            yield item
    finally:
        stop.set()
        thread.join()


class Sink(Generic[T]):
    """Hand items to ``handle`` on a worker thread through a bounded queue."""

    def __init__(self, handle: Callable[[T], None], maxsize: int = QUEUE_FRAMES) -> None:
        self._handle = handle
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="deblur-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        yield_to_network()
        while True:
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _DONE or self._stop.is_set():
                return
            try:
                self._handle(item)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = err
                self._stop.set()
                return

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._raise()
        if not _put(self._q, item, self._stop):
            self._raise()

    def close(self) -> None:
        """Wait for everything queued to be handled."""
        _put(self._q, _DONE, self._stop)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        self._stop.set()
        self._thread.join()

    def settle(self, err: BaseException) -> bool:
        """End after ``err`` in the producer. Ctrl-C: handle everything queued first, so work
        already done is kept and a re-run resumes after it (a second Ctrl-C skips this);
        anything else: drop it. True when everything queued was handled."""
        if isinstance(err, KeyboardInterrupt):
            try:
                self.close()
                return True
            except BaseException:  # noqa: BLE001 - the caller re-raises the first interruption
                pass
        self.abort()
        return False
