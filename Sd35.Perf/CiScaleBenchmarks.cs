using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters.Json;
using BenchmarkDotNet.Jobs;
using Sd35.Hosting;
using Sd35.Mesh;
using Sd35.Mesh.InProcess;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Models.Transformer;
using Sd35.Models.Vae;
using Sd35.Perf.Harness;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using static TorchSharp.torch;

namespace Sd35.Perf;

/// <summary>Short jobs (1 warm-up, 5 iterations of one call) with the full JSON export the report command reads.</summary>
public class CiScaleConfig : ManualConfig
{
    public CiScaleConfig()
    {
        AddJob(Job.Default.WithWarmupCount(1).WithIterationCount(5).WithInvocationCount(1).WithUnrollFactor(1));
        AddExporter(JsonExporter.Full);
        // The generated project builds slowly on a busy 2-core box (BenchmarkDotNet's default limit is 2 minutes).
        WithBuildTimeout(TimeSpan.FromMinutes(10));
    }
}

/// <summary>
/// Each component of the CI-scale pipeline (the perf tests' model: tiny reference encoders and VAE, the small random
/// MMDiT) on one device: CLIP-L, CLIP-G and T5 on one prompt, the VAE on 64×64 latents (a 256² image), and one
/// transformer forward with batch 2 (the two guidance branches).
/// </summary>
[Config(typeof(CiScaleConfig))]
public class ComponentBenchmarks
{
    TorchSharp.DisposeScope? _scope;
    ClipTextModel? _clipL, _clipG;
    T5EncoderModel? _t5;
    AutoencoderKLDecoder? _vae;
    SD3Transformer2DModel? _transformer;
    Tensor? _clipIds, _t5Ids, _latents, _prompt, _pooled, _timestep;

    [GlobalSetup]
    public void Setup()
    {
        BenchmarkProcess.Configure();
        var c = CiScaleModel.Components();
        _scope = NewDisposeScope();
        _clipL = ClipTextModel.FromFolder(c.TextEncoder);
        _clipG = ClipTextModel.FromFolder(c.TextEncoder2);
        _t5 = T5EncoderModel.FromFolder(c.TextEncoder3!);
        _vae = AutoencoderKLDecoder.FromFolder(c.Vae);
        _transformer = SD3Transformer2DModel.FromFolder(c.Transformer);
        using var generator = new Generator(0);
        _clipIds = randint(0, 1000, [1, Sd3PromptEncoder.ClipTokens], generator: generator);
        _t5Ids = randint(0, 1000, [1, CiScaleModel.MaxSequenceLength], generator: generator);
        int latent = CiScaleModel.Width / c.VaeConfig.ScaleFactor;
        _latents = randn([1, 16, latent, latent], generator: generator);
        var config = CiScaleModel.TransformerConfig;
        _prompt = randn([2, Sd3PromptEncoder.ClipTokens + CiScaleModel.MaxSequenceLength, config.JointAttentionDim], generator: generator);
        _pooled = randn([2, config.PooledProjectionDim], generator: generator);
        _timestep = full([2], 500f);
    }

    [Benchmark] public void ClipL() => Run(() => _clipL!.forward(_clipIds!).TextEmbeds!);
    [Benchmark] public void ClipG() => Run(() => _clipG!.forward(_clipIds!).TextEmbeds!);
    [Benchmark] public void T5() => Run(() => _t5!.forward(_t5Ids!));
    [Benchmark] public void Vae() => Run(() => _vae!.Decode(_latents!));
    [Benchmark] public void TransformerForward() =>
        Run(() => _transformer!.Forward(cat([_latents!, _latents!], 0), _prompt!, _pooled!, _timestep!));

    static void Run(Func<Tensor> forward)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        forward();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var m in new IDisposable?[] { _clipL, _clipG, _t5, _vae, _transformer }) m?.Dispose();
        _scope?.Dispose();
    }
}

