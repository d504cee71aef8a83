#!/usr/bin/env bash
# Mutation proofs (docs/mutation-proofs.md): applies tools/mutation/<name>.patch to the working tree, builds the test
# project that holds the gate, runs the gate's tests, and succeeds only if they FAIL on the broken code. The patch is
# reverted whatever happens. Needs a clean tree for the patched files (`git apply` refuses otherwise).
#   tools/mutation/mutate.sh <name>      one mutation      tools/mutation/mutate.sh --list      the names
set -uo pipefail
cd "$(dirname "$0")/../.."
declare -A PROJECT FILTER SETTINGS
add() { PROJECT[$1]=$2; FILTER[$1]=$3; SETTINGS[$1]=${4:-Sd35.runsettings}; }
add pipeline-wrong-image-on-device-1        Sd35.Model.Tests  "FullyQualifiedName~n300_cfg1_sp1_tp2.Pipeline_with_guidance"
add staging-pipeline-off-thread             Sd35.Model.Tests  "FullyQualifiedName~Each_stage_releases_its_models_before_the_next_loads"
add demo-missing-part-unspecific-exception  Sd35.Model.Tests  "FullyQualifiedName~Model_folder_with_a_missing_part"
add encoder-golden-drops-out                Sd35.Model.Tests  "FullyQualifiedName~ClipAndT5GoldenTests.The_cases_are_exactly"
add loader-skips-a-tensor                   Sd35.Model.Tests  "FullyQualifiedName~Loads_every_tensor_by_name"
add quality-compares-counts-only            Sd35.Model.Tests  "FullyQualifiedName~A_shape_mismatch_with_the_same_element_count"
add vae-keeps-two-more-activations          Sd35.Model.Tests  "FullyQualifiedName~VaeMemoryTests" Sd35.all.runsettings
add traced-demo-untraced-traces             Sd35.Perf.Tests   "FullyQualifiedName~n150_cfg1_sp1_tp1_demo.no_traced"
add server-leaks-per-job                    Sd35.Server.Tests "FullyQualifiedName~LoadTests"
add server-cancel-reported-failed           Sd35.Server.Tests "FullyQualifiedName~A_client_that_leaves_a_synchronous_generate"

if [ "${1:-}" = --list ] || [ -z "${1:-}" ]; then printf '%s\n' "${!PROJECT[@]}" | sort; exit 0; fi
name=$1
patch=tools/mutation/$name.patch
[ -f "$patch" ] && [ -n "${PROJECT[$name]:-}" ] || { echo "unknown mutation '$name'; known: $(printf '%s ' "${!PROJECT[@]}")" >&2; exit 2; }
git apply "$patch" || { echo "could not apply $patch (are its files modified?)" >&2; exit 2; }
trap 'git apply -R "$patch"; dotnet build "${PROJECT[$name]}" -v q -nologo >/dev/null 2>&1 || true' EXIT
dotnet build "${PROJECT[$name]}" -v q -nologo >/dev/null || { echo "$name: the mutant does not build" >&2; exit 2; }
log=$(mktemp)
dotnet test "${PROJECT[$name]}" --no-build --settings "${SETTINGS[$name]}" --filter "${FILTER[$name]}" >"$log" 2>&1
rc=$?
grep -E "^\s+(Failed|Passed) |Error Message" -A2 "$log" | head -20
if [ $rc -ne 0 ] && grep -q "Failed!" "$log"; then
    echo "KILLED: $name — the gate failed on the broken input, as it must"; exit 0
fi
echo "SURVIVED: $name — the gate passed on the broken input" >&2; exit 1
