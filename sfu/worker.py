"""Worker: the media core of one process. Owns the DTLS certificate, the
routers and every background task they start."""

from __future__ import annotations

import uuid
from concurrent.futures import Executor, ThreadPoolExecutor

from .aiortc_bridge import Certificate
from .clock import SYSTEM_CLOCK, Clock
from .errors import InvalidStateError
from .events import EventSink
from .options import WorkerOptions
from .router import Router
from .stats import MediaTotals, media_totals
from .tasks import TaskSet
from .types import CloseReason, RouterId


class Worker:
    def __init__(self, options: WorkerOptions | None = None, *, clock: Clock = SYSTEM_CLOCK):
        self.options = options or WorkerOptions()
        self.closed = False
        self.routers: dict[RouterId, Router] = {}
        self._clock = clock
        self._certificate = Certificate()
        self._tasks = TaskSet()
        self._decode_executor: ThreadPoolExecutor | None = None
        # What closed producers, consumers, transports and observers had counted.
        self.retired = MediaTotals()

    def create_router(self, *, on_event: EventSink) -> Router:
        """Must be called from the running event loop (the router starts a task)."""
        if self.closed:
            raise InvalidStateError("worker is closed")
        router = Router(
            router_id=RouterId(uuid.uuid4().hex),
            options=self.options,
            certificate=self._certificate,
            clock=self._clock,
            on_event=on_event,
            tasks=self._tasks,
            decode_executor=self._executor,
            retired=self.retired,
        )
        self.routers[router.id] = router
        return router

    def _executor(self) -> Executor:
        """One thread for the opt-in Opus level fallback, created on first use."""
        if self._decode_executor is None:
            self._decode_executor = ThreadPoolExecutor(1, thread_name_prefix="opus-levels")
        return self._decode_executor

    def totals(self) -> MediaTotals:
        """Every counter of this worker since it started, closed objects included."""
        return media_totals(self.retired, self.routers.values())

    def close_router(self, router: Router) -> None:
        router.close()
        self.routers.pop(router.id, None)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for router in list(self.routers.values()):
            router.close(CloseReason.WORKER_CLOSED)
        self.routers.clear()

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Let transport teardown (DTLS close_notify, socket close) finish, then stop the rest."""
        await self._tasks.wait(timeout)
        await self._tasks.cancel_all()
        if self._decode_executor is not None:
            self._decode_executor.shutdown(wait=False, cancel_futures=True)
