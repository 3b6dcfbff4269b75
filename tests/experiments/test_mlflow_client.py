"""The real mlflow client, unchanged, against our server (live ASGI app, test DB)."""

import pytest

from experiments.models import Experiment, Metric, Run
from registry.models import ModelVersion

pytestmark = pytest.mark.slow


def test_wire_sequence_end_to_end(live_asgi, user, project, token_for, mlflow_client_run):
    """Given a token scoped to a project, when the client runs the reference wire
    sequence, then everything lands in that project and the registered model predicts."""
    token = token_for(user, project=project)
    result = mlflow_client_run("wire.py", "wire-demo", uri=live_asgi, token=token)
    assert result["pred"] == [0, 0, 0]
    assert result["search"] == ["parent"]
    assert result["artifacts"] == ["cfg", "model", "notes.txt"] or result["artifacts"] == ["cfg", "notes.txt"]
    assert result["cfg"] == "cfg/config.json"
    assert result["child_parent"] is True
    assert result["parent_status"] == "FINISHED"
    assert result["loss_history"] == [1.0, 0.6, 0.3]
    assert result["notes"] == "hello artifacts"
    experiment = Experiment.objects.get(pk=result["experiment_id"])
    assert experiment.project == project and experiment.name == "wire-demo"
    assert Run.objects.filter(experiment=experiment).count() == 2
    version = ModelVersion.objects.get(registered_model__project=project, registered_model__name="iris-clf")
    assert version.logged_model_id == result["model_id"]
    assert version.run_id == result["parent_id"]
    assert version.params["C"] == "0.5" and version.source_tags["mlflow.source.name"]
    assert [a.alias for a in version.aliases.all()] == ["champion"]
    assert Metric.objects.filter(run_id=result["parent_id"], key="loss").count() == 3


def test_search_pagination_delete_restore_with_basic_auth(live_asgi, user, token_for, mlflow_client_run):
    """Given HTTP basic with a token as password and no project scope (so plain names
    land in the personal project), the client's search, paging and lifecycle work."""
    result = mlflow_client_run("search_lifecycle.py", uri=live_asgi, token=token_for(user), basic_user=user.username)
    assert result["filtered"] == ["trial-5", "trial-3"]
    assert result["backticks"] == ["trial-1", "trial-2"]
    assert result["like"] == 7 and result["tags"] == 4 and result["children"] == 7
    assert result["dataset"] == ["sweep"] and result["inputs"] == ["toy"]
    assert result["nan"] is True
    assert [len(p) for p in result["pages"]] == [3, 3, 2]
    assert result["pages"][0][0] == "sweep"
    assert result["after_delete"] == 7 and result["deleted_only"] == ["trial-3"] and result["after_restore"] == 8
    assert result["param_change"] == "INVALID_PARAMETER_VALUE"
    assert result["bad_filter"] == "INVALID_PARAMETER_VALUE"
    assert Experiment.objects.get(name="search-demo").project.is_personal
