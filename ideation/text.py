"""User text as HTML: markdown rendered, then sanitised by nh3 (an allow-list), so a
script or event handler typed into any field never reaches a browser as markup."""

from django.utils.safestring import SafeString, mark_safe
import markdown as md
import nh3

TAGS = {"p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "a", "h3", "h4", "hr"}
ATTRIBUTES = {"a": {"href", "title"}}


def render_markdown(text: str) -> SafeString:
    html = md.markdown(text or "", extensions=["sane_lists"], output_format="html")
    clean = nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"})
    return mark_safe(clean)  # noqa: S308 - nh3 has just sanitised it
