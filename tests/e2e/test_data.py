"""Browser: a data scientist creates a stream in the UI, sends records with curl's
request (and mosquitto_pub's, when a broker answers), watches the rate and the latest
records move, sees a record quarantined, fixes the schema and releases it."""

import time

import pytest
import requests

from data.models import QuarantinedRecord, Stream
from tests.e2e.conftest import login
from tests.factories import UserFactory, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_empty_state_then_create_send_watch_quarantine_release(live_asgi, browser, shot_dir):
    owner = UserFactory(username="dana")
    make_project(owner=owner, slug="plant", name="Plant floor")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(e))
    login(page, live_asgi, "dana")
    page.goto(f"{live_asgi}/data/")
    assert page.locator(".empty-state h2").inner_text() == "No data streams yet"
    page.screenshot(path=str(shot_dir / "data-empty.png"))

    page.click("text=Create your first stream")
    page.fill("input[name=name]", "Line sensors")
    page.click("form.job-form button[type=submit]")
    page.wait_for_url(f"{live_asgi}/data/plant/line-sensors/")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("mlpi_")
    assert token in page.locator("#example-curl").inner_text()

    url = f"{live_asgi}/ingest/plant/line-sensors"
    headers = {"Authorization": f"Bearer {token}"}
    for i in range(30):
        body = [{"n": i * 20 + j, "sensor": f"s{j}", "temperature": 20 + (i + j) % 7 * 0.5} for j in range(20)]
        assert requests.post(url, json=body, headers=headers, timeout=10).status_code == 202
    bad = requests.post(url, json={"n": 600, "sensor": "s9", "temperature": "broken"}, headers=headers, timeout=10)
    assert bad.status_code == 202 and bad.json()["quarantined"] == 1

    wait_until(lambda: page.locator('#stream-numbers [data-field="records"]').inner_text() == "600")
    wait_until(lambda: page.locator("#held-count").inner_text() == "1")
    assert page.locator("#preview tbody tr").count() == 10
    assert "temperature" in page.locator("#preview thead").inner_text().lower()
    assert "broken" in page.locator("#quarantine-rows").inner_text()
    wait_until(lambda: float(page.locator('#stream-numbers [data-field="rate"]').inner_text()) > 0, timeout=15)
    assert page.locator("#rate-chart .main-svg").count() > 0
    page.screenshot(path=str(shot_dir / "data-stream.png"), full_page=True)

    schema = '{"type": "object", "properties": {"temperature": {"type": ["number", "string"]}}, "required": ["sensor"]}'
    page.fill("#schema-text", schema)
    page.click("button[value=schema]")
    page.click("#release")
    assert "Released 1 record" in page.locator(".messages").inner_text()
    record = QuarantinedRecord.objects.get()
    assert record.status == "released" and record.released_seq == 600
    wait_until(lambda: page.locator("#held-count").inner_text() == "0")

    page.goto(f"{live_asgi}/data/")
    wait_until(lambda: page.locator('tr[data-stream] [data-field="records"]').inner_text() == "601")
    page.screenshot(path=str(shot_dir / "data-list.png"))
    assert Stream.objects.get().records_total == 601
    assert errors == []


def test_an_mqtt_stream_made_in_the_ui_takes_the_pages_mosquitto_pub_example(live_asgi, browser, shot_dir, tmp_path):
    import shlex
    import shutil
    import subprocess
    import threading

    from data import mqtt
    from tests.data.broker import Mosquitto

    if shutil.which("mosquitto_pub") is None:
        pytest.skip("no mosquitto_pub: `apt-get install mosquitto-clients`")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    stop = threading.Event()
    subscriber = threading.Thread(target=mqtt.run, args=(stop,), kwargs={"interval": 0.2}, daemon=True)
    try:
        owner = UserFactory(username="mo")
        make_project(owner=owner, slug="hall", name="Hall")
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        login(page, live_asgi, "mo")
        page.goto(f"{live_asgi}/data/new/")
        page.fill("input[name=name]", "Hall temps")
        page.select_option("select[name=source]", "mqtt")
        page.fill("input[name=mqtt_url]", broker.url)
        page.fill("textarea[name=mqtt_topics]", "hall/+/temp")
        page.click("form.job-form button[type=submit]")
        page.wait_for_url(f"{live_asgi}/data/hall/hall-temps/")
        subscriber.start()
        example = page.locator("#example-mqtt").inner_text().replace("\\\n", " ")
        assert example.startswith(f"mosquitto_pub -h 127.0.0.1 -p {broker.port}")

        def published():
            subprocess.run(shlex.split(example), check=True, timeout=10)
            time.sleep(0.5)
            return Stream.objects.get(slug="hall-temps").records_total > 0

        wait_until(published, timeout=30)  # until the subscriber has its session
        wait_until(lambda: page.locator('#stream-numbers [data-field="records"]').inner_text() != "0")
        assert "s1" in page.locator("#preview tbody").inner_text()
        page.screenshot(path=str(shot_dir / "data-mqtt.png"), full_page=True)
    finally:
        stop.set()
        if subscriber.is_alive():
            subscriber.join(15)
        broker.stop()
