"""`mlp_client.Client`: every `mlp` command is one call here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import csv
import json
import os
from pathlib import Path
import re
import time
from typing import Any

from mlp_client import config
from mlp_client.bundle import ProgressReader, make_bundle
from mlp_client.data import Data, Datasets
from mlp_client.errors import Failed, MlpError, NotFound, Refused, TimedOut, UsageError
from mlp_client.http import Http
from mlp_client.tables import Record, Table

TERMINAL_JOB = {"succeeded", "failed", "cancelled", "timed_out"}


def parse_duration(text: str | float | int) -> float:
    """`90`, `90s`, `15m`, `1h`, `1h30m` → seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = re.fullmatch(r"\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text)
    if not text.strip() or parts is None:
        raise UsageError(f"'{text}' is not a duration; write e.g. 90s, 15m or 1h.")
    hours, minutes, seconds = parts.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def split_model(name: str, default_project: str = "") -> tuple[str, str]:
    project, _, short = name.rpartition("/")
    project = project or default_project
    if not project or not short:
        raise UsageError(f"Name the model as PROJECT/MODEL, got '{name}'.")
    return project, short


class _Api:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._http = client.http


class Projects(_Api):
    def list(self) -> Table:
        rows = self._client.paged("projects.list")
        cols = ["slug", "name", "my_role", "owner", "member_count", "updated_at"]
        return Table(rows, [c for c in cols if not rows or c in rows[0]], title="Projects")

    def get(self, slug: str) -> Record:
        return Record(self._http.call("projects.get", slug=slug))

    def kpis(self, slug: str) -> Table:
        rows = self._http.call("projects.kpis", slug=slug)
        return Table(rows, ["id", "name", "current_value", "target", "status", "unit"], title=f"KPIs of {slug}")


class Kpis(_Api):
    def record(self, project: str, kpi: str, value: float, *, at: str | None = None) -> Record:
        kpis = self._http.call("projects.kpis", slug=project)
        match = [k for k in kpis if k["name"] == kpi or str(k["id"]) == str(kpi)]
        if not match:
            names = ", ".join(k["name"] for k in kpis) or "none"
            raise NotFound(f"Project '{project}' has no KPI '{kpi}' (its KPIs: {names}).")
        body: dict[str, Any] = {"value": value}
        if at:
            body["recorded_at"] = at
        point = self._http.call("kpis.record", kpi_id=match[0]["id"], json=body)
        return Record({"kpi": match[0]["name"], **point})


class Jobs(_Api):
    def list(self, *, project: str | None = None, status: str | None = None) -> Table:
        params = {k: v for k, v in {"project": project, "status": status}.items() if v}
        rows = self._client.paged("jobs.list", params=params)
        return Table(rows, ["id", "project", "name", "status", "executor", "run_id", "created_at"], title="Jobs")

    def get(self, job_id: int) -> Record:
        return Record(self._http.call("jobs.get", job_id=job_id))

    def limits(self) -> dict:
        return self._http.call("jobs.limits")

    def submit(
        self,
        path: str | Path,
        *,
        project: str,
        params: dict | None = None,
        command: list[str] | None = None,
        image: str | None = None,
        executor: str = "local",
        name: str = "",
        experiment: str = "",
        resources: dict | None = None,
        env: dict | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> Record:
        """A .py file is sent as the job's script; a directory as a zip bundle (honouring
        .gitignore/.mlpignore). `on_progress(phase, done, total)` follows bundling and upload."""
        path = Path(path)
        fields: dict[str, Any] = {"project": project, "executor": executor, "params": params or {}}
        for key, value in (("image", image), ("name", name), ("experiment_name", experiment)):
            if value:
                fields[key] = value
        for key, value in (("command", command), ("resources", resources), ("env", env)):
            if value:
                fields[key] = value
        if path.is_file():
            fields["script"] = path.read_text(encoding="utf-8")
            return Record(self._http.call("jobs.submit", json=fields))
        if not path.is_dir():
            raise UsageError(f"{path} is neither a file nor a directory.")
        return Record(self._submit_bundle(path, fields, on_progress))

    def _submit_bundle(self, path: Path, fields: dict, on_progress) -> dict:
        progress = on_progress or (lambda phase, done, total: None)
        total_size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        done = [0]

        def bundled(size: int) -> None:
            done[0] += size
            progress("bundle", done[0], total_size)

        data = make_bundle(path, on_file=bundled)
        limit = self.limits()["bundle_max_bytes"]
        if len(data) > limit:
            raise Refused(
                f"The bundle of {path} is {len(data):,} bytes; the server's limit is {limit:,} bytes. "
                "Leave large files out with .mlpignore (data belongs in datasets or artifacts)."
            )
        sent = [0]

        def uploaded(size: int) -> None:
            sent[0] += size
            progress("upload", min(sent[0], len(data)), len(data))

        form = {k: json.dumps(v) if k in ("command", "params", "env", "resources") else v for k, v in fields.items()}
        files = {"bundle": (f"{path.resolve().name or 'code'}.zip", ProgressReader(data, uploaded), "application/zip")}
        return self._http.call("jobs.submit", data=form, files=files)

    def cancel(self, job_id: int) -> Record:
        return Record(self._http.call("jobs.cancel", job_id=job_id))

    def rerun(self, job_id: int, *, params: dict | None = None) -> Record:
        changes = {"params": params} if params else {}
        return Record(self._http.call("jobs.rerun", job_id=job_id, json={"changes": changes}))

    def log_lines(self, job_id: int, *, follow: bool = False, interval: float = 1.0) -> Iterator[str]:
        """Log lines as they come; with `follow`, until the job ends."""
        after = -1
        while True:
            page = self._http.call("jobs.logs", job_id=job_id, params={"after": after, "limit": 1000})
            for line in page["lines"]:
                yield line["text"]
            after = page["next_after"]
            if page["lines"]:
                continue
            if not follow or page["finished"]:
                return
            time.sleep(interval)

    def wait(
        self,
        job_id: int,
        *,
        timeout: float | None = None,
        interval: float = 1.0,
        on_poll: Callable[[dict], None] | None = None,
    ) -> Record:
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            job = self._http.call("jobs.get", job_id=job_id)
            if on_poll:
                on_poll(job)
            if job["status"] in TERMINAL_JOB:
                return Record(job)
            if deadline and time.monotonic() > deadline:
                raise TimedOut(f"Job {job_id} is still {job['status']} after {timeout:.0f}s.")
            time.sleep(interval)


class Sweeps(_Api):
    def submit(
        self,
        script: str | Path,
        *,
        project: str,
        name: str,
        space: dict[str, list],
        metric: str,
        goal: str = "max",
        strategy: str = "grid",
        trials: int | None = None,
        max_concurrency: int = 2,
        executor: str = "local",
    ) -> Record:
        body: dict[str, Any] = {
            "project": project,
            "name": name,
            "space": space,
            "metric": metric,
            "goal": goal,
            "strategy": strategy,
            "max_concurrency": max_concurrency,
            "job": {"script": Path(script).read_text(encoding="utf-8"), "executor": executor},
        }
        if trials:
            body["trials"] = trials
        return Record(self._http.call("sweeps.submit", json=body))

    def get(self, sweep_id: int) -> Record:
        return Record(self._http.call("sweeps.get", sweep_id=sweep_id))


class Runs(_Api):
    def experiment_id(self, experiment: str | int, project: str | None = None) -> int:
        """An experiment by id, `PROJECT/NAME`, or NAME (with `project`)."""
        if str(experiment).isdigit():
            return int(experiment)
        slug, _, name = str(experiment).rpartition("/")
        slug = slug or project or ""
        rows = self._client.paged("experiments.list", params={"project": slug} if slug else {})
        found = [e for e in rows if e["name"] == name or e["name"] == str(experiment)]
        if len(found) != 1:
            where = f" in project '{slug}'" if slug else ""
            if not found:
                raise NotFound(f"No experiment '{name}'{where}.")
            raise UsageError(f"'{name}' names {len(found)} experiments; write PROJECT/NAME or the id.")
        return found[0]["id"]

    def search(
        self,
        experiment: str | int,
        *,
        filter: str = "",  # noqa: A002 - the name MLflow users know
        order_by: str = "",
        columns: list[str] | None = None,
        max_results: int = 100,
        project: str | None = None,
    ) -> Table:
        exp_id = self.experiment_id(experiment, project)
        params: dict[str, Any] = {"filter": filter, "order_by": order_by, "page_size": max_results}
        if columns:
            params["columns"] = columns
        page = self._http.call("runs.search", experiment_id=exp_id, params=params)
        rows = [
            {k: v for k, v in run.items() if k != "values"} | dict(run.get("values") or {}) for run in page["results"]
        ]
        base = ["run_id", "run_name", "status", "start_time"]
        return Table(rows, base + list(page["columns"]), title=f"Runs of experiment {exp_id}", total=page["count"])

    def get(self, run_id: str) -> Record:
        return Record(self._http.call("runs.get", run_id=run_id))

    def compare(self, run_ids: list[str]) -> Table:
        body = self._http.call("runs.compare", params={"run_ids": ",".join(run_ids)})
        rows = [
            {"run_id": r["run_id"], "run_name": r["run_name"], "status": r["status"]}
            | {f"params.{k}": v for k, v in r["params"].items()}
            | {f"metrics.{k}": v for k, v in r["metrics"].items()}
            for r in body["runs"]
        ]
        return Table(rows, title="Run comparison")


class Models(_Api):
    def list(self, *, project: str | None = None) -> Table:
        rows = self._client.paged("models.list", params={"project": project} if project else {})
        return Table(rows, ["project", "name", "latest_version", "version_count", "aliases"], title="Models")

    def get(self, name: str) -> Record:
        slug, short = split_model(name)
        return Record(self._http.call("models.get", slug=slug, name=short))

    def register(self, source: str, name: str) -> Record:
        """`source` is RUN_ID/PATH (the model's path inside the run's artifacts) or a
        `runs:/` or `models:/` URI; `name` is PROJECT/MODEL. Creates the model if new."""
        split_model(name)
        if "://" in source or source.startswith(("runs:/", "models:/")):
            uri, run_id = source, source.removeprefix("runs:/").split("/")[0] if source.startswith("runs:/") else ""
        else:
            run_id, _, artifact_path = source.partition("/")
            if not run_id or not artifact_path:
                raise UsageError(f"Give the model as RUN_ID/PATH (e.g. 3f2a.../model), got '{source}'.")
            uri = f"runs:/{run_id}/{artifact_path}"
        try:
            self._http.call("mlflow.registered_models.create", json={"name": name})
        except Refused as exc:
            if exc.status != 409 and "exists" not in exc.message.lower():
                raise
        except UsageError as exc:
            if "exists" not in exc.message.lower():
                raise
        body = {"name": name, "source": uri, **({"run_id": run_id} if run_id else {})}
        version = self._http.call("mlflow.model_versions.create", json=body)["model_version"]
        return Record({"name": name, "version": int(version["version"]), "source": uri, "run_id": run_id})

    def alias(self, name: str, version: int, alias: str) -> Record:
        slug, short = split_model(name)
        link = self._http.call("models.alias", slug=slug, name=short, alias=alias, json={"version": int(version)})
        return Record({"name": name, **link})


class Endpoints(_Api):
    def list(self) -> Table:
        rows = [_endpoint_row(e) for e in self._client.paged("endpoints.list")]
        return Table(rows, title="Endpoints")

    def status(self, slug: str) -> Record:
        return Record(_endpoint_row(self._http.call("endpoints.get", slug=slug)))

    def deploy(
        self,
        slug: str,
        model: str,
        version: int,
        *,
        canary: float | None = None,
        shadow: bool = False,
        trusted: bool = False,
    ) -> Record:
        """Deploys as champion, or as a canary taking `canary` percent of the traffic,
        or as a shadow. The project's production gate must have passed."""
        if canary is not None and shadow:
            raise UsageError("Choose --canary or --shadow, not both.")
        if canary is not None and not 0 < canary <= 100:
            raise UsageError("--canary is a percentage of the traffic, above 0 and at most 100.")
        if "/" not in model:
            model = f"{self._http.call('endpoints.get', slug=slug)['project']}/{model}"
        role = "canary" if canary is not None else "shadow" if shadow else "champion"
        body = {"model": model, "version": int(version), "role": role, "trusted": trusted}
        if canary is not None:
            body["traffic"] = canary / 100
        return Record(self._http.call("endpoints.deploy", slug=slug, json=body))

    def promote(self, slug: str, *, reason: str = "") -> Record:
        return Record(_endpoint_row(self._http.call("endpoints.promote", slug=slug, json={"reason": reason})))

    def rollback(self, slug: str, *, reason: str = "", target: str = "challenger") -> Record:
        body = {"reason": reason, "target": target}
        return Record(_endpoint_row(self._http.call("endpoints.rollback", slug=slug, json=body)))

    def predict(self, slug: str, payload: dict, *, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return self._http.call("serve.invocations", slug=slug, json=payload, headers=headers, idempotent=True)


def _endpoint_row(e: dict) -> dict:
    def rev(r: dict | None) -> str:
        return f"#{r['number']} {r['model_name']} v{r['model_version']} ({r['status']})" if r else ""

    return {
        "slug": e["slug"],
        "project": e["project"],
        "champion": rev(e.get("champion")),
        "challenger": rev(e.get("challenger")),
        "mode": e.get("challenger_mode", ""),
        "traffic": e.get("traffic"),
        "url": e.get("url"),
    }


def payload_from_file(path: str | Path) -> dict:
    """A CSV becomes MLflow's `dataframe_split`; a JSON file is sent as it is (any of
    MLflow's scoring shapes: dataframe_split, dataframe_records, instances, inputs)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"No file {path}.")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            raise UsageError(f"{path} is empty.")
        return {"dataframe_split": {"columns": rows[0], "data": [[_number(v) for v in row] for row in rows[1:]]}}
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}")
    if isinstance(body, list):
        return {"dataframe_records": body}
    return body


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


class Gates(_Api):
    def list(self, project: str) -> Table:
        rows = [_gate_row(g) for g in self._http.call("gates.list", slug=project)]
        return Table(rows, title=f"Gates of {project}")

    def find(self, project: str, stage: str) -> dict:
        gates = self._http.call("gates.list", slug=project)
        found = [g for g in gates if g["to_stage"].lower() == stage.lower() or g["name"].lower() == stage.lower()]
        if not found:
            stages = ", ".join(g["to_stage"] for g in gates) or "none"
            raise NotFound(f"Project '{project}' has no gate into '{stage}' (its gates lead to: {stages}).")
        undecided = [g for g in found if g["status"] != "decided"]
        return (undecided or found)[-1]

    def status(self, project: str, stage: str) -> Record:
        return Record(_gate_row(self.find(project, stage)))

    def request(self, project: str, stage: str, *, evidence: list[tuple[str, str]] = ()) -> Record:
        """Opens the gate's review (attaching evidence first, e.g. ("run", RUN_ID))."""
        gate = self.find(project, stage)
        if gate["status"] == "decided":
            raise Refused(f"The gate '{gate['name']}' is already decided ({gate['decision']['verdict']}).")
        for kind, ref in evidence:
            self._http.call("gates.evidence", gate_id=gate["id"], json={"kind": kind, "ref_id": ref})
        if gate["status"] == "in_review" and gate["votes"]:
            return Record(_gate_row(gate))
        return Record(_gate_row(self._http.call("gates.review", gate_id=gate["id"])))

    def vote(self, project: str, stage: str, verdict: str, *, comment: str = "") -> Record:
        gate = self.find(project, stage)
        body = {"verdict": verdict, "comment": comment}
        return Record(self._http.call("gates.vote", gate_id=gate["id"], json=body))

    def decide(self, project: str, stage: str, verdict: str, *, rationale: str = "") -> Record:
        gate = self.find(project, stage)
        body = {"verdict": verdict, "rationale": rationale}
        return Record(self._http.call("gates.decide", gate_id=gate["id"], json=body))

    def wait(
        self,
        project: str,
        stage: str,
        *,
        timeout: float = 3600,
        interval: float = 5.0,
        on_poll: Callable[[dict], None] | None = None,
    ) -> Record:
        """Until the gate is decided: Go returns it; No-go or Hold raises Refused (exit 3);
        no decision within `timeout` raises TimedOut (exit 5)."""
        gate_id = self.find(project, stage)["id"]
        deadline = time.monotonic() + timeout
        while True:
            gate = self._http.call("gates.get", gate_id=gate_id)
            if on_poll:
                on_poll(gate)
            decision = gate.get("decision")
            if decision:
                row = _gate_row(gate)
                if decision["verdict"] == "go":
                    return Record(row)
                why = f": {decision['rationale']}" if decision.get("rationale") else ""
                raise Refused(f"Gate '{gate['name']}' decided {decision['verdict']} by {decision['decided_by']}{why}")
            if time.monotonic() >= deadline:
                raise TimedOut(f"Gate '{gate['name']}' is still {gate['status']} after {timeout:.0f}s.")
            time.sleep(min(interval, max(deadline - time.monotonic(), 0.05)))


def _gate_row(g: dict) -> dict:
    decision = g.get("decision") or {}
    return {
        "id": g["id"],
        "name": g["name"],
        "to_stage": g["to_stage"],
        "status": g["status"],
        "quorum": g["quorum"],
        "votes": ", ".join(f"{v['voter']}:{v['verdict']}" for v in g.get("votes") or []),
        "verdict": decision.get("verdict", ""),
        "decided_by": decision.get("decided_by", ""),
    }


class Client:
    """The platform's API. Without arguments it finds the URL and token as `mlp` does
    (MLP_URL/MLP_TOKEN, a profile saved by `mlp login`, MLFLOW_TRACKING_URI/_TOKEN)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        profile: str | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        timeout: float = 60.0,
    ) -> None:
        settings = config.resolve(url=url, token=token, profile=profile)
        retries = int(os.environ.get("MLP_RETRIES", 3)) if retries is None else retries
        backoff = float(os.environ.get("MLP_BACKOFF", 0.5)) if backoff is None else backoff
        self.url = settings.url
        self.http = Http(settings.url, settings.token, retries=retries, backoff=backoff, timeout=timeout)
        self.projects = Projects(self)
        self.kpis = Kpis(self)
        self.jobs = Jobs(self)
        self.sweeps = Sweeps(self)
        self.runs = Runs(self)
        self.models = Models(self)
        self.endpoints = Endpoints(self)
        self.gates = Gates(self)
        self.data = Data(self)
        self.datasets = Datasets(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"<mlp_client.Client {self.url}>"

    def me(self) -> Record:
        return Record(self.http.call("me"))

    def paged(self, route: str, *, params: dict | None = None, limit: int = 10_000, **path: Any) -> list[dict]:
        """Every row of a paginated list (`{"count", "next", "results"}`)."""
        rows: list[dict] = []
        page = 1
        while len(rows) < limit:
            body = self.http.call(route, params={**(params or {}), "page": page, "page_size": 1000}, **path)
            if isinstance(body, list):
                return body
            rows += body["results"]
            if not body.get("next"):
                break
            page += 1
        return rows


__all__ = ["Client", "Failed", "MlpError", "payload_from_file", "parse_duration"]
