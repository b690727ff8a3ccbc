"""The peer's model for the browser benchmark: a CLIP text tower exported to ONNX and quantized
the way transformers.js ships it (onnxruntime's dynamic quantization, 8-bit weights).

    python3 tests/peer/export_onnx.py MODEL_DIR OUT_DIR

MODEL_DIR is a transformers CLIP checkpoint (config.json, model.safetensors), e.g. the random
ViT-B/32 that `bench_browser` writes, so both sides run the same weights. Writes
OUT_DIR/text_model.onnx (f32) and OUT_DIR/text_model_quantized.onnx (8-bit), whose one input is
`input_ids` (int64, [batch, tokens]) and one output `text_embeds` ([batch, projection_dim]),
and checks that onnxruntime's answer for both equals transformers' (cosine).
"""

import sys
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from transformers import CLIPTextModelWithProjection


class TextTower(torch.nn.Module):
    """input_ids -> text_embeds (unnormalised, as CLIPTextModelWithProjection gives them)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids=input_ids).text_embeds


def main():
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = CLIPTextModelWithProjection.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    tower = TextTower(model)
    ids = torch.tensor([[49406, 736, 1615, 18616, 525, 2012, 49407]], dtype=torch.int64)
    f32 = out / "text_model.onnx"
    torch.onnx.export(
        tower,
        (ids,),
        str(f32),
        input_names=["input_ids"],
        output_names=["text_embeds"],
        dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "text_embeds": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    q8 = out / "text_model_quantized.onnx"
    # transformers.js's scripts/quantize.py: dynamic quantization, 8-bit unsigned weights.
    quantize_dynamic(str(f32), str(q8), weight_type=QuantType.QUInt8)
    with torch.no_grad():
        want = tower(ids).numpy()[0]
    for path, bound in [(f32, 0.99999), (q8, 0.99)]:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input_ids": ids.numpy()})[0][0]
        cos = float(np.dot(got, want) / np.linalg.norm(got) / np.linalg.norm(want))
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, cosine to transformers {cos:.6f}")
        if cos < bound:
            sys.exit(f"{path.name}: cosine {cos} below {bound}")


if __name__ == "__main__":
    main()
