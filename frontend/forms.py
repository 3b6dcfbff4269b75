from django import forms

from mlplatform.roles import Role
from projects.models import slug_validator


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.CharField(
        max_length=50,
        required=False,
        validators=[slug_validator],
        help_text="Used in URLs and experiment names. Leave empty to derive it from the name.",
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False, max_length=20000)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.DATA_SCIENTIST)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'laptop mlflow' or 'CI'.")
    project = forms.ChoiceField(
        required=False, help_text="Limit the token to one project (recommended for automation)."
    )
    expires_in_days = forms.TypedChoiceField(
        coerce=int, choices=[(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")], initial=90
    )

    def __init__(self, *args, projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "All my projects")] + [(p.slug, p.name) for p in projects]
