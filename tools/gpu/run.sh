#!/usr/bin/env bash
# Everything on the GPU host in one call (device tool: carry .gpu-carry, made by tools/gpu/prepare.sh):
#   1. unpack the self-contained Sd35.GpuCheck publish (no .NET or libtorch needed on the host);
#   2. provide a libLibTorchSharp.so that resolves against the host's libtorch (python3's torch/lib): a cached one
#      carried back from an earlier run's $OUT, else the prebuilt one if `ldd -r` finds every symbol, else one built
#      from TorchSharp's src/Native (0.107.0) against torch/include + torch/share/cmake; the result is left in $OUT
#      (copy it into .gpu-carry/ so the next call skips the build);
#   3. goldens on the device in fp32 and bf16, each also against the CPU (the smoke test of every op the models use);
#   4. the full-size random-model benchmark (SD3.5 Large shapes, bf16, 1024², CFG);
#   5. diffusers' SD3 transformer / VAE / encoders with random weights on the same card (the anchor script);
#   6. a short table, summary.md, with the ratio.
# `--cpu` runs the same path here, on the CPU, against an existing libtorch (SD35_LIBTORCH_DIR, default: the
# TorchSharp-cpu package's libtorch in the NuGet cache), with the tiny preset and without diffusers.
# Writes at most 8 files to $OUT (default: out/gpu in the repository). Each stage is cut off by a shared deadline
# (RUN_BUDGET_S, default 560 s) so that the files of the stages that finished always come back.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CARRY="$ROOT/.gpu-carry"
OUT="${OUT:-$ROOT/out/gpu}"
MODE=cuda
[ "${1:-}" = "--cpu" ] && MODE=cpu
mkdir -p "$OUT"
LOG="$OUT/run.log"
exec > >(tee "$LOG") 2>&1
DEADLINE=$((SECONDS + ${RUN_BUDGET_S:-560}))
left() { echo $((DEADLINE - SECONDS > 5 ? DEADLINE - SECONDS : 5)); }
W="$(mktemp -d /tmp/sd35gpu.XXXX)"
echo "== sd35 tools/gpu/run.sh mode=$MODE $(date -u +%FT%TZ) on $(hostname)"

[ -f "$CARRY/app.tar.xz" ] || { echo "no $CARRY/app.tar.xz: run tools/gpu/prepare.sh first and carry .gpu-carry"; exit 2; }
mkdir -p "$W/app" && tar -xJf "$CARRY/app.tar.xz" -C "$W/app"
APP="$W/app/Sd35.GpuCheck"

TORCH_DIR=""
if [ "$MODE" = cuda ]; then
  TORCH_DIR="$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>/dev/null)"
  [ -n "$TORCH_DIR" ] || { echo "python3 cannot import torch: no libtorch to run on"; exit 2; }
  python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available(), "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  export SD35_LIBTORCH_DIR="$TORCH_DIR/lib"
else
  export SD35_LIBTORCH_DIR="${SD35_LIBTORCH_DIR:-$(ls -d "$HOME"/.nuget/packages/libtorch-cpu-linux-x64/*/runtimes/linux-x64/native 2>/dev/null | head -1)}"
fi
echo "libtorch: $SD35_LIBTORCH_DIR"

undefined() { LD_LIBRARY_PATH="$SD35_LIBTORCH_DIR" ldd -r "$W/app/libLibTorchSharp.so" 2>&1 | grep -c 'undefined symbol'; }
if [ -f "$CARRY/libLibTorchSharp.so" ]; then
  echo "== libLibTorchSharp.so: the one built on an earlier run (carried)"
  cp "$CARRY/libLibTorchSharp.so" "$W/app/libLibTorchSharp.so"
