using System.CommandLine;
using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>
/// Times the individual operations of one joint block at the block_sd35_large shapes (4096 image + 333 prompt
/// tokens, hidden 2432, 38 heads × 64), each against the same-process GEMM rate, to see where the time outside the
/// GEMMs goes. `dotnet run -c Release --project Sd35.Perf -- op-speed`.
/// </summary>
public static class OpProfile
{
    /// <summary><c>op-speed [--repeat N]</c>; SD35_OPS=&lt;text&gt; keeps only the operations whose name contains it.</summary>
    public static Command Command()
    {
        var repeat = PerfOptions.Repeat(5);
        var command = new Command("op-speed", "Times single operations at the SD3.5 Large block's shapes against the same-process GEMM (SD35_OPS=<text> keeps the names containing it).") { repeat };
        command.SetAction(r =>
        {
            PerfProcess.ForComputeTiming();
            Run(r.GetValue(repeat));
        });
        return command;
    }

    public static void Run(int repeats)
    {
        using var noGrad = no_grad();
        var only = Environment.GetEnvironmentVariable("SD35_OPS");
        manual_seed(0);
        const long n = 4096, l = 333, d = 2432, h = 38, hd = 64, j = n + l;
        var x = randn(1, n, d);
        var xl = randn(1, l, d);
        var w = randn(d, d) * 0.02;
        var b = randn(d) * 0.02;
        var w3 = randn(3 * d, d) * 0.02;
        var b3 = randn(3 * d) * 0.02;
        var wUp = randn(4 * d, d) * 0.02;
        var bUp = randn(4 * d) * 0.02;
        var wDown = randn(d, 4 * d) * 0.02;
        var hidden = randn(1, n, 4 * d);
        var shift = randn(1, d);
        var scale = randn(1, d);
        var qkv = randn([1, j, 3, h, hd]);
        var qC = randn(1, h, j, hd);
        var kC = randn(1, h, j, hd);
        var vC = randn(1, h, j, hd);
        var qT = randn(1, j, h, hd).transpose(1, 2);
        var kT = randn(1, j, h, hd).transpose(1, 2);
        var vT = randn(1, j, h, hd).transpose(1, 2);
        var rmsW = ones(hd);
        var heads = randn(1, n, h, hd).transpose(1, 2);

        void Time(string name, double flops, Func<Tensor> op)
        {
            if (only is not null && !name.Contains(only)) return;
            for (int i = 0; i < 1; i++) { using var s = NewDisposeScope(); op(); }
            var times = new List<double>();
            for (int i = 0; i < repeats; i++)
            {
                using var s = NewDisposeScope();
                var watch = Stopwatch.StartNew();
                op();
                times.Add(watch.Elapsed.TotalMilliseconds);
            }
            times.Sort();
            double ms = times[times.Count / 2];
            string rate = flops > 0 ? $"{flops / ms / 1e6,8:F1}" : "";
            Console.WriteLine($"{name,-44} {ms,9:F1} ms {rate}");
        }

        Console.WriteLine($"{"op (block_sd35_large shapes)",-44} {"median",9}    GFLOP/s");
        Time("gemm 4096x2432x2432 (linear, no bias)", 2.0 * n * d * d, () => nn.functional.linear(x, w));
        Time("linear 4096x2432x2432 + bias", 2.0 * n * d * d, () => nn.functional.linear(x, w, b));
        Time("linear fused qkv 4096x7296x2432 + bias", 2.0 * n * 3 * d * d, () => nn.functional.linear(x, w3, b3));
        Time("linear up 4096x9728x2432 + bias", 2.0 * n * 4 * d * d, () => nn.functional.linear(x, wUp, bUp));
        Time("linear down 4096x2432x9728 (no bias)", 2.0 * n * 4 * d * d, () => nn.functional.linear(hidden, wDown));
        Time("gelu tanh [4096, 9728]", 0, () => nn.functional.gelu(hidden, TorchSharp.Modules.GELU.Approximate.tanh));
        Time("clone + gelu_ tanh in place [4096, 9728]", 0, () => hidden.clone().gelu_(TorchSharp.Modules.GELU.Approximate.tanh));
        Time("gelu exact [4096, 9728]", 0, () => nn.functional.gelu(hidden));
        var temb = randn(1, d);
        var wMod = randn(6 * d, d) * 0.02;
        var bMod = randn(6 * d) * 0.02;
        Time("adaln linear [1,2432]x[14592,2432]", 2.0 * 6 * d * d, () => nn.functional.linear(nn.functional.silu(temb), wMod, bMod));
        Time("adaln linear [2,2432]x[14592,2432]", 4.0 * 6 * d * d, () => nn.functional.linear(nn.functional.silu(randn(2, d)), wMod, bMod));
        Time("layer_norm [4096, 2432]", 0, () => nn.functional.layer_norm(x, [d], null, null, 1e-6));
        Time("modulate x*(1+scale)+shift", 0, () => x * (scale.unsqueeze(1) + 1) + shift.unsqueeze(1));
        Time("modulate addcmul", 0, () => torch.addcmul(shift.unsqueeze(1), x, scale.unsqueeze(1) + 1, 1));
        Time("layer_norm with weight/bias (1+scale, shift)", 0, () => nn.functional.layer_norm(x, [d], (scale[0] + 1), shift[0], 1e-6));
        Time("gated residual x + g*y", 0, () => x + shift.unsqueeze(1) * x);
        Time("gated residual addcmul", 0, () => torch.addcmul(x, shift.unsqueeze(1), x, 1));
        Time("rmsnorm heads (current, strided input)", 0, () =>
        {
            var variance = heads.to(float32).square().mean([-1], keepdim: true);
            return (heads * (variance + 1e-6).rsqrt()).to(float32) * rmsW;
        });
        Time("rmsnorm heads: x*rsqrt(mean(x^2)) * w", 0, () =>
        {
            var variance = heads.square().mean([-1], keepdim: true);
            return heads * (variance + 1e-6).rsqrt() * rmsW;
        });
        Time("rmsnorm heads: pow+mean+rsqrt_ +mul", 0, () =>
        {
            var inv = heads.pow(2).mean([-1], keepdim: true).add_(1e-6).rsqrt_();
            return heads * inv;
        });
        Time("cat q [img;prompt] dim 2 (transposed src)", 0, () => cat([heads, heads.narrow(2, 0, l)], 2));
        Time("sdpa [1,38,4429,64] contiguous", 4.0 * j * j * d, () => nn.functional.scaled_dot_product_attention(qC, kC, vC));
        Time("sdpa [1,38,4429,64] transposed views", 4.0 * j * j * d, () => nn.functional.scaled_dot_product_attention(qT, kT, vT));
        Time("sdpa from fused qkv [1,j,3,h,d] views", 4.0 * j * j * d, () =>
        {
            var p = qkv.permute(2, 0, 3, 1, 4);
            return nn.functional.scaled_dot_product_attention(p[0], p[1], p[2]);
        });
        Time("merge heads transpose+reshape [1,38,4096,64]", 0, () => heads.transpose(1, 2).reshape(1, n, d));
        Time("contiguous copy [4096, 9728]", 0, () => hidden.clone());
        var target = empty_like(hidden);
        Time("copy_ into preallocated [4096, 9728]", 0, () => target.copy_(hidden));
        Time("empty [4096, 9728] + fill_(1)", 0, () => empty_like(hidden).fill_(1));
        Time("fill_(1) preallocated [4096, 9728]", 0, () => target.fill_(1));
    }
}
