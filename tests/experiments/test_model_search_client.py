"""Registry and logged-model search with the real mlflow client against the live server."""

import pytest

from registry import services as registry_services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.slow


def test_registry_and_logged_model_search_with_the_real_client(live_asgi, user, project, token_for, mlflow_client_run):
    """Given models in the caller's project and an `alpha` model in a project the caller
    does not see, when the client searches with MLflow's filter language, then it gets
    MLflow's results, orders and pages, and INVALID_PARAMETER_VALUE for bad filters."""
    stranger = UserFactory()
    hidden = make_project(owner=stranger)
    registry_services.registered_model_create(
        project=hidden, name="alpha-secret", user=stranger, tags=[("team", "growth")]
    )

    result = mlflow_client_run("model_search.py", uri=live_asgi, token=token_for(user, project=project))

    assert result["rm_like"] == ["alpha-clf", "alpha-reg"]
    assert result["rm_ilike"] == ["alpha-clf", "beta-CLF"]
    assert result["rm_like_case"] == ["beta-CLF"]
    assert result["rm_ne"] == ["alpha-clf", "alpha-reg", "beta-CLF"]
    assert result["rm_tag"] == ["alpha-clf", "beta-CLF"]
    assert result["rm_tag_and"] == ["alpha-clf"]
    assert result["rm_tag_ne"] == ["alpha-reg", "gamma"]
    assert result["rm_tag_like"] == ["alpha-clf", "beta-CLF"]
    assert result["rm_order_desc"] == ["gamma", "beta-CLF", "alpha-reg", "alpha-clf"]
    assert result["rm_order_updated"] == 4 and result["rm_order_created"] == 4
    assert result["rm_latest"] == ["3"]
    assert result["rm_pages"] == [["alpha-clf", "alpha-reg", "beta-CLF"], ["gamma"]]
    assert result["rm_injection"] == [] and result["rm_injection2"] == []
    for key in ("rm_bad_attr", "rm_bad_syntax", "rm_bad_op", "rm_bad_order", "rm_too_many"):
        assert result[key] == "INVALID_PARAMETER_VALUE", key
    assert result["still_there"] == 4

    assert result["mv_name"] == ["alpha-clf/1", "alpha-clf/2", "alpha-clf/3"]
    assert result["mv_number"] == ["alpha-clf/3", "alpha-clf/2"]
    assert result["mv_run_in"] == ["alpha-clf/1", "gamma/1"]
    assert result["mv_run_ne"] == ["alpha-clf/3", "alpha-clf/2"]
    assert result["mv_source"] == ["alpha-clf/3"]
    assert result["mv_tag"] == ["alpha-clf/2"]
    # MLflow's default order: last_updated_timestamp DESC, then name, then version DESC.
    assert result["mv_default_order"] == ["alpha-clf/1", "alpha-clf/2", "alpha-clf/3", "gamma/1"]
    assert result["mv_default_by_updated"] is True
    assert result["mv_pages"] == [["alpha-clf/1", "alpha-clf/2", "alpha-clf/3"], ["gamma/1"]]
    for key in ("mv_bad_attr", "mv_bad_in", "mv_bad_number"):
        assert result[key] == "INVALID_PARAMETER_VALUE", key
    assert result["mv_injection"] == []

    assert result["lm_metric"] == ["m-high", "m-mid"]
    assert result["lm_metric_on_eval"] == ["m-high", "m-mid"]
    assert result["lm_metric_on_test"] == ["m-low"]
    assert result["lm_datasets_only"] == 3
    assert result["lm_param"] == ["m-mid"]
    assert result["lm_tag"] == ["m-high"]
    assert result["lm_attrs"] == ["m-mid"]
    assert result["lm_name_in"] == ["m-low", "m-high"]
    assert result["lm_id"] == ["m-mid"]
    assert result["lm_time"] == 3
    assert result["lm_order_metric_eval"] == ["m-high", "m-mid", "m-low"]
    assert result["lm_order_metric_test"] == ["m-low", "m-mid", "m-high"]
    assert [name for name, _ in result["lm_metrics_shape"]] == ["eval", "test"]
    assert result["lm_pages"] == [["m-high", "m-low"], ["m-mid"]]
    assert result["lm_injection"] == []
    for key in ("lm_bad_attr", "lm_bad_op", "lm_bad_syntax", "lm_bad_order"):
        assert result[key] == "INVALID_PARAMETER_VALUE", key


def test_multipart_upload_with_the_real_client(live_asgi, user, project, token_for, mlflow_client_run, artifact_root):
    """Given MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD and a small minimum size, the client
    uploads a 10 kB file in 3 parts through mpu/create, the signed part URLs and
    mpu/complete; the artifact reads back byte for byte and no staging is left."""
    result = mlflow_client_run("multipart_upload.py", uri=live_asgi, token=token_for(user, project=project))
    assert result["parts"] == [3]
    assert result["same_bytes"] is True
    assert result["listing"] == ["data"]
    assert result["data_listing"] == [["data/big.bin", 10_004]]
    run_dir = next(artifact_root.glob(f"*/{result['run_id']}/artifacts"))
    assert sorted(p.name for p in run_dir.iterdir()) == ["data"]  # the aborted upload left nothing
