#!/usr/bin/env bash
# Builds what tools/gpu/run.sh needs on a GPU host into .gpu-carry/ (git-ignored; name it in the device tool's
# `carry`). Run here, on the development machine, from any directory:
#   - app.tar.xz: a self-contained linux-x64 publish of tools/gpu/Sd35.GpuCheck built against an existing libtorch
#     (-p:Sd35LibTorchDir: the TorchSharp package without bundled libtorch; run.sh points SD35_LIBTORCH_DIR at the
#     host's torch/lib), framework trimmed (partial) so that it fits beside the repository in 64 MiB;
#   - torchsharp-native.tar.xz: TorchSharp's src/Native at the 0.107.0 release commit, to build libLibTorchSharp.so
#     against the host's libtorch when the prebuilt one does not resolve there;
#   - diffusers.tar.xz: diffusers' pure-Python src/diffusers for the side-by-side anchor (the GPU image has no diffusers).
# Sources come from the `fetch` tool's mirrors (/work/.mirror); the repository's committed state is published.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/.gpu-carry"
TORCHSHARP_MIRROR="${TORCHSHARP_MIRROR:-/work/.mirror/dotnet+TorchSharp/repo}"
TORCHSHARP_COMMIT="${TORCHSHARP_COMMIT:-c20b6a1c}"   # "Update release notes (#1565)": the 0.107.0 release (BranchInfo.props 0.107.0); the mirror has no v0.107.0 tag
DIFFUSERS_MIRROR="${DIFFUSERS_MIRROR:-/work/.mirror/huggingface+diffusers/repo}"
# The diffusers anchor script, found before any work: SD35_ANCHOR_SCRIPT, else the repository's copy, else the shared
# folder beside the clone (../shared, as CI and users have it, if at all); SD35_ANCHOR_SCRIPT=none goes without it
# (run.sh then skips the side-by-side).
ANCHOR="${SD35_ANCHOR_SCRIPT:-}"
if [ -z "$ANCHOR" ]; then
  for candidate in "$ROOT/tools/gpu/diffusers_gpu_anchor.py" "$ROOT/../shared/tools/anchor/diffusers_gpu_anchor.py"; do
    [ -f "$candidate" ] && { ANCHOR="$candidate"; break; }
  done
fi
if [ -n "$ANCHOR" ] && [ "$ANCHOR" != none ] && [ ! -f "$ANCHOR" ]; then
  echo "error: SD35_ANCHOR_SCRIPT=$ANCHOR is not a file (the diffusers anchor script; SD35_ANCHOR_SCRIPT=none goes without it)" >&2
  exit 2
fi
if [ -z "$ANCHOR" ]; then
  echo "error: no diffusers anchor script: neither tools/gpu/diffusers_gpu_anchor.py in the repository nor ../shared/tools/anchor/diffusers_gpu_anchor.py beside the clone; set SD35_ANCHOR_SCRIPT=<file>, or SD35_ANCHOR_SCRIPT=none to go without it" >&2
  exit 2
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
rm -f "$OUT/diffusers_gpu_anchor.py"

echo "== publishing Sd35.GpuCheck (committed state of $(git -C "$ROOT" rev-parse --short HEAD))"
mkdir -p "$WORK/src" "$WORK/app"
git -C "$ROOT" archive HEAD | tar -x -C "$WORK/src"
dotnet publish "$WORK/src/tools/gpu/Sd35.GpuCheck/Sd35.GpuCheck.csproj" -c Release -r linux-x64 --self-contained -nr:false \
  -p:Sd35LibTorchDir=/host-libtorch-set-by-run.sh -p:PublishTrimmed=true -p:TrimMode=partial \
  -p:JsonSerializerIsReflectionEnabledByDefault=true -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false \
  -p:DebugType=none -p:EventSourceSupport=false -p:UseSystemResourceKeys=true -o "$WORK/app" >"$WORK/publish.log" 2>&1 \
  || { tail -30 "$WORK/publish.log"; exit 1; }
# The debugger and tracing pieces of the runtime are never loaded by a plain run.
rm -f "$WORK/app"/{libmscordaccore.so,libmscordbi.so,createdump,libcoreclrtraceptprovider.so,libclrgc.so,libclrgcexp.so}
if ls "$WORK/app"/libtorch_cpu.so >/dev/null 2>&1; then echo "error: the publish holds a libtorch; it must come from the host"; exit 1; fi
tar -C "$WORK/app" -cf - . | xz -9 -T0 >"$OUT/app.tar.xz"

echo "== TorchSharp src/Native at $TORCHSHARP_COMMIT"
git -C "$TORCHSHARP_MIRROR" archive "$TORCHSHARP_COMMIT" src/Native build/BranchInfo.props | xz -9 >"$OUT/torchsharp-native.tar.xz"

echo "== diffusers src/diffusers ($(git -C "$DIFFUSERS_MIRROR" log -1 --format='%h %ad' --date=short))"
git -C "$DIFFUSERS_MIRROR" archive HEAD src/diffusers | xz -9 -T0 >"$OUT/diffusers.tar.xz"

if [ "$ANCHOR" = none ]; then echo "== no diffusers anchor script (SD35_ANCHOR_SCRIPT=none): run.sh skips the side-by-side"
else echo "== diffusers anchor script: $ANCHOR"; cp -f "$ANCHOR" "$OUT/"; fi
ls -la "$OUT"
echo "carry total: $(du -cb "$OUT"/* | tail -1 | cut -f1) bytes; repository tracked files: $(git -C "$ROOT" ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes (64 MiB together at most)"
