from tests.client.readme_help import ROOT, block, render


def test_the_readme_shows_the_real_help_of_every_command():
    readme = (ROOT / "README.md").read_text()
    assert "## Automation" in readme
    assert block(readme) == render().strip(), "run: python -m tests.client.readme_help"