/// <summary>
/// Per config, in-process on the simulated mesh, at CI scale: one transformer step (every rank's shards loaded once,
/// then each iteration runs one guided forward on every device, cfg branches exchanged), and one whole generation
/// (4 steps, 256², every device running the pipeline's per-device program; it loads each stage's models inside the call).
/// </summary>
[Config(typeof(CiScaleConfig))]
public class ConfigBenchmarks
{
    PersistentMeshStep? _step;
    StableDiffusion3Pipeline? _pipeline;

    [Params("n150_cfg1_sp1_tp1", "t3k_cfg2_sp2_tp2", "tg_cfg2_sp4_tp4")]
    public string Config { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        BenchmarkProcess.Configure();
        var components = CiScaleModel.Components();
        _step = new PersistentMeshStep(ParallelConfig.Parse(Config), components.Transformer);
        _pipeline = PipelineFactory.Create(new PipelineSettings { Parallel = ParallelConfig.Parse(Config), Process = ProcessSetup.HostAsIs }, components);
    }

    [Benchmark] public void TransformerStep() => _step!.Run();

    [Benchmark]
    public void Generation()
    {
        using var result = _pipeline!.Generate(CiScaleModel.Request(PerfPrompts.Timed(0)));
    }

    [GlobalCleanup]
    public void Cleanup() => _step?.Dispose();
}

/// <summary>What every benchmark process does first: the CPU runtime settings (unless SD35_CPU_RUNTIME=default) and all cores.</summary>
static class BenchmarkProcess
{
    public static void Configure()
    {
        if (Environment.GetEnvironmentVariable("SD35_CPU_RUNTIME") != "default") Console.WriteLine(Sd35.Tensors.CpuRuntime.Configure());
        TorchSharp.torch.set_num_threads(Environment.ProcessorCount);
    }
}

/// <summary>
/// A mesh whose ranks load their transformer shards once and then run one forward per <see cref="Run"/> call, so a
/// benchmark iteration times the step and not the loading. Each rank waits on its own signal between steps.
/// </summary>
sealed class PersistentMeshStep : IDisposable
{
    readonly SemaphoreSlim[] _go;
    readonly CountdownEvent _done;
    readonly Task _mesh;
    volatile bool _stopping;

    public PersistentMeshStep(ParallelConfig config, ModelFolder transformerFolder)
    {
        _go = Enumerable.Range(0, config.DeviceCount).Select(_ => new SemaphoreSlim(0)).ToArray();
        _done = new CountdownEvent(config.DeviceCount);
        var ready = new CountdownEvent(config.DeviceCount);
        _mesh = Task.Run(() => MeshRunner.Run(config, rank =>
        {
            using var model = SD3Transformer2DModel.FromFolder(transformerFolder, rank);
            var t = model.Config;
            int batch = config.Cfg.Factor == 2 ? 1 : 2;
            using var generator = new Generator(0);
            using var latents = randn([batch, t.InChannels, 64, 64], generator: generator);
            using var prompt = randn([batch, Sd3PromptEncoder.ClipTokens + CiScaleModel.MaxSequenceLength, t.JointAttentionDim], generator: generator);
            using var pooled = randn([batch, t.PooledProjectionDim], generator: generator);
            using var timestep = full([batch], 500f);
            ready.Signal();
            while (true)
            {
                _go[rank.Id.Value].Wait();
                if (_stopping) return 0;
                using (NewDisposeScope())
                {
                    var prediction = model.Forward(latents, prompt, pooled, timestep);
                    if (config.Cfg.Factor == 2) rank.Cfg.AllGather(prediction, 0);
                }
                _done.Signal();
            }
        }, new MeshRunOptions { CollectiveTimeout = TimeSpan.FromMinutes(10) }));
        WaitFor(ready);
    }

    /// <summary>Waits for the ranks; a rank that failed ends the mesh task, and its exception is rethrown here.</summary>
    void WaitFor(CountdownEvent signal)
    {
        while (!signal.Wait(TimeSpan.FromMilliseconds(100)))
            if (_mesh.IsCompleted) _mesh.GetAwaiter().GetResult();
    }

    public void Run()
    {
        _done.Reset();
        foreach (var go in _go) go.Release();
        WaitFor(_done);
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (var go in _go) go.Release();
        _mesh.Wait();
    }
}
