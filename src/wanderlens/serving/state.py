"""What every route of the service shares: the model holder, the registry, the metrics, the settings and the
inference pool, as one `ServiceState` that routes receive through the `State` dependency.

Keeping it in one object (on `app.state.service`) lets each router live in its own module with no closures over
`create_app`'s locals.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from wanderlens.config import ServingConfig
from wanderlens.serving.holder import ModelHolder
from wanderlens.serving.metrics import ServiceMetrics
from wanderlens.serving.registry import ModelRegistry


@dataclass
class ServiceState:
    """The shared parts of one running service."""

    registry: ModelRegistry
    holder: ModelHolder
    metrics: ServiceMetrics
    settings: ServingConfig
    model: str
    admin_token: str | None
    pool: ThreadPoolExecutor
    batchers: Any = None  # serving.batching.ServiceBatchers: the decode pool and the describe / search batchers

    def served(self) -> Any:
        """The model to answer this request with (taken once), or 503 while none is loaded."""
        current = self.holder.current
        if current is None:
            raise HTTPException(503, f"no model loaded yet for {self.model!r}"
                                     + (f" ({self.holder.last_error})" if self.holder.last_error else ""),
                                headers={"Retry-After": str(self.settings.retry_after_s)})
        return current

    @staticmethod
    def travel(current: Any) -> Any:
        """The travel tables of a served version, or 404 when it was registered without them."""
        if current.travel is None:
            raise HTTPException(404, f"model version {current.version} was registered without travel tables "
                                     "(register it with --travel DIR)")
        return current.travel

    async def run_timed(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the inference pool; 504 when it takes longer than the request time limit."""
        limit = self.settings.request_timeout_s
        loop = asyncio.get_running_loop()
        try:
            # The copied context carries the request id into the pool thread, so its log lines have it too.
            call = functools.partial(contextvars.copy_context().run, fn, *args)
            return await asyncio.wait_for(loop.run_in_executor(self.pool, call), timeout=limit)
        except TimeoutError as exc:
            raise HTTPException(504, f"the request took longer than {limit:g} s; try a smaller photo or retry "
                                     "later") from exc


def get_state(request: Request) -> ServiceState:
    """The `ServiceState` of the app answering `request`."""
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]
