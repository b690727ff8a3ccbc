#!/bin/sh
# The worker's second build, with relaxed SIMD, and the loader that picks one of the two (trunk
# runs this after a release build; see Trunk.toml).
#
# The 5-bit text tower's kernel (clip/src/q8.rs) does twice the multiply-adds per instruction
# with `i32x4.relaxed_dot_i8x16_i7x16_add_s`, but a module that uses it does not compile where
# WebAssembly lacks relaxed SIMD, and wasm has no run-time feature test: the same worker is
# built twice. trunk builds the plain SIMD128 one
# (`worker.js`, `worker_bg.wasm`); this builds `worker_relaxed.js` and `worker_relaxed_bg.wasm`
# in a target directory of its own (other RUSTFLAGS would otherwise rebuild the plain one's
# dependencies every time) and writes `worker_loader.js`, which validates a 36-byte module that
# uses a relaxed SIMD instruction and starts the build the browser can run.
set -eu
if [ "${TRUNK_PROFILE:-}" != release ]; then
  exit 0 # debug builds keep trunk's loader and the plain worker
fi
root=$(cd "$(dirname "$0")/.." && pwd)
target="${CARGO_TARGET_DIR:-$root/target}/relaxed-simd"
# .cargo/config.toml's wasm32 flags, plus relaxed-simd (RUSTFLAGS replaces them).
RUSTFLAGS='-C target-feature=+simd128,+relaxed-simd --cfg getrandom_backend="wasm_js"' \
  CARGO_TARGET_DIR="$target" \
  cargo build --manifest-path "$root/Cargo.toml" --profile wasm-release \
  --target wasm32-unknown-unknown -p worker --bin worker
wasm-bindgen --target=no-modules --no-typescript --out-name=worker_relaxed \
  --out-dir="$TRUNK_STAGING_DIR" "$target/wasm32-unknown-unknown/wasm-release/worker.wasm"
cat >"$TRUNK_STAGING_DIR/worker_loader.js" <<'JS'
// Written by frontend/relaxed-worker.sh: the worker built with relaxed SIMD where this browser's
// WebAssembly validates a module using it (an i8x16.relaxed_swizzle), else the SIMD128 one.
const relaxed = WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]));
const build = relaxed ? "./worker_relaxed" : "./worker";
importScripts(build + ".js");
wasm_bindgen(build + "_bg.wasm");
JS
