"""DRF authentication: bearer tokens and HTTP basic (the MLflow client's two modes),
besides the browser session. Either way the request user carries `api_token`, so a
project-scoped token reaches its project only (see projects.selectors)."""

import base64
import binascii

from rest_framework import authentication, exceptions

from mlplatform import login_throttle
from mlplatform.errors import PermissionDenied
from mlplatform.services import api_token_authenticate


def authenticate_token(raw: str):
    try:
        token = api_token_authenticate(raw)
    except PermissionDenied as exc:
        raise exceptions.AuthenticationFailed(exc.message) from exc
    user = token.user
    user.api_token = token
    return user, token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Token contains invalid characters.") from exc
        return authenticate_token(raw)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class TokenOrPasswordBasicAuthentication(authentication.BaseAuthentication):
    """HTTP basic with the user's password, or with an API token as the password
    (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD). Empty passwords never pass;
    passwords go through the sign-in throttle (429 Throttled while locked out)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"basic":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid basic header.")
        try:
            username, _, password = base64.b64decode(header[1]).decode().partition(":")
        except (binascii.Error, UnicodeError) as exc:
            raise exceptions.AuthenticationFailed("Invalid basic header.") from exc
        if not username or not password:
            raise exceptions.AuthenticationFailed("Username and password are required.")
        if password.startswith("mlp_"):
            user, token = authenticate_token(password)
            if user.username != username:
                raise exceptions.AuthenticationFailed("The token does not belong to this user.")
            return user, token
        try:
            user = login_throttle.password_authenticate(
                request=getattr(request, "_request", None),
                username=username,
                password=password,
                address=login_throttle.client_address(request.META),
                via="basic",
            )
        except login_throttle.LockedOut as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.message) from exc
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("Invalid username or password.")
        return user, None

    def authenticate_header(self, request):
        return 'Basic realm="api"'
