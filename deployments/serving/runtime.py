"""Loaded revisions and the routing table, swapped atomically on config changes.

A new config is applied by loading every revision it names that this process does not
hold yet (in a thread, with a warm-up call), and only then replacing the routing table
in one assignment. A request already routed keeps its revision object until it is
answered; the old revision's batcher is closed and finishes what it queued. So a swap
never drops a request, and a revision that fails to load leaves the endpoint on what
it served before."""

import asyncio
from dataclasses import dataclass
import functools
import logging
import random
from typing import Any

import numpy as np

from deployments.serving import schema as schema_mod
from deployments.serving.batcher import MicroBatcher
from deployments.serving.config import CANARY, SHADOW, ConfigSource, EndpointSpec, RevisionSpec
from deployments.serving.loader import LoadedModel, load_model
from deployments.serving.oip import InferRequest, output_names
from deployments.serving.protocol import jsonable

logger = logging.getLogger(__name__)


class RevisionRuntime:
    def __init__(self, spec: RevisionSpec, model: LoadedModel, *, max_batch_rows: int, max_wait: float) -> None:
        self.spec = spec
        self.model = model
        schema = model.schema
        self.batcher = MicroBatcher(
            model.predict,
            name=str(spec.id),
            max_batch_rows=max_batch_rows,
            max_wait=max_wait,
            batchable=schema is not None,
            inline=model.accelerated,
        )

    @property
    def id(self) -> int:
        return self.spec.id

    @functools.cached_property
    def output_names(self) -> list[str]:
        return output_names(self.model.signature_outputs)

    def prepare(self, parsed: Any) -> Any:
        schema = self.model.schema
        if isinstance(parsed, InferRequest):
            parsed = parsed.for_schema(schema)
        return schema.prepare(parsed) if schema is not None else schema_mod.without_schema(parsed)

    async def predict(self, prepared: Any) -> Any:
        return jsonable(await self.batcher.submit(prepared))

    def loggable(self, prepared: Any) -> dict[str, list]:
        """Inputs by feature name, the way drift reads them."""
        if isinstance(prepared, np.ndarray):
            schema = self.model.schema
            if schema is not None and schema.columns and prepared.ndim == 2:
                return {name: prepared[:, i].tolist() for i, name in enumerate(schema.names)}
            return {"tensor": prepared.tolist()}
        return {str(k): v.tolist() for k, v in prepared.items()}


@dataclass
class EndpointRuntime:
    spec: EndpointSpec
    champion: RevisionRuntime | None
    challenger: RevisionRuntime | None

    def route(self) -> tuple[RevisionRuntime | None, RevisionRuntime | None]:
        """(the revision that answers, a shadow to mirror to or None)."""
        challenger = self.challenger
        if challenger is None:
            return self.champion, None
        if self.spec.mode == SHADOW:
            return self.champion, challenger
        if self.spec.mode == CANARY and random.random() < self.spec.traffic:  # noqa: S311 - traffic split, not crypto
            return challenger, None
        return self.champion, None


def _warm_up(model: LoadedModel) -> None:
    schema = model.schema
    if schema is not None and schema.all_numeric:
        model.predict(np.zeros((1, len(schema.columns))))


def _load(spec: RevisionSpec) -> LoadedModel:
    model = load_model(spec.model_dir, trusted=spec.trusted)
    _warm_up(model)
    return model


class ServingState:
    def __init__(self, source: ConfigSource) -> None:
        self.source = source
        self.endpoints: dict[str, EndpointRuntime] = {}
        self.revisions: dict[int, RevisionRuntime] = {}
        self.failed: dict[int, str] = {}
        self.version: str | None = None

    async def refresh(self) -> bool:
        """Apply the source's config if its version moved; True when it did."""
        version = await asyncio.to_thread(self.source.version)
        if version == self.version:
            return False
        specs = await asyncio.to_thread(self.source.load)
        await self.apply(specs)
        self.version = version
        return True

    async def apply(self, specs: dict[str, EndpointSpec]) -> None:
        wanted: dict[int, tuple[RevisionSpec, EndpointSpec]] = {}
        for endpoint in specs.values():
            for revision in endpoint.revisions():
                wanted.setdefault(revision.id, (revision, endpoint))
        loaded = dict(self.revisions)
        for rev_id, (revision, endpoint) in wanted.items():
            if rev_id in loaded or rev_id in self.failed:
                continue
            loaded[rev_id] = await self._load(revision, endpoint)
        table = {slug: self._endpoint(spec, loaded) for slug, spec in specs.items()}
        # The swap: one assignment; requests in flight keep the objects they hold.
        self.endpoints = table
        in_use = {r.id for e in table.values() for r in (e.champion, e.challenger) if r is not None}
        retired = [r for rid, r in loaded.items() if rid not in in_use and r is not None]
        self.revisions = {rid: r for rid, r in loaded.items() if rid in in_use and r is not None}
        for revision in retired:
            revision.batcher.close()

    async def _load(self, revision: RevisionSpec, endpoint: EndpointSpec) -> RevisionRuntime | None:
        try:
            model = await asyncio.to_thread(_load, revision)
        except Exception as exc:
            logger.warning("revision %s failed to load: %s", revision.id, exc)
            self.failed[revision.id] = str(exc)
            await asyncio.to_thread(self.source.report, revision_id=revision.id, loaded=False, error=str(exc)[:2000])
            return None
        await asyncio.to_thread(self.source.report, revision_id=revision.id, loaded=True)
        return RevisionRuntime(
            revision, model, max_batch_rows=endpoint.max_batch_rows, max_wait=endpoint.max_wait_ms / 1000
        )

    def _endpoint(self, spec: EndpointSpec, loaded: dict[int, RevisionRuntime | None]) -> EndpointRuntime:
        champion = loaded.get(spec.champion.id) if spec.champion else None
        if champion is None and spec.champion is not None:
            # The new champion failed to load: keep answering with the previous one.
            previous = self.endpoints.get(spec.slug)
            champion = previous.champion if previous else None
        challenger = loaded.get(spec.challenger.id) if spec.challenger else None
        return EndpointRuntime(spec=spec, champion=champion, challenger=challenger)
