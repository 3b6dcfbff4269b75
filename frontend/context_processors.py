"""Navigation for the base layout. Sections register here as their issues land."""

from django.urls import NoReverseMatch, reverse

SECTIONS = [
    ("ideation", "Ideation", "section-ideation"),
    ("projects", "Projects", "project-list"),
    ("experiments", "Experiments", "section-experiments"),
    ("jobs", "Jobs", "job-list"),
    ("models", "Models", "section-models"),
    ("deployments", "Deployments", "section-deployments"),
    ("data", "Data", "section-data"),
]


def navigation(request):
    items = []
    for key, label, url_name in SECTIONS:
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        items.append({"key": key, "label": label, "url": url, "active": request.path.startswith(url) and url != "/"})
    return {"nav_sections": items}
