from django.urls import path

from data import api

P = "projects/<str:slug>/streams/"

urlpatterns = [
    path(P, api.StreamListApi.as_view(), name="api-streams"),
    path(P + "<str:stream>/", api.StreamDetailApi.as_view(), name="api-stream"),
    path(P + "<str:stream>/tokens/", api.TokenListApi.as_view(), name="api-stream-tokens"),
    path(P + "<str:stream>/tokens/<int:token_id>/", api.TokenDetailApi.as_view(), name="api-stream-token"),
    path(P + "<str:stream>/quarantine/", api.QuarantineApi.as_view(), name="api-stream-quarantine"),
    path(P + "<str:stream>/quarantine/release/", api.QuarantineReleaseApi.as_view(), name="api-stream-release"),
    path(P + "<str:stream>/records/", api.RecordsApi.as_view(), name="api-stream-records"),
]
