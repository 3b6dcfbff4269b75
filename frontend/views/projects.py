from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from frontend.forms import MemberForm, ProjectForm, RoleForm
from frontend.views.common import call_service, get_or_404
from mlplatform.errors import ApplicationError
from mlplatform.errors import PermissionDenied as NotAllowed
from mlplatform.roles import Role
from projects import selectors, services


def _project(request, slug: str, min_role: str = Role.VIEWER):
    try:
        return get_or_404(selectors.project_get, user=request.user, slug=slug, min_role=min_role)
    except NotAllowed as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
def project_list(request):
    return render(request, "frontend/projects/list.html", {"projects": selectors.project_list(user=request.user)})


@login_required
def project_create(request):
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = call_service(form, services.project_create, owner=request.user, **form.cleaned_data)
        if project is not None:
            messages.success(request, f"Project '{project.name}' created.")
            return redirect("project-detail", slug=project.slug)
    return render(request, "frontend/projects/form.html", {"form": form, "title": "New project"})


@login_required
def project_edit(request, slug: str):
    project = _project(request, slug, Role.OWNER)
    initial = {"name": project.name, "slug": project.slug, "description": project.description}
    form = ProjectForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.cleaned_data.items() if k != "slug" or v}
        updated = call_service(form, services.project_update, project=project, actor=request.user, **changes)
        if updated is not None:
            messages.success(request, "Project saved.")
            return redirect("project-detail", slug=updated.slug)
    return render(
        request, "frontend/projects/form.html", {"form": form, "title": f"Edit {project.name}", "project": project}
    )


@login_required
def project_detail(request, slug: str):
    from frontend.views.dashboard import dashboard_context

    project = _project(request, slug)
    return render(
        request,
        "frontend/projects/detail.html",
        {
            "project": project,
            "members": selectors.membership_list(project=project),
            "is_owner": project.my_role == Role.OWNER,
            "member_form": MemberForm(),
            "roles": Role.choices,
            **dashboard_context(request, project),
        },
    )


@login_required
def project_members(request, slug: str):
    project = _project(request, slug, Role.OWNER)
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        membership = call_service(
            form, services.membership_add, project=project, actor=request.user, **form.cleaned_data
        )
        if membership is not None:
            messages.success(request, f"{membership.user.username} joined as {membership.get_role_display()}.")
            return redirect("project-detail", slug=project.slug)
    from frontend.views.dashboard import dashboard_context

    return render(
        request,
        "frontend/projects/detail.html",
        {
            "project": project,
            "members": selectors.membership_list(project=project),
            "is_owner": True,
            "member_form": form,
            "roles": Role.choices,
            **dashboard_context(request, project),
        },
    )


@login_required
@require_POST
def project_member_update(request, slug: str, username: str):
    project = _project(request, slug, Role.OWNER)
    try:
        if request.POST.get("action") == "remove":
            services.membership_remove(project=project, username=username, actor=request.user)
            messages.success(request, f"{username} removed.")
        else:
            form = RoleForm(request.POST)
            if not form.is_valid():
                raise NotAllowed("Choose a valid role.")
            services.membership_change_role(
                project=project, username=username, role=form.cleaned_data["role"], actor=request.user
            )
            messages.success(request, f"{username} is now {Role(form.cleaned_data['role']).label}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("project-detail", slug=project.slug)