fi
MISSING="$(undefined)"
echo "== libLibTorchSharp.so: $MISSING symbols undefined against this libtorch (ldd -r)"
if [ "$MISSING" != 0 ] && [ -n "$TORCH_DIR" ]; then
  echo "== building libLibTorchSharp.so from TorchSharp src/Native against $TORCH_DIR"
  mkdir -p "$W/ts" && tar -xJf "$CARRY/torchsharp-native.tar.xz" -C "$W/ts"
  # A newer libtorch deprecates APIs TorchSharp 0.107.0 uses (warnings, not errors), and its headers need C++17.
  sed -i 's/^\s*add_definitions(-Werror).*$//' "$W/ts/src/Native/CMakeLists.txt"
  sed -i 's/CXX_STANDARD 14/CXX_STANDARD 17/' "$W/ts/src/Native/LibTorchSharp/CMakeLists.txt"
  echo 'static char sccsid[] __attribute__((used)) = "@(#)LibTorchSharp 0.107.0 built by sd35 tools/gpu/run.sh";' >"$W/ts/version.c"
  GEN=""; command -v ninja >/dev/null && GEN="-G Ninja"
  timeout "$(left)" bash -c "cmake -S '$W/ts/src/Native' -B '$W/ts/build' $GEN -DCMAKE_BUILD_TYPE=Release \
      -DLIBTORCH_PATH='$TORCH_DIR/share/cmake/Torch' -DCMAKE_PREFIX_PATH='$TORCH_DIR/share/cmake' -DVERSION_FILE_PATH='$W/ts/version.c' \
    && cmake --build '$W/ts/build' -j\$(nproc)" >"$OUT/build.log" 2>&1
  BUILT="$(find "$W/ts/build" -name libLibTorchSharp.so | head -1)"
  if [ -n "$BUILT" ]; then
    cp "$BUILT" "$W/app/libLibTorchSharp.so" && cp "$BUILT" "$OUT/libLibTorchSharp.so"
    echo "   built; left in \$OUT for the next call; now $(undefined) undefined"
  else
    echo "   build FAILED; the end of build.log:"; tail -25 "$OUT/build.log"
  fi
fi

echo "== goldens on $MODE (fp32 and bf16, against the reference outputs and against the CPU)"
timeout "$(left)" "$APP" check --device "$MODE" --fixtures "$ROOT/fixtures" --json "$OUT/goldens.json"
echo "   exit code $?"

echo "== full-size random-model benchmark"
if [ "$MODE" = cuda ]; then BENCH=(--preset sd35-large --size 1024 --steps "${BENCH_STEPS:-4}" --device cuda)
else BENCH=(--preset tiny --size 64 --steps 2 --max-sequence-length 32 --device cpu); fi
timeout "$(left)" "$APP" bench "${BENCH[@]}" --json "$OUT/random_model.json"
echo "   exit code $?"

if [ "$MODE" = cuda ] && [ -f "$CARRY/diffusers.tar.xz" ] && [ -f "$CARRY/diffusers_gpu_anchor.py" ]; then
  echo "== diffusers side by side (same card, bf16, eager, SDPA)"
  mkdir -p "$W/py" && tar -xJf "$CARRY/diffusers.tar.xz" -C "$W/py"
  PYTHONPATH="$W/py/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 timeout "$(left)" python3 "$CARRY/diffusers_gpu_anchor.py" "$OUT/diffusers.json"
  echo "   exit code $?"
fi

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    if not os.path.exists(p): return None
    with open(p) as f:
        text = f.read().strip()
    try: return json.loads(text)
    except ValueError: return json.loads(text.splitlines()[-1])  # the anchor prints JSON lines
g, b, d = load("goldens.json"), load("random_model.json"), load("diffusers.json")
lines = ["# sd35 on the device", ""]
if g: lines += [f"- runtime: {g.get('runtime')}", f"- goldens: {len(g.get('goldens', []))} comparisons, {g.get('golden_failures')} failed", ""]
if b:
    s = b["sections"]
    lines += [f"| section ({b['preset']}, {b['size']}², {b['dtype']}, {b['device']}) | seconds | TFLOP/s | peak memory GiB |", "| --- | --- | --- | --- |"]
    for k, v in s.items():
        rate = f"{v['tflops_per_second']:.3g}" if "tflops_per_second" in v else ""
        lines.append(f"| {k} | {v.get('seconds', 0):.3f} | {rate} | {v.get('peak_memory_bytes', 0) / 2**30:.2f} |")
    lines += ["", f"- one step (CFG, batch 2): {b.get('seconds_per_step', 0):.3f} s; one image, 28 steps: {b.get('seconds_per_image_28_steps', 0):.2f} s"]
if b and d and "transformer_step_b2_s" in d:
    ts, ds = b.get("seconds_per_step", 0), d["transformer_step_b2_s"]
    lines += [f"- diffusers eager (same card, same call): transformer step batch 2 {ds:.3f} s; TorchSharp / diffusers time ratio {ts / ds:.2f} (< 1: faster)",
              f"- card: bf16 8192³ matmul {d.get('matmul_8192_bf16_tflops', 0):.0f} TFLOP/s (diffusers' torch)"]
with open(os.path.join(out, "summary.md"), "w") as f: f.write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -rf "$W"
ls -la "$OUT"
