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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from application.ports import Embedder, EmbedderUnavailable, EmbeddingModel, EmbeddingModels, ModelSwitch
from application.store_messages import embedding_text
from domain.message import Message

logger = logging.getLogger(__name__)

CATCH_UP_PASSES = 5  # then switch anyway: what is left is embedded under the switch's lock

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ReembedReport:
    model: EmbeddingModel
    previous: EmbeddingModel | None
    reembedded: int  # messages given a vector of the new model
    requeued: int  # messages the new model could not embed: pending again, for the workers to retry
    switched: bool  # False: the stored vectors were this model's already


class Reembed:
    def __init__(self, models: EmbeddingModels, embedder: Embedder, page_size: int) -> None:
        self._models = models
        self._embedder = embedder
        self._page_size = page_size

    @property
    def model(self) -> EmbeddingModel:
        return EmbeddingModel(self._embedder.model_name, self._embedder.dimensions)

    async def __call__(self, on_more: Progress, on_progress: Progress) -> ReembedReport:
        """on_more(n): n more messages to embed (the total grows as writes come in);
        on_progress(n): n more embedded."""
        target, previous = self.model, await self._models.active()
        if previous == target:  # back to the active model: a build of another one is dropped
            if await self._models.abandon_build():
                logger.info("dropped an unfinished re-embedding", extra={"model": str(target)})
            return ReembedReport(target, previous, 0, 0, switched=False)
        await self._models.start_build(target)
        on_more(await self._models.count_unbuilt())
        done = await self._pass(on_progress)
        await self._models.index_build()
        for _ in range(CATCH_UP_PASSES):
            left = await self._models.count_unbuilt()
            if left <= self._page_size:
                break
            on_more(left)
            done += await self._pass(on_progress)
        async with self._models.switch() as switch:
            stored, requeued = await self._last_few(switch, on_more, on_progress)
        logger.info("re-embedded", extra={"model": str(target), "messages": done + stored, "requeued": requeued})
        return ReembedReport(target, previous, done + stored, requeued, switched=True)

    async def _pass(self, on_progress: Progress) -> int:
        """One walk over the messages still without a new vector; returns how many it stored."""
        stored, after = 0, None
        while page := await self._models.unbuilt(after, self._page_size):
            built, _ = await self._embed(page)
            stored += await self._models.put_built(built)
            on_progress(len(page))
            after = page[-1].id
        return stored

    async def _last_few(self, switch: ModelSwitch, on_more: Progress, on_progress: Progress) -> tuple[int, int]:
        left = await switch.unbuilt()
        on_more(len(left))
        stored = 0
        for start in range(0, len(left), self._page_size):
            page = left[start : start + self._page_size]
            built, _ = await self._embed(page)
            stored += await switch.put_built(built)
            on_progress(len(page))
        # Nothing writes meanwhile (the switch holds writes off), so what is still without a
        # new vector is exactly what failed.
        failed = await switch.unbuilt()
        await switch.requeue([m.id for m in failed])
        return stored, len(failed)

    async def _embed(self, page: Sequence[Message]) -> tuple[list[tuple[Message, list[float]]], list[Message]]:
        """Vectors for the page; a message the model fails on is left out (and retried by the
        next pass, or requeued at the switch). A model that cannot work at all stops the run."""
        try:
            vectors = await self._embedder.embed_documents([embedding_text(m) for m in page])
            return list(zip(page, vectors, strict=True)), []
        except EmbedderUnavailable:
            raise
        except Exception:
            if len(page) == 1:
                logger.warning("the new model failed on a message", extra={"message_id": str(page[0].id)})
                return [], list(page)
        built, failed = [], []
        for message in page:
            one, bad = await self._embed([message])
            built += one
            failed += bad
        return built, failed
