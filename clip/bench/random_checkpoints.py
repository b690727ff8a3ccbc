"""Random-weight checkpoints at the real shapes of the models text2img supports, for benchmarks.

The cost of a forward pass and the size of a download do not depend on the weights' values, so
the model table in BENCHMARKS.md measures each family at its real shapes with random weights
made here by the family's reference implementation (no weights can be downloaded on the
benchmark machine). Each checkpoint is written in the layout its family ships on the hub:

    clip-b32, clip-b16, clip-l14   transformers CLIPModel (config.json + model.safetensors)
    openclip-b32                   open_clip's own layout (open_clip_config.json +
                                   open_clip_model.safetensors), ViT-B-32 as laion2b's
    siglip-b16                     transformers SiglipModel, google/siglip-base-patch16-224's config
    mobileclip-s1, -s2, -b         open_clip's layout of MobileCLIP-S1 / S2 / B

Tokenizers are copied from the committed fixtures (the real CLIP vocabulary; for SigLIP the
fixture's small SentencePiece model: a SigLIP query is always padded to 64 tokens, so its cost
does not depend on the vocabulary). Weights are float16 (half the disk; loaded as f32).

    python clip/bench/random_checkpoints.py NAME OUT_DIR
"""

import json
import shutil
import sys
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def half(state):
    return {k: v.detach().to(torch.float16).contiguous() for k, v in state.items()}


def transformers_clip(out, vision, text, projection):
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection)
    model = CLIPModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    _halve(out / "model.safetensors")
    shutil.copy(FIXTURES / "tiny-clip" / "tokenizer.json", out / "tokenizer.json")


def _halve(path):
    from safetensors.torch import load_file, save_file

    save_file(half(load_file(path)), path)


def open_clip_layout(out, name):
    import open_clip
    from safetensors.torch import save_file

    model = open_clip.create_model(name, pretrained=None).eval()
    cfg = open_clip.get_model_config(name)
    preprocess = {
        "mean": list(getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN),
        "std": list(getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    if name.startswith("MobileCLIP"):
        # As apple/MobileCLIP-*-OpenCLIP ship it: no normalisation, bilinear.
        preprocess.update(mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0], interpolation="bilinear")
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": preprocess}, indent=2)
    )
    save_file(half(model.state_dict()), out / "open_clip_model.safetensors")
    shutil.copy(FIXTURES / "tiny-clip" / "tokenizer.json", out / "tokenizer.json")


def siglip(out):
    from transformers import SiglipConfig, SiglipModel

    # transformers' defaults are google/siglip-base-patch16-224's shapes.
    model = SiglipModel(SiglipConfig()).eval()
    model.save_pretrained(out, safe_serialization=True)
    _halve(out / "model.safetensors")
    for name in ("spiece.model", "tokenizer_config.json"):
        shutil.copy(FIXTURES / "tiny-siglip" / name, out / name)


def main():
    name, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    clip_text = {}  # transformers' defaults: 12 × 512, 8 heads, 77 positions
    if name == "clip-b32":
        transformers_clip(out, {"patch_size": 32}, clip_text, 512)
    elif name == "clip-b16":
        transformers_clip(out, {"patch_size": 16}, clip_text, 512)
    elif name == "clip-l14":
        vision = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
                  "num_attention_heads": 16, "patch_size": 14}
        text = {"hidden_size": 768, "intermediate_size": 3072, "num_attention_heads": 12}
        transformers_clip(out, vision, text, 768)
    elif name == "openclip-b32":
        open_clip_layout(out, "ViT-B-32")
    elif name == "siglip-b16":
        siglip(out)
    elif name.startswith("mobileclip-"):
        open_clip_layout(out, "MobileCLIP-" + name.split("-", 1)[1].upper())
    else:
        sys.exit(f"unknown model {name!r}; see the module docstring")
    print(out)


if __name__ == "__main__":
    main()
