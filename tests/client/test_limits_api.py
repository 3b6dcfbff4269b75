"""GET /api/v1/jobs/limits/: what `mlp jobs submit` checks before uploading a bundle."""


def test_limits_need_a_signed_in_user_and_follow_the_setting(api, anon_api, settings):
    settings.MLP_JOB_BUNDLE_MAX_BYTES = 1234
    assert api.get("/api/v1/jobs/limits/").data == {"bundle_max_bytes": 1234}
    assert anon_api.get("/api/v1/jobs/limits/").status_code in (401, 403)
