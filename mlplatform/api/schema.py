"""OpenAPI descriptions of our authentication classes (loaded by PlatformConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "mlplatform.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A personal API token (mlp_…)."}


class BasicScheme(OpenApiAuthenticationExtension):
    target_class = "mlplatform.authentication.TokenOrPasswordBasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "basic", "description": "Username with password or an API token."}
