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
import json
import logging
from pathlib import Path
import random
import time
from typing import Any

import numpy as np

from deployments.serving import schema as schema_mod
from deployments.serving.batcher import MicroBatcher
from deployments.serving.config import CANARY, SHADOW, ConfigSource, EndpointSpec, RevisionSpec
from deployments.serving.loader import LoadedModel, load_model, read_mlmodel
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
            inline=model.inline,
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


_ZERO = {"double": 0.0, "float": 0.0, "long": 0, "integer": 0, "boolean": False, "string": ""}


def warm_up_input(model_dir: str, schema: schema_mod.InputSchema | None) -> tuple[Any, str]:
    """(what the warm-up call sends, how it was chosen): the version's saved input
    example, else one row built from its signature; (None, why) when neither fits."""
    example = _input_example(Path(model_dir))
    if example is not None:
        return example, "input example"
    if schema is None:
        return None, "warm-up skipped: the version has no signature and no input example"
    if schema.tensor_dtype:
        shape = [1 if s in (-1, None) else s for s in (schema.tensor_shape or (1,))]
        return np.zeros(shape, dtype=schema.tensor_dtype).tolist(), "a zero tensor from the signature"
    unknown = [c.name for c in schema.columns if c.required and c.type not in _ZERO]
    if unknown:
        return None, f"warm-up skipped: no sample value for the signature's columns {unknown}"
    return {c.name: [_ZERO[c.type]] for c in schema.columns if c.type in _ZERO}, "a row built from the signature"


def _input_example(model_dir: Path) -> Any:
    try:
        info = (read_mlmodel(model_dir).get("saved_input_example_info") or {}).get("artifact_path")
        if not info or not (model_dir / info).is_file():
            return None
        data = json.loads((model_dir / info).read_text())
    except Exception:  # an unreadable example only means another warm-up input
        return None
    if isinstance(data, dict) and "columns" in data and "data" in data:
        return {str(c): [row[i] for row in data["data"]] for i, c in enumerate(data["columns"])}
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return data
    return None


# A predict this quick (median of the warm-up calls) runs on the event loop itself:
# handing it to the revision's thread costs more in GIL hand-offs than it saves.
INLINE_BELOW_SECONDS = 0.0005
WARM_UP_CALLS = 5


def _warm_up(model: LoadedModel, model_dir: str) -> str:
    """A few calls before the revision takes traffic, so the first client does not pay
    for lazy initialisation (and to learn whether predict is quick enough to run
    inline); returns how it went, for the revision's status reason."""
    parsed, how = warm_up_input(model_dir, model.schema)
    if parsed is None:
        logger.info("revision in %s: %s", model_dir, how)
        model.inline = model.accelerated
        return how
    schema = model.schema
    prepared = schema.prepare(parsed) if schema is not None else schema_mod.without_schema(parsed)
    timings = []
    for _ in range(WARM_UP_CALLS):
        started = time.perf_counter()
        model.predict(prepared)
        timings.append(time.perf_counter() - started)
    model.inline = model.accelerated or sorted(timings)[len(timings) // 2] < INLINE_BELOW_SECONDS
    return f"warmed up with {how}"


def _load(spec: RevisionSpec) -> tuple[LoadedModel, str]:
    model = load_model(spec.model_dir, trusted=spec.trusted, fast_path=spec.fast_path)
    note = _warm_up(model, spec.model_dir)
    return model, note


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
        replaced: list[RevisionRuntime] = []
        for rev_id, (revision, endpoint) in wanted.items():
            held = loaded.get(rev_id)
            if held is not None and held.spec.fast_path != revision.fast_path:
                # The fast path was switched: load the revision again the other way.
                self.failed.pop(rev_id, None)
                fresh = await self._load(revision, endpoint)
                if fresh is not None:
                    replaced.append(held)
                    loaded[rev_id] = fresh
                continue
            if rev_id in loaded or rev_id in self.failed:
                continue
            loaded[rev_id] = await self._load(revision, endpoint)
        table = {slug: self._endpoint(spec, loaded) for slug, spec in specs.items()}
        # The swap: one assignment; requests in flight keep the objects they hold.
        self.endpoints = table
        in_use = {r.id for e in table.values() for r in (e.champion, e.challenger) if r is not None}
        retired = [r for rid, r in loaded.items() if rid not in in_use and r is not None]
        self.revisions = {rid: r for rid, r in loaded.items() if rid in in_use and r is not None}
        for revision in [*retired, *replaced]:
            revision.batcher.close()

    async def _load(self, revision: RevisionSpec, endpoint: EndpointSpec) -> RevisionRuntime | None:
        try:
            model, note = await asyncio.to_thread(_load, revision)
        except Exception as exc:
            logger.warning("revision %s failed to load: %s", revision.id, exc)
            self.failed[revision.id] = str(exc)
            await asyncio.to_thread(self.source.report, revision_id=revision.id, loaded=False, error=str(exc)[:2000])
            return None
        await asyncio.to_thread(
            self.source.report, revision_id=revision.id, loaded=True, error=note, loader=model.loader
        )
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
