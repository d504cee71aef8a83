using System.Text.Json.Nodes;
using Sd35.Mesh;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Tensors.Checkpoints;
using Sd35.Tools.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.GpuCheck;

/// <summary>
/// The component goldens of fixtures/reference run on a device: each tiny reference model (transformer, CLIP-L,
/// CLIP-G, T5, VAE decoder) loaded there in fp32 and in bf16, fed the stored inputs, compared with the stored
/// reference outputs at the test suite's thresholds (fp32: PCC ≥ 0.99999 and max |err| ≤ 1e-4·max |ref|; bf16:
/// the suite's bf16 bounds) and, as the smoke test of every op the models use, with the same model on the CPU.
/// </summary>
public static class GoldenCheck
{
    sealed record Case(string Name, string Folder, string Output, Func<string, ScalarType, Device, Dictionary<string, Tensor>, Tensor> Run, double Bf16Pcc, double Bf16Abs);

    static readonly Case[] Cases =
    [
        new("transformer", "transformer/tiny", "sample", (folder, dtype, device, io) =>
        {
            using var model = SD3Transformer2DModel.FromFolder(new ModelFolder(folder), MeshRank.Single(device), dtype);
            return model.Forward(io["hidden_states"].to(device), io["encoder_hidden_states"].to(device), io["pooled_projections"].to(device), io["timestep"].to(device));
        }, 0.99, 0.1),
        new("clip_l", "text_encoder/clip_l_tiny", "last_hidden_state", (folder, dtype, device, io) =>
        {
            using var model = ClipTextModel.FromFolder(new ModelFolder(folder), MeshRank.Single(device), dtype);
            using var output = model.forward(io["input_ids"].to(device));
            return output.LastHiddenState.clone();
        }, 0.99, 0.1),
        new("clip_g", "text_encoder/clip_g_tiny", "last_hidden_state", (folder, dtype, device, io) =>
        {
            using var model = ClipTextModel.FromFolder(new ModelFolder(folder), MeshRank.Single(device), dtype);
            using var output = model.forward(io["input_ids"].to(device));
            return output.LastHiddenState.clone();
        }, 0.99, 0.1),
        new("t5", "text_encoder/t5_tiny", "last_hidden_state", (folder, dtype, device, io) =>
        {
            using var model = T5EncoderModel.FromFolder(new ModelFolder(folder), MeshRank.Single(device), dtype);
            return model.forward(io["input_ids"].to(device));
        }, 0.99, 0.1),
        new("vae", "vae/vae_tiny", "sample", (folder, dtype, device, io) =>
        {
            using var model = AutoencoderKLDecoder.FromFolder(new ModelFolder(folder), MeshRank.Single(device), dtype);
            return model.DecodeRaw(io["latents"].to(device));
        }, 0.9995, 0.03),
    ];

    /// <returns>the number of failed comparisons</returns>
    public static int Run(string fixtures, Device device, JsonObject report, TextWriter output)
    {
        int failed = 0;
        var results = new JsonArray();
        output.WriteLine($"{"golden",-12} {"dtype",-9} {"vs",-10} {"PCC",12} {"max|err|/max|ref|",18} {"limit",16}  result");
        foreach (var c in Cases)
        {
            var folder = Path.Combine(fixtures, "reference", c.Folder);
            var io = ReadAll(Path.Combine(folder, "io.safetensors"));
            Tensor? cpuFp32 = null;
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var scope = NewDisposeScope();
                var (pcc, abs) = dtype == ScalarType.Float32 ? (0.99999, 1e-4) : (c.Bf16Pcc, c.Bf16Abs);
                Tensor actual;
                try
                {
                    actual = c.Run(folder, dtype, device, io).to(float32).cpu();
                }
                catch (Exception e)
                {
                    failed++;
                    output.WriteLine($"{c.Name,-12} {dtype,-9} threw {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                    results.Add(new JsonObject { ["golden"] = c.Name, ["dtype"] = dtype.ToString(), ["error"] = e.Message });
                    continue;
                }
                failed += Compare(c.Name, dtype, "reference", io[c.Output], actual, pcc, abs, results, output);
                if (device.type != DeviceType.CPU)
                {
                    // The smoke test: the same model and inputs on the CPU, where every op is known good.
                    cpuFp32 ??= c.Run(folder, ScalarType.Float32, CPU, io).to(float32).MoveToOuterDisposeScope();
                    using var cpu = dtype == ScalarType.Float32 ? cpuFp32.alias() : c.Run(folder, dtype, CPU, io).to(float32);
                    failed += Compare(c.Name, dtype, "cpu", cpu, actual, pcc, abs, results, output);
                }
            }
            cpuFp32?.Dispose();
            foreach (var t in io.Values) t.Dispose();
        }
        report["goldens"] = results;
        report["golden_failures"] = failed;
        return failed;
    }

    static int Compare(string name, ScalarType dtype, string against, Tensor reference, Tensor actual, double minPcc, double maxAbs, JsonArray results, TextWriter output)
    {
        var quality = Quality.Compare(reference, actual);
        double relative = quality.MaxAbsError / Math.Max(quality.MaxAbsReference, 1e-30);
        bool ok = quality.Finite && quality.Pcc >= minPcc && relative <= maxAbs;
        output.WriteLine($"{name,-12} {dtype,-9} {against,-10} {quality.Pcc,12:F7} {relative,18:E2} {$"≥{minPcc} ≤{maxAbs:E0}",16}  {(ok ? "ok" : "FAIL")}");
        results.Add(new JsonObject
        {
            ["golden"] = name, ["dtype"] = dtype.ToString(), ["against"] = against, ["pcc"] = quality.Pcc,
            ["max_abs_error_relative"] = relative, ["min_pcc"] = minPcc, ["max_abs_limit"] = maxAbs, ["ok"] = ok,
        });
        return ok ? 0 : 1;
    }

    static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var checkpoint = Checkpoint.Open(path);
        return checkpoint.Keys.ToDictionary(k => k, checkpoint.Read);
    }
}
