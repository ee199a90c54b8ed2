"""What a caller sees of the deepseek engine's presets: the tokens and tiles a page cost, and "up to"."""

import openai
import pytest
from PIL import Image

from gpu_worker.app import build_app
from gpu_worker.protocol import MODES
from gpu_worker.settings import WorkerSettings
from gpu_worker.storage import ResultStore
from tests.utils.documents import to_bytes
from tests.utils.requests import data_url, image_message
from tests.utils.servers import WORKER_SECRET, ServerThread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(deepseek_engine, local_s3, tmp_path_factory):
    cfg = WorkerSettings(results_bucket=local_s3.bucket, s3_endpoint_url=local_s3.endpoint,
                         worker_shared_secret=WORKER_SECRET, spool_dir=str(tmp_path_factory.mktemp("spool")))  # fmt: skip
    server = ServerThread(
        build_app(cfg, engine=deepseek_engine, store=ResultStore(cfg)), settings=cfg
    ).start()
    yield openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    server.stop()


def test_a_response_reports_the_image_tokens_and_tiles_the_page_cost(client):
    portrait_a4 = data_url(to_bytes(Image.new("RGB", (1654, 2339), "white"), "PNG"))
    costs = {}
    for mode in ("small", "large"):
        reply = client.chat.completions.create(model="deepseek-ocr-2", messages=image_message(portrait_a4),
                                               extra_body={"task": "ocr", "mode": mode}, max_tokens=1)  # fmt: skip
        ocr = reply.model_extra["ocr"]
        costs[mode] = (ocr["image_tokens"], ocr["tiles"])
        assert reply.usage.prompt_tokens > ocr["image_tokens"]
    # `large` allows 4 tiles, but the grid nearest a portrait page is 1 x 2: the same cost as `small`
    assert costs == {"small": (545, [1, 2]), "large": (545, [1, 2])}
    tiny = client.chat.completions.create(model="deepseek-ocr-2", messages=image_message(portrait_a4),
                                          extra_body={"task": "ocr", "mode": "tiny"}, max_tokens=1)  # fmt: skip
    assert (tiny.model_extra["ocr"]["image_tokens"], tiny.model_extra["ocr"]["tiles"]) == (257, None)


def test_models_describe_each_preset_as_a_ceiling(client):
    cards = {card.id: card.model_extra for card in client.models.list().data}
    for card in cards.values():
        for mode in card["modes"]:
            assert mode["description"].startswith(f"up to {MODES[mode['name']].image_tokens} image tokens")
