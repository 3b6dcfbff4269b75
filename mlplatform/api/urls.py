from django.urls import path

from mlplatform.api import views

urlpatterns = [
    path("me/", views.MeApi.as_view(), name="api-me"),
    path("tokens/", views.TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:token_id>/", views.TokenDetailApi.as_view(), name="api-token"),
]
