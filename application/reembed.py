"""Change the model that makes the stored vectors without search ever reading a half-built index.

`memorymesh reembed`, run with the new model configured while the service goes on serving
with the old one:

1. embeds every message with the new model, beside the old vectors, a page at a time;
2. builds the search index of the new vectors;
3. catches up with messages embedded (by the old model's workers) meanwhile, until few remain;
4. switches: holds vector writes off, embeds the last few, and makes the new vectors the
   searched ones, in one transaction.

Until step 4 every search reads the old vectors, all of them; from then on, the new ones,
all of them. A stopped run is taken up where it stopped. Processes still on the old model
fail readiness afterwards, and are restarted with the new one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from application.ports.embedder import Embedder, EmbedderUnavailable
from application.ports.embedding_models import EmbeddingModel, EmbeddingModels, ModelSwitch
from application.ports.storage import Locks
from application.store_messages import embedding_text
from domain.errors import DomainError
from domain.message import Message

logger = logging.getLogger(__name__)

LOCK = "memorymesh reembed"
CATCH_UP_PASSES = 20  # each embeds what was written during the one before
# The switch embeds what is left while writes wait: 106 messages held them 3.6 s in
# bench/results/reembed.md. Catch up until at most this many are left (a pass over the
# table to find them costs milliseconds).
SWITCH_AT_MOST = 32
# More failures than this in the first pass: the new model or its settings are broken, not
# the messages (a switch would leave them all unsearchable).
FAILURES_ALLOWED = (10, 0.01)  # this many, or this share of the messages, whichever is more

Progress = Callable[[int], None]


class ReembedRefused(DomainError):
    """A reembed stopped before the switch; what it built is kept for the next run."""

    code = "reembed_refused"


@dataclass(frozen=True, slots=True)
class ReembedReport:
    model: EmbeddingModel
    previous: EmbeddingModel | None
    reembedded: int  # messages given a vector of the new model
    requeued: int  # messages the new model could not embed: pending again, for the workers to retry
    switched: bool  # False: the stored vectors were this model's already


@dataclass(slots=True)
class Failures:
    ids: set[uuid.UUID] = field(default_factory=set)
    last: str = ""


class Reembed:
    def __init__(self, models: EmbeddingModels, embedder: Embedder, locks: Locks, page_size: int) -> None:
        self._models = models
        self._embedder = embedder
        self._locks = locks
        self._page_size = page_size

    @property
    def model(self) -> EmbeddingModel:
        return EmbeddingModel(self._embedder.model_name, self._embedder.dimensions)

    async def __call__(self, on_more: Progress, on_progress: Progress) -> ReembedReport:
        """on_more(n): n more messages to embed (the total grows as writes come in);
        on_progress(n): n more embedded."""
        async with self._locks.try_hold(LOCK) as held:
            if not held:
                raise ReembedRefused("another `memorymesh reembed` is running: let it finish")
            return await self._run(on_more, on_progress)

    async def _run(self, on_more: Progress, on_progress: Progress) -> ReembedReport:
        await self._embedder.check()  # a refused key, a closed model: before anything changes
        target, previous = self.model, await self._models.active()
        if previous == target:  # back to the active model: a build of another one is dropped
            if await self._models.abandon_build():
                logger.info("dropped an unfinished re-embedding", extra={"model": str(target)})
            return ReembedReport(target, previous, 0, 0, switched=False)
        await self._models.start_build(target)
        total = await self._models.count_unbuilt()
        on_more(total)
        failures = Failures()
        done = await self._pass(on_progress, failures)
        allowed = max(FAILURES_ALLOWED[0], int(total * FAILURES_ALLOWED[1]))
        if len(failures.ids) > allowed:
            raise ReembedRefused(
                f"{target} failed on {len(failures.ids)} of {total} messages (the last: {failures.last}); "
                "nothing was switched and what was built is kept: fix the model or its settings and run it again"
            )
        await self._models.index_build()
        for _ in range(CATCH_UP_PASSES):
            left = await self._models.count_unbuilt() - len(failures.ids)
            if left <= min(self._page_size, SWITCH_AT_MOST):
                break
            on_more(left)
            done += await self._pass(on_progress, failures)
        else:
            raise ReembedRefused(
                "messages arrive faster than the new model embeds them: nothing was switched and what was built "
                "is kept; run it again when the service is quieter"
            )
        async with self._models.switch(target) as switch:
            stored, requeued = await self._last_few(switch, failures, on_more, on_progress)
        logger.info("re-embedded", extra={"model": str(target), "messages": done + stored, "requeued": requeued})
        return ReembedReport(target, previous, done + stored, requeued, switched=True)

    async def _pass(self, on_progress: Progress, failures: Failures) -> int:
        """One walk over the messages still without a new vector; returns how many it stored."""
        stored, after = 0, None
        while page := await self._models.unbuilt(after, self._page_size):
            built = await self._embed(page, failures)
            stored += await self._models.put_built(built)
            on_progress(len(page))
            after = page[-1].id
        return stored

    async def _last_few(
        self, switch: ModelSwitch, failures: Failures, on_more: Progress, on_progress: Progress
    ) -> tuple[int, int]:
        """Under the switch's lock, which holds writes off: as little work as can be."""
        left = [m for m in await switch.unbuilt() if m.id not in failures.ids]  # those failed once, requeued
        on_more(len(left))
        stored = 0
        for start in range(0, len(left), self._page_size):
            page = left[start : start + self._page_size]
            stored += await switch.put_built(await self._embed(page, failures))
            on_progress(len(page))
        # Nothing writes meanwhile, so what is still without a new vector is what failed.
        failed = await switch.unbuilt()
        await switch.requeue([m.id for m in failed])
        return stored, len(failed)

    async def _embed(self, page: Sequence[Message], failures: Failures) -> list[tuple[Message, list[float]]]:
        """Vectors for the page; a message the model fails on is left out (and counted in
        `failures`). A model that cannot work at all stops the run."""
        try:
            vectors = await self._embedder.embed_documents([embedding_text(m) for m in page])
            return list(zip(page, vectors, strict=True))
        except EmbedderUnavailable:
            raise
        except Exception as error:
            if len(page) == 1:
                failures.ids.add(page[0].id)
                failures.last = f"{type(error).__name__}: {error}"[:200]
                logger.warning("the new model failed on a message", extra={"message_id": str(page[0].id)})
                return []
        built = []
        for message in page:
            built += await self._embed([message], failures)
        return built
