"""transformers pipelines for every head kind: `pipeline(task, model=DIR)` after `import vl`, the inputs
users pass (paths, PIL in every mode, numpy, tensors, lists, batches), the outputs transformers 4 users
know, equality with calling the model directly, and a clear error for each bad input."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from transformers import pipeline

import vl  # noqa: F401 (registers the pipelines)
from vl.errors import InputError, VLError
from vl.modeling import VLConfig, VLModel
from vl.processing import VLProcessor

from .tiny_models import every_head_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return every_head_model(tmp_path_factory.mktemp("pipelines") / "model")


@pytest.fixture(scope="module")
def pipes(model_dir):
    tasks = ["image-captioning", "image-question-answering", "visual-question-generation", "image-tagging", "image-text-retrieval"]
    return {t: pipeline(t, model=str(model_dir)) for t in tasks}


def scene(seed=0, size=40):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_every_task_answers_in_the_transformers_4_shapes(pipes):
    image = scene()
    caption = pipes["image-captioning"](image)
    assert isinstance(caption, list) and set(caption[0]) == {"generated_text"} and isinstance(caption[0]["generated_text"], str)
    answers = pipes["image-question-answering"](image, question="how many circles are there?", top_k=3)
    assert [set(a) for a in answers] == [{"answer", "score"}] * 3
    assert [a["score"] for a in answers] == sorted((a["score"] for a in answers), reverse=True)
    assert {a["answer"] for a in answers} <= {"circle", "2", "yes", "no"}
    question = pipes["visual-question-generation"](image, answer="2", question_type="count")
    assert set(question[0]) == {"generated_text"}
    tags = pipes["image-tagging"](image, top_k=2)
    assert [set(t) for t in tags] == [{"label", "score"}] * 2
    ranked = pipes["image-text-retrieval"](image, texts=["a red circle", "two blue squares"])
    assert {r["text"] for r in ranked} == {"a red circle", "two blue squares"} and sum(r["score"] for r in ranked) == pytest.approx(1)


def test_pipeline_equals_the_model_called_directly(pipes, model_dir):
    model, processor = VLModel.from_pretrained(model_dir).eval(), VLProcessor.from_pretrained(model_dir)
    images = [scene(s) for s in range(3)]
    pixels = processor(images=images)["pixel_values"]
    ids = model.generate(pixels, task="caption", max_new_tokens=9)
    assert [o[0]["generated_text"] for o in pipes["image-captioning"](images, batch_size=3)] == processor.batch_decode(ids)
    q = processor.encode_texts(["how many circles are there?"] * 3, 12)
    logits = model(pixels, task="vqa", question_ids=q["ids"], question_mask=q["mask"])["logits"]
    direct = [a[0]["answer"] for a in model.heads["vqa"].top_answers(logits, k=1)]
    assert [o[0]["answer"] for o in pipes["image-question-answering"](images, question="how many circles are there?", batch_size=2)] == direct


def test_batching_changes_nothing_and_questions_go_one_per_image(pipes):
    images = [scene(s) for s in range(5)]
    vqa = pipes["image-question-answering"]
    questions = ["how many circles are there?", "what shape is the red object?", "is it red?", "2", "yes"]
    one_by_one = [vqa(im, question=q, top_k=2) for im, q in zip(images, questions)]
    batched = vqa(images, question=questions, top_k=2, batch_size=4)
    for a, b in zip(one_by_one, batched):
        assert [x["answer"] for x in a] == [x["answer"] for x in b]
        assert [x["score"] for x in a] == pytest.approx([x["score"] for x in b], abs=1e-5)
    assert pipes["image-captioning"](images, batch_size=4) == [pipes["image-captioning"](im) for im in images]


def test_generation_options_pass_through(pipes):
    captioner = pipes["image-captioning"]
    short = captioner(scene(), max_new_tokens=2)[0]["generated_text"]
    assert len(short.split()) <= 2
    assert captioner(scene(), num_beams=2)[0]["generated_text"] is not None
    assert len(pipes["visual-question-generation"](scene(), answer="2", question_type="count", num_beams=3, num_return_sequences=3)) == 3  # best first
    sampled = captioner(scene(), do_sample=True, top_p=0.9, generate_kwargs={"max_new_tokens": 3})
    assert len(sampled[0]["generated_text"].split()) <= 3
    with pytest.raises(VLError, match="beam search does not sample"):
        captioner(scene(), num_beams=2, do_sample=True)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: str(p),
        lambda p: p,
        lambda p: Image.open(p),
        lambda p: np.asarray(Image.open(p)),
        lambda p: np.asarray(Image.open(p).convert("L")),
        lambda p: torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1),
        lambda p: torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255,
    ],
    ids=["path-str", "pathlib", "PIL", "numpy-HWC-uint8", "numpy-HW-gray", "tensor-CHW-uint8", "tensor-CHW-float"],
)
def test_every_input_kind(pipes, tmp_path, make):
    path = tmp_path / "scene.png"
    scene(3).save(path)
    out = pipes["image-captioning"](make(path))
    assert set(out[0]) == {"generated_text"}


def test_a_batch_tensor_and_an_empty_list(pipes):
    batch = torch.rand(3, 3, 32, 32)
    assert len(pipes["image-tagging"](batch)) == 3
    assert pipes["image-captioning"]([]) == []


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "PA", "I;16", "I", "F", "1", "CMYK"])
def test_every_png_mode_is_read_right(pipes, tmp_path, mode):
    """The color of a pixel survives every mode: 16-bit gray is scaled, not clipped to white."""
    gray = Image.new("L", (8, 8), 128)
    image = {"I;16": Image.fromarray(np.full((8, 8), 128 * 257, np.uint16)), "I": Image.fromarray(np.full((8, 8), 128 * 257, np.int32))}.get(mode)
    image = image if image is not None else gray.convert(mode)
    from vl.data.images import load_image

    value = load_image(image).getpixel((0, 0))
    assert max(abs(v - 128) for v in value) <= (255 if mode == "1" else 2), (mode, value)
    if mode not in ("F", "I", "CMYK", "PA"):  # (modes PNG does not store)
        image.save(tmp_path / "x.png")
        assert set(pipes["image-tagging"](str(tmp_path / "x.png"), top_k=1)[0]) == {"label", "score"}


def test_transparency_is_white_and_tiny_and_huge_images_work(pipes):
    from vl.data.images import load_image

    assert load_image(Image.new("RGBA", (4, 4), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert set(pipes["image-captioning"](Image.new("RGB", (1, 1), "red"))[0]) == {"generated_text"}
    assert set(pipes["image-captioning"](np.zeros((1, 1, 3), np.uint8))[0]) == {"generated_text"}
    huge = Image.new("RGB", (10_000, 10_000), "blue")
    assert load_image(huge).size == (1024, 1024)
    assert set(pipes["image-captioning"](huge)[0]) == {"generated_text"}


def test_bad_inputs_name_the_fix(pipes, tmp_path):
    captioner = pipes["image-captioning"]
    scene().save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.txt").write_text("not an image")
    cases = [
        (str(tmp_path / "cut.jpg"), "damaged or incomplete"),
        (str(tmp_path), "is a directory"),
        (str(tmp_path / "missing.png"), "not found"),
        (str(tmp_path / "notes.txt"), "not an image PIL can read"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((5, 5, 7), np.uint8), "H x W x 3"),
        (np.full((4, 4), np.nan), "NaN"),
        (12, "cannot read an image from a int"),
        ("https://example.com/cat.png", "offline"),
    ]
    for image, message in cases:
        with pytest.raises(InputError, match=message):
            captioner(image)
    with pytest.raises(InputError, match="needs question="):
        pipes["image-question-answering"](scene())
    with pytest.raises(InputError, match="2 values of question= for 3 images"):
        pipes["image-question-answering"]([scene()] * 3, question=["a?", "b?"])
    with pytest.raises(InputError, match="needs question_type="):
        pipes["visual-question-generation"](scene(), answer="2")
    with pytest.raises(InputError, match="non-empty"):
        pipes["image-question-answering"](scene(), question="  ")
    with pytest.raises(InputError, match="texts="):
        pipes["image-text-retrieval"](scene())
    with pytest.raises(InputError, match="takes no colour"):
        captioner(scene(), colour="red")


def test_a_url_fails_within_seconds_when_the_network_is_down(monkeypatch):
    import time

    from vl.data import images

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(images, "URL_TIMEOUT_S", 1.0)
    start = time.perf_counter()
    with pytest.raises(InputError, match="cannot download http://10.255.255.1/cat.png"):
        images.load_image("http://10.255.255.1/cat.png")  # unroutable: a hang without a timeout
    assert time.perf_counter() - start < 5


def test_model_folder_errors(model_dir, tmp_path):
    import shutil

    only_caption = tmp_path / "caption-only"
    model = VLModel.from_pretrained(model_dir)
    VLModel(VLConfig(encoder=model.config.encoder, heads={"caption": model.config.heads["caption"]})).save_pretrained(only_caption)
    VLProcessor.from_pretrained(model_dir).save_pretrained(only_caption)
    with pytest.raises(InputError, match=r"needs a 'vqa' head and this model has none; its heads: caption \(caption\)"):
        pipeline("image-question-answering", model=str(only_caption))
    with pytest.raises(InputError, match="'caption' is not one"):
        pipeline("image-tagging", model=str(model_dir), head="caption")
    no_processor = tmp_path / "no-processor"
    shutil.copytree(only_caption, no_processor)
    for name in ("processor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"):
        (no_processor / name).unlink(missing_ok=True)
    with pytest.raises(InputError, match="has no processor .* copy them from the training run's model folder"):
        pipeline("image-captioning", model=str(no_processor))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    image=st.one_of(
        arrays(st.sampled_from([np.uint8, np.uint16, np.float32, np.bool_, np.int64]), st.tuples(st.integers(1, 40), st.integers(1, 40))),
        arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3, 4]))),
        arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 6))),
        st.text(max_size=20),
        st.integers(),
        st.none(),
    ),
    question=st.one_of(st.text(max_size=60), st.none(), st.integers()),
)
def test_fuzzed_inputs_raise_only_our_clear_errors(pipes, image, question):
    try:
        out = pipes["image-question-answering"](image, question=question)
    except VLError:
        return
    assert set(out[0]) == {"answer", "score"}
