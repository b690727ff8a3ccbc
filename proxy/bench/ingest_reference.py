#!/usr/bin/env python3
"""Reference for `cargo run --release -p proxy --example bench_ingest`: the same work done with
Pillow and PyTorch (transformers) on the same JPEG files, on the same machine, in the same run.

Stages, each timed over all the files (repeated until at least --min-seconds have passed; the
best pass is reported, as the Rust side does):

* preprocess-1: Pillow decode + CLIP preprocessing (RGB, shortest side to 224 with BICUBIC,
  center crop, rescale and normalise to a float32 array) in this process, full-size decoding;
* draft-1: the same with JPEG draft mode (`Image.draft("RGB", (224, 224))`: libjpeg's reduced
  DCT scale), the decode text2img's ingest uses by default;
* draft-N: draft-1 on N worker processes (`multiprocessing.Pool`, chunks of 8 files);
* model: `CLIPModel.get_image_features` (ViT-B/32 shapes, random weights) on pixel batches
  prepared beforehand, on --device in --dtype (fp16 on CUDA as usual), batch --batch;
* end-to-end: a `torch.utils.data.DataLoader` with N workers running draft-mode preprocessing,
  batches of --batch fed to the model (pinned memory, non-blocking copies on CUDA).

Prints one JSON object on stdout; progress goes to stderr. Needs Pillow and numpy; the model
stages need torch and transformers (skipped, and said so, when missing).
"""

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np
from PIL import Image

MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
SIZE = 224


def preprocess(path, draft):
    im = Image.open(path)
    if draft:
        im.draft("RGB", (SIZE, SIZE))
    im = im.convert("RGB")
    w, h = im.size
    nw, nh = (SIZE, int(SIZE * h / w)) if w <= h else (int(SIZE * w / h), SIZE)
    im = im.resize((nw, nh), Image.BICUBIC)
    top, left = (nh - SIZE) // 2, (nw - SIZE) // 2
    im = im.crop((left, top, left + SIZE, top + SIZE))
    x = (np.asarray(im, dtype=np.float32) * (1 / 255) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preprocess_draft(path):
    return preprocess(path, True)


def best_rate(fn, count, min_seconds):
    fn()  # warm-up pass
    best, start = 0.0, time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        best = max(best, count / (time.perf_counter() - t0))
        if time.perf_counter() - start >= min_seconds:
            return best


class Files:
    """A map-style dataset over the files (module level, so DataLoader workers can pickle it)."""

    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return preprocess(self.files[i], True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="folder of .jpg files")
    p.add_argument("--processes", type=int, default=os.cpu_count())
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "fp16"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--min-seconds", type=float, default=3.0)
    args = p.parse_args()

    files = sorted(os.path.join(args.dir, f) for f in os.listdir(args.dir) if f.endswith(".jpg"))
    n = len(files)
    out = {"images": n, "processes": args.processes, "pillow": Image.__version__}
    log = lambda msg: print(f"ingest_reference: {msg}", file=sys.stderr)

    out["preprocess_1"] = best_rate(lambda: [preprocess(f, False) for f in files], n, args.min_seconds)
    log(f"Pillow full decode + preprocess, 1 process: {out['preprocess_1']:.1f} img/s")
    out["draft_1"] = best_rate(lambda: [preprocess(f, True) for f in files], n, args.min_seconds)
    log(f"Pillow draft decode + preprocess, 1 process: {out['draft_1']:.1f} img/s")
    with multiprocessing.Pool(args.processes) as pool:
        out["draft_n"] = best_rate(lambda: pool.map(preprocess_draft, files, chunksize=8), n, args.min_seconds)
    log(f"Pillow draft decode + preprocess, {args.processes} processes: {out['draft_n']:.1f} img/s")

    try:
        import torch
        import transformers
        from transformers import CLIPConfig, CLIPModel
    except ImportError as e:
        log(f"SKIPPED the model stages: {e}")
        json.dump(out, sys.stdout)
        print()
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval().to(device=device, dtype=dtype)
    out.update(torch=torch.__version__, transformers=transformers.__version__,
               device=str(device), dtype=args.dtype, batch=args.batch, threads=torch.get_num_threads(),
               attention=model.config._attn_implementation)
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def embed(batch):
        feats = model.get_image_features(pixel_values=batch.to(device=device, dtype=dtype, non_blocking=True))
        return getattr(feats, "pooler_output", feats)

    with torch.inference_mode():
        # Model only: the same count of images, in batches, pixels already on the device.
        pixels = torch.randn(args.batch, 3, SIZE, SIZE, device=device, dtype=dtype)
        batches = max(1, n // args.batch)

        def model_only():
            for _ in range(batches):
                model.get_image_features(pixel_values=pixels)
            sync()

        out["model"] = best_rate(model_only, batches * args.batch, args.min_seconds)
        log(f"PyTorch model only ({args.device}, {args.dtype}, batch {args.batch}): {out['model']:.1f} img/s")

        loader = torch.utils.data.DataLoader(
            Files(files), batch_size=args.batch, num_workers=args.processes,
            pin_memory=device.type == "cuda", persistent_workers=True,
            collate_fn=lambda xs: torch.from_numpy(np.stack(xs)))

        def end_to_end():
            for batch in loader:
                embed(batch)
            sync()

        out["end_to_end"] = best_rate(end_to_end, n, args.min_seconds)
        log(f"Pillow + PyTorch end to end ({args.processes} DataLoader workers): {out['end_to_end']:.1f} img/s")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
