#!/usr/bin/env python3
"""PyTorch reference for `cargo run --release -p clip --example bench`.

Builds a transformers `CLIPModel` from `CLIPConfig()` defaults (ViT-B/32: the shapes of
openai/clip-vit-base-patch32) with random weights (the cost of a forward pass does not depend on
the values), in eval mode under `torch.inference_mode()`, on the CPU, and times the same points
as the Rust benchmark with the same method:

* image embeddings (`get_image_features`) at the given batch sizes;
* text latency (`get_text_features`) for one unpadded query of each given length
  (BOS + filler tokens + EOS, no attention mask).

Each point: warm-up iterations, then iterations until at least `--min-seconds` have passed and at
least `--min-iters` were run; the median iteration time is reported. Prints one JSON object on
stdout (everything else goes to stderr).

Requirements: see requirements.txt (torch, transformers). No network: nothing is downloaded.
"""

import argparse
import json
import os
import statistics
import sys
import time


def measure(fn, warmup, min_seconds, min_iters):
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "iters": len(times)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, required=True, help="torch.set_num_threads(N)")
    p.add_argument("--batches", default="1,8,32", help="image batch sizes, comma separated")
    p.add_argument("--text-lengths", default="7,77", help="query lengths in tokens, BOS and EOS included")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--min-iters", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch
    import transformers
    from transformers import CLIPConfig, CLIPModel

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set (only possible before any parallel work)
    torch.manual_seed(args.seed)

    config = CLIPConfig()  # transformers defaults = ViT-B/32, projection_dim 512
    model = CLIPModel(config).eval()
    print(
        f"pytorch_reference: torch {torch.__version__}, transformers {transformers.__version__}, "
        f"threads {torch.get_num_threads()}, attention {model.config._attn_implementation}",
        file=sys.stderr,
    )

    bos, eos = config.text_config.bos_token_id, config.text_config.eos_token_id
    # Filler ids below EOS (the largest id), so the pooled position is the last one.
    filler = [320, 1125, 539, 320, 2368]

    def text_ids(n):
        body = [filler[i % len(filler)] for i in range(n - 2)]
        return torch.tensor([[bos, *body, eos]], dtype=torch.long)

    out = {
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "threads": torch.get_num_threads(),
        "attn_implementation": model.config._attn_implementation,
        "image": {},
        "text": {},
    }
    size = config.vision_config.image_size
    with torch.inference_mode():
        for b in [int(x) for x in args.batches.split(",") if x]:
            pixels = torch.randn(b, 3, size, size)
            feats = model.get_image_features(pixel_values=pixels)
            feats = getattr(feats, "pooler_output", feats)
            assert tuple(feats.shape) == (b, config.projection_dim), feats.shape
            r = measure(lambda: model.get_image_features(pixel_values=pixels), args.warmup, args.min_seconds, args.min_iters)
            r["images_per_s"] = b / r["median_s"]
            out["image"][str(b)] = r
            print(f"pytorch_reference: image batch {b}: {r['images_per_s']:.2f} images/s", file=sys.stderr)
        for n in [int(x) for x in args.text_lengths.split(",") if x]:
            ids = text_ids(n)
            feats = model.get_text_features(input_ids=ids)
            feats = getattr(feats, "pooler_output", feats)
            assert tuple(feats.shape) == (1, config.projection_dim), feats.shape
            r = measure(lambda: model.get_text_features(input_ids=ids), args.warmup, args.min_seconds, args.min_iters)
            out["text"][str(n)] = r
            print(f"pytorch_reference: text {n} tokens: {r['median_s'] * 1e3:.2f} ms", file=sys.stderr)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
