"""The sign-in forms (the platform's and the admin's), with the throttle in front of
the password check."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from mlplatform import login_throttle


class ThrottledLoginMixin:
    """Replaces AuthenticationForm.clean's authenticate() with the throttled one; a
    lockout is a form error saying so and when to try again."""

    locked_out: login_throttle.LockedOut | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = login_throttle.password_authenticate(
                    request=self.request,
                    username=username,
                    password=password,
                    address=login_throttle.client_address(self.request.META) if self.request else None,
                    via="login",
                )
            except login_throttle.LockedOut as exc:
                self.locked_out = exc
                raise ValidationError(exc.message, code="locked_out") from exc
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class LoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """A locked-out sign-in answers 429 with Retry-After, the form saying the same."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked_out is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.locked_out.retry_after)
        return response
