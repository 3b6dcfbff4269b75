"""The dataset pages check who asks: a viewer reads, an outsider gets 404, and the
upload form is offered only where the user may make versions."""

from django.test import Client
import pytest

from data.datasets import services
from mlplatform.roles import Role
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def version(dataset_dirs, tmp_path):
    owner, viewer = UserFactory(), UserFactory()
    project = make_project(owner=owner, slug="plant", members={viewer: Role.VIEWER})
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n1,x\n2,y\n")
    made, _ = services.version_from_upload(project=project, name="t", path=path, filename="t.csv", user=owner)
    made.viewer = viewer
    return made


def test_a_viewer_sees_the_version_page_and_no_upload_button(version):
    client = browser_for(version.viewer)
    page = client.get(f"/data/datasets/plant/t/{version.digest}/")
    assert page.status_code == 200 and version.digest.encode() in page.content
    assert b"profile is being computed" in page.content
    listing = client.get("/data/datasets/")
    assert b'id="upload-link"' not in listing.content and b"plant" in listing.content
    assert b"No project to upload to" in client.get("/data/datasets/upload/").content


def test_an_outsider_gets_404_on_every_dataset_page(version):
    client = browser_for(UserFactory())
    for url in (
        f"/data/datasets/plant/t/{version.digest}/",
        "/data/datasets/plant/t/",
        "/data/datasets/plant/t/diff/",
        f"/data/lineage/plant/?node=version:{version.digest}",
    ):
        assert client.get(url).status_code == 404, url
    assert b"No datasets yet" in client.get("/data/datasets/").content


def test_the_lineage_page_explains_a_bad_node(version):
    page = browser_for(version.viewer).get("/data/lineage/plant/?node=run:nope")
    assert page.status_code == 404 and b"No lineage node" in page.content
