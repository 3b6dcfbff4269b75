from django import template
from django.templatetags.static import static

from frontend import assets

register = template.Library()


@register.simple_tag
def plotly_js() -> str:
    """The versioned, compressed, long-cached plotly.js URL (frontend.assets)."""
    return static(assets.url())
