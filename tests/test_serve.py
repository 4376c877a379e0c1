"""The web demo: the Gradio app answers through its API (gradio_client) on 127.0.0.1, each box with
its head; a model without the heads it shows is a clear error."""

import socket

import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tasks.serve import build_app, serve
from vl.errors import InputError

from .tiny_models import every_head_model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model = every_head_model(tmp_path_factory.mktemp("serve") / "model")
    port = free_port()
    app = serve(model, port=port, block=False)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False)
    app.close()


def test_the_app_answers_every_box(client, tmp_path):
    Image.new("RGB", (40, 40), "red").save(tmp_path / "red.png")
    image = handle_file(str(tmp_path / "red.png"))
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {"/caption", "/ask", "/question", "/tag"}
    assert isinstance(client.predict(image, api_name="/caption"), str)
    answers = client.predict(image, "how many circles are there?", api_name="/ask")
    assert {c["label"] for c in answers["confidences"]} <= {"circle", "2", "yes", "no"}
    assert isinstance(client.predict(image, "2", "count", api_name="/question"), str)
    tags = client.predict(image, api_name="/tag")
    assert {c["label"] for c in tags["confidences"]} == {"red", "circle", "red circle"}


def test_a_missing_image_or_question_is_a_message_not_a_crash(client, tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    with pytest.raises(Exception, match="Type a question first"):
        client.predict(handle_file(str(tmp_path / "x.png")), "  ", api_name="/ask")


def test_a_model_without_the_demo_heads(tmp_path):
    with pytest.raises(InputError, match="model folder not found"):
        build_app(tmp_path / "nothing")
