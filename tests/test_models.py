"""Presets, tokenizer, the VLM wrapper (both families), text / image encoders, device selection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from digiq.device_utils import (
    CPU_BF16_MIN_PARAMS,
    bf16_supported,
    select_device,
    select_precision,
)
from digiq.models import (
    MissingCheckpointError,
    TextEncoder,
    TinyVLMConfig,
    get_preset,
    list_presets,
    train_tokenizer,
)
from digiq.models.image_encoder import SmallCNNEncoder, build_image_encoder
from digiq.models.presets import ImageFeatureSpec
from digiq.models.vlm import MODEL_JSON, VLM

TEST_TINY = TinyVLMConfig(
    vision_hidden=32,
    vision_layers=1,
    vision_heads=2,
    vision_intermediate=64,
    text_hidden=64,
    text_layers=2,
    text_heads=4,
    text_kv_heads=2,
    text_intermediate=128,
    vocab_size=1024,
)
PROMPTS = [
    "There is a cursor in the screen. The touch point is located at [0.1234, 0.5000]. Is this "
    "cursor clicking on any interactive elements? Answer only Yes or No.",
    "Will this action go back? Answer only Yes or No.",
    "Is it?",
]


def screens(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(120, 60), (96, 96), (200, 90)]
    return [rng.integers(0, 255, (*shapes[i % 3], 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture(scope="module", params=["llava", "qwen2_vl"])
def vlm(request: pytest.FixtureRequest) -> VLM:
    return VLM.build_tiny(request.param, TEST_TINY, image_size=32, precision="fp32")


# --- presets ----------------------------------------------------------------------------------


def test_presets_are_listed_and_tiny_needs_no_checkpoint() -> None:
    assert list_presets() == ["llava-1.5-7b", "qwen2-vl-2b", "qwen2-vl-7b", "tiny"]
    tiny = get_preset("tiny")
    assert tiny.vlm.path is None and tiny.vlm.tiny is not None and tiny.vlm.layer == -1
    assert tiny.text_encoder.kind == "minilm" and tiny.text_encoder.dim == 384
    seven = get_preset("llava-1.5-7b", check=False)
    assert (seven.vlm.family, seven.vlm.hidden_dim, seven.vlm.layer) == ("llava", 4096, -1)
    assert seven.training.critic_lr == 1e-5 and seven.training.gamma == 0.95
    assert seven.training.tau == 0.1 and seven.training.grad_clip == 0.01
    assert get_preset("qwen2-vl-7b", check=False).vlm.family == "qwen2_vl"
    assert json.loads(json.dumps(tiny.to_dict()))["vlm"]["family"] == "llava"


def test_missing_checkpoint_names_the_preset_and_the_option(tmp_path: Path) -> None:
    with pytest.raises(MissingCheckpointError, match=r"'llava-1\.5-7b'.*--model-path"):
        get_preset("llava-1.5-7b")
    with pytest.raises(MissingCheckpointError, match="--policy-path"):
        get_preset("qwen2-vl-2b", model_path=str(tmp_path))
    # Only the sections a stage uses are required.
    preset = get_preset("qwen2-vl-2b", require=["vlm"], model_path=str(tmp_path))
    assert preset.vlm.path == str(tmp_path)
    missing = tmp_path / "no-such-checkpoint"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        get_preset("llava-1.5-7b", require=["vlm"], model_path=str(missing))
    with pytest.raises(MissingCheckpointError, match="text-encoder-path"):
        get_preset("tiny", text_encoder_kind="hf")


def test_overrides_apply_and_bad_ones_are_refused() -> None:
    preset = get_preset(
        "tiny", vlm_layer=1, vlm_image_size=64, critic_hidden_dims=[32, 16], lr=None
    )
    assert preset.vlm.layer == 1 and preset.vlm.image_size == 64
    assert preset.critic.hidden_dims == (32, 16)
    with pytest.raises(ValueError, match="unknown preset override 'vlm_colour'"):
        get_preset("tiny", vlm_colour=1)
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        get_preset("huge")
    with pytest.raises(ValueError, match="family"):
        get_preset("tiny", vlm_family="gpt")


def test_vlm_from_preset_refuses_a_checkpoint_of_the_wrong_family(tmp_path: Path) -> None:
    qwen = VLM.build_tiny("qwen2_vl", TEST_TINY, image_size=32, precision="fp32")
    qwen.save(tmp_path / "qwen")
    with pytest.raises(ValueError, match="expects a llava checkpoint"):
        VLM.from_preset("tiny", vlm_path=str(tmp_path / "qwen"))
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        VLM.load(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        VLM.load(tmp_path / "empty")


# --- tokenizer --------------------------------------------------------------------------------


def test_tokenizer_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    a = train_tokenizer(vocab_size=1024)
    b = train_tokenizer(vocab_size=1024)
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert len(a) <= 1024 + 20
    for word in ("Yes", "No", " Yes", " No"):
        assert len(a(word, add_special_tokens=False)["input_ids"]) == 1
    text = 'USER: <image>\nAction Decision: "typed_text": "café ☕" ASSISTANT: Yes'
    ids = a(text, add_special_tokens=False)["input_ids"]
    assert a.convert_tokens_to_ids("<image>") in ids and a.decode(ids) == text
    a.save_pretrained(tmp_path / "tok")
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok", local_files_only=True)
    assert loaded(text, add_special_tokens=False)["input_ids"] == ids
    assert loaded.image_token == "<image>" and loaded.pad_token == "<pad>"


# --- the VLM wrapper --------------------------------------------------------------------------


def test_answer_features_have_the_hidden_size_and_are_batched(vlm: VLM) -> None:
    images = screens(5)
    prompts = (PROMPTS * 2)[:5]
    feats = vlm.answer_features(images, prompts, batch_size=2)
    assert feats.shape == (5, vlm.hidden_size) == (5, 64) and feats.dtype == torch.float32
    one_batch = vlm.answer_features(images, prompts, batch_size=8)
    torch.testing.assert_close(feats, one_batch, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(feats[0], feats[1])  # different prompts, different features


def test_left_and_right_padding_give_the_same_answer_feature(vlm: VLM) -> None:
    images = screens(3)
    left = vlm.prepare(images, PROMPTS, padding_side="left")
    right = vlm.prepare(images, PROMPTS, padding_side="right")
    lengths = left.inputs["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 1  # the prompts really are padded
    assert (left.answer_index == left.inputs["input_ids"].shape[1] - 1).all()
    assert torch.equal(right.answer_index, lengths - 1)
    with torch.no_grad():
        for layer in (-1, 0, 1):
            a = vlm.forward_answer(left, layer=layer).features
            b = vlm.forward_answer(right, layer=layer).features
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_answer_position_is_the_last_prompt_token_of_an_unpadded_forward(vlm: VLM) -> None:
    """The feature equals the hidden state that predicts the answer in a plain HF forward."""
    images, prompts = screens(3), PROMPTS
    feats = vlm.answer_features(images, prompts, layer=-1)
    mid = vlm.answer_features(images, prompts, layer=1)
    logits = vlm.yes_no_logits(images, prompts)
    assert logits.shape == (3, 2)
    yes, no = vlm.yes_no_token_ids
    for i in range(3):
        single = vlm.prepare(images[i : i + 1], prompts[i : i + 1]).inputs
        with torch.no_grad():
            out = vlm.core_model(**single, output_hidden_states=True)
        torch.testing.assert_close(feats[i], out.hidden_states[-1][0, -1], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(mid[i], out.hidden_states[1][0, -1], atol=1e-5, rtol=1e-4)
        expected = out.logits[0, -1, [yes, no]]
        torch.testing.assert_close(logits[i], expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(feats, mid)
    with pytest.raises(ValueError, match="out of range"):
        vlm.answer_features(images, prompts, layer=7)


def test_answer_tokens_are_yes_and_no_after_the_prompt(vlm: VLM) -> None:
    tok = vlm.tokenizer
    prompt = tok(vlm.format_prompt("Q?"), add_special_tokens=False)["input_ids"]
    full = tok(vlm.format_prompt("Q?", "Yes"), add_special_tokens=False)["input_ids"]
    assert full[: len(prompt)] == prompt and full[len(prompt)] == vlm.yes_no_token_ids[0]
    assert tok.decode([vlm.yes_no_token_ids[1]]).strip() == "No"


def test_image_tokens_match_the_vision_tower(vlm: VLM) -> None:
    batch = vlm.prepare(screens(2), PROMPTS[:2])
    image_id = vlm.core_model.config.image_token_id
    counts = (batch.inputs["input_ids"] == image_id).sum(1)
    if vlm.family == "llava":
        assert counts.tolist() == [(32 // 8) ** 2] * 2  # CLS dropped by the default strategy
    else:
        grid = batch.inputs["image_grid_thw"]
        assert counts.tolist() == [int(g.prod()) // 4 for g in grid]


def test_save_load_round_trip_gives_identical_outputs(vlm: VLM, tmp_path: Path) -> None:
    images, prompts = screens(3), PROMPTS
    before_id = vlm.model_id
    path = vlm.save(tmp_path / "vlm")
    assert vlm.model_id != before_id  # every save names new weights
    assert (path / "model.safetensors").is_file()
    meta = json.loads((path / MODEL_JSON).read_text())
    assert meta["family"] == vlm.family and meta["layer"] == -1 and meta["model_id"] == vlm.model_id
    loaded = VLM.load(path, precision="fp32")
    assert (loaded.family, loaded.model_id, loaded.image_size) == (vlm.family, vlm.model_id, 32)
    assert torch.equal(
        loaded.answer_features(images, prompts), vlm.answer_features(images, prompts)
    )
    assert torch.equal(loaded.yes_no_logits(images, prompts), vlm.yes_no_logits(images, prompts))
    assert torch.equal(loaded.image_features(images), vlm.image_features(images))
    assert VLM.load(path, precision="fp32", layer=1).layer == 1


def test_prepare_rejects_bad_input(vlm: VLM) -> None:
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        vlm.prepare(screens(2), ["x"])
    with pytest.raises(ValueError, match="image 0"):
        vlm.prepare([np.zeros((4, 4), np.float32)], ["x"])
    with pytest.raises(ValueError, match="padding_side"):
        vlm.prepare(screens(1), ["x"], padding_side="middle")
    pil = Image.fromarray(screens(1)[0])
    torch.testing.assert_close(
        vlm.answer_features([pil], ["x"]), vlm.answer_features(screens(1), ["x"])
    )


def test_tiny_preset_default_size_runs() -> None:
    vlm = VLM.from_preset("tiny")
    n_params = sum(p.numel() for p in vlm.model.parameters())
    assert 0.5e6 < n_params < 2e6
    assert vlm.answer_features(screens(2), PROMPTS[:2]).shape == (2, 128)
    # Under the CPU bf16 threshold the tiny model runs in fp32 even with "auto".
    assert n_params < CPU_BF16_MIN_PARAMS and vlm.precision.autocast_dtype is None


# --- encoders ---------------------------------------------------------------------------------


def test_image_encoders(vlm: VLM) -> None:
    images = screens(3)
    tower = build_image_encoder(ImageFeatureSpec(), vlm=vlm)
    feats = tower.encode(images)
    assert feats.shape == (3, tower.dim) and np.isfinite(feats).all()
    cnn = build_image_encoder(ImageFeatureSpec(kind="small-cnn", cnn_dim=16, image_size=32))
    assert isinstance(cnn, SmallCNNEncoder)
    a, b = cnn.encode(images), SmallCNNEncoder(16, 32).encode(images)
    assert a.shape == (3, 16) and np.array_equal(a, b)  # seeded: reproducible
    with pytest.raises(ValueError, match="need the VLM"):
        build_image_encoder(ImageFeatureSpec())
    with pytest.raises(ValueError, match="image_features_path"):
        build_image_encoder(ImageFeatureSpec(kind="blip2"))


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder.minilm(cache_size=4)


def test_minilm_embeds_offline_and_caches(minilm: TextEncoder) -> None:
    texts = [
        "Go to ebay.com, search for 'razer kraken'",
        "Open the clock app",
        texts0 := "Set an alarm",
    ]
    vecs = minilm.encode([*texts, texts[0]])
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vecs[0], vecs[3])
    assert minilm.cache_info() == {"hits": 1, "misses": 3, "size": 3}
    again = minilm.encode([texts[1]])
    assert np.array_equal(again[0], vecs[1]) and minilm.cache_info()["hits"] == 2
    minilm.encode(["a", "b"])  # evicts the least recently used beyond 4 strings
    assert minilm.cache_info()["size"] == 4
    # Meaning: a paraphrase is closer than an unrelated instruction.
    para, other = minilm.encode(["look up razer kraken on ebay", texts0])
    assert vecs[0] @ para > vecs[0] @ other + 0.2
    with pytest.raises(ValueError, match="not a single string"):
        minilm.encode("abc")


def test_minilm_batches_by_length_and_returns_vectors_in_input_order() -> None:
    # Uncached strings are embedded longest first (less padding); each vector must still land
    # at its own string's index and equal the string embedded alone.
    encoder = TextEncoder.minilm(batch_size=2)
    texts = ["ok", "search for a red running shoe under fifty dollars on newegg", "open clock"]
    batched = encoder.encode(texts)
    alone = np.stack([TextEncoder.minilm().encode([t])[0] for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert batched[0] @ batched[1] < 0.99  # distinct strings, not one vector broadcast


def test_minilm_matches_sentence_transformers(minilm: TextEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    from digiq.models.text_encoder import minilm_path

    reference = st.SentenceTransformer(str(minilm_path()), device="cpu")
    texts = [
        "Previous Actions: Goal: open settings",
        'Action Decision: "action_type": "PRESS_BACK"',
    ]
    np.testing.assert_allclose(minilm.encode(texts), reference.encode(texts), atol=1e-5)


# --- device selection -------------------------------------------------------------------------


def test_device_and_precision_selection() -> None:
    fp32 = select_precision("cpu", "fp32")
    assert fp32.autocast_dtype is None and fp32.name == "fp32"
    if bf16_supported("cpu"):
        bf16 = select_precision("cpu", "bf16")
        assert bf16.autocast_dtype == torch.bfloat16 and bf16.weights_dtype == torch.float32
        with bf16.autocast():
            assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
        auto = select_precision("cpu", "auto")
        assert auto.for_model(10).autocast_dtype is None
        assert auto.for_model(10 * CPU_BF16_MIN_PARAMS) is auto
        assert bf16.for_model(10) is bf16  # an explicit request is kept
    else:
        with pytest.raises(ValueError, match="no native bf16"):
            select_precision("cpu", "bf16")
        assert select_precision("cpu", "auto").autocast_dtype is None
    with pytest.raises(ValueError, match="precision must be one of"):
        select_precision("cpu", "fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            select_device("cuda")
        assert select_device(None).type == "cpu"
