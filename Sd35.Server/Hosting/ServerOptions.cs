using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Sd35.Server.Hosting;

/// <summary>
/// The server's settings, read once at start-up from the command line (<c>--model</c>, <c>--parallel</c>, … as the
/// demo spells them) or any other configuration source (the tests set them in memory). A bad value stops the server
/// before it binds a port, with a message naming the option.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>A diffusers SD3.5 folder; null: the tiny random-weight reference components in fixtures/, as the demo.</summary>
    public string? Model { get; init; }
    /// <summary>A named mesh config (<c>t3k_cfg2_sp2_tp2</c>); null: one device.</summary>
    public string? Parallel { get; init; }
    public bool Bf16 { get; init; }
    /// <summary>Resident (default): the models load with the first request and stay loaded; staged: loaded per request, one stage at a time.</summary>
    public Sd35.Pipeline.ModelResidency Models { get; init; } = Sd35.Pipeline.ModelResidency.Resident;
    /// <summary>What every device of the run is bound to: the CPU, or the CUDA GPUs round-robin.</summary>
    public Sd35.Mesh.ComputeDevice Device { get; init; } = Sd35.Mesh.ComputeDevice.Cpu;
    /// <summary>Jobs that may wait behind the running one; one more gets 429.</summary>
    public int QueueLength { get; init; } = 8;
    /// <summary>The only folder the server writes to: one PNG per finished job, named by the job id.</summary>
    public string OutputFolder { get; init; } = "sd35-server-output";
    /// <summary>Finished jobs (and their PNGs) remembered; older ones are forgotten and their files deleted.</summary>
    public int KeepJobs { get; init; } = 200;
    public int MaxPromptLength { get; init; } = 2000;
    public int MaxBodyBytes { get; init; } = 16 * 1024;
    public int MaxSteps { get; init; } = 200;
    public int MaxImageSide { get; init; } = 2048;
    public int DefaultSteps { get; init; } = 28;
    public int MaxSequenceLength { get; init; } = 256;

    public const string Usage = """
        Sd35.Server — HTTP API and web GUI for Stable Diffusion 3.5

          --urls <url>               where to listen (default http://127.0.0.1:5080; loopback only unless you say otherwise)
          --model <dir>              a diffusers folder of SD3.5; without it the tiny reference components in fixtures/
          --parallel <config id>     run on a device mesh, e.g. t3k_cfg2_sp2_tp2: simulated in this process, or one
                                     process per device under mpirun -np <devices> tools/mpi/sd35-rank dotnet Sd35.Server.dll
          --bf16                     run the models in bfloat16
          --models resident|staged   resident (default): load the models once and keep them between requests (every
                                     stage's weights at once); staged: load each stage's models per request and release
                                     them before the next stage (one stage's weights at a time, plus load time per request)
          --device cpu|cuda          bind every device of the run to the CPU (default) or to the CUDA GPUs, round-robin
          --queue-length <n>         jobs that may wait behind the running one (default 8); more get 429
          --output <dir>             the folder the server writes its PNGs to (default ./sd35-server-output)
          --keep-jobs <n>            finished jobs remembered, with their PNGs (default 200)
          --max-prompt-length <n>    characters per prompt (default 2000)
          --max-body-bytes <n>       request body limit (default 16384)
          --max-steps <n>            steps per request (default 200)
          --max-image-side <px>      width and height limit (default 2048)
          --steps <n>                steps when a request names none (default 28)
          --max-sequence-length <n>  T5 tokens (default 256)
        """;

    public static ServerOptions From(IConfiguration configuration)
    {
        var defaults = new ServerOptions();
        int Int(string key, int fallback, int min = 1)
        {
            var text = configuration[key];
            if (text is null) return fallback;
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v >= min
                ? v : throw new ArgumentException($"--{key} must be an integer ≥ {min}, got '{text}'");
        }
        var options = new ServerOptions
        {
            Model = configuration["model"],
            Parallel = configuration["parallel"],
            Device = configuration["device"]?.ToLowerInvariant() switch
            {
                null or "cpu" => Sd35.Mesh.ComputeDevice.Cpu,
                "cuda" => Sd35.Mesh.ComputeDevice.Cuda,
                var other => throw new ArgumentException($"--device must be cpu or cuda, got '{other}'"),
            },
            Models = configuration["models"]?.ToLowerInvariant() switch
            {
                null or "resident" => Sd35.Pipeline.ModelResidency.Resident,
                "staged" => Sd35.Pipeline.ModelResidency.Staged,
                var other => throw new ArgumentException($"--models must be resident or staged, got '{other}'"),
            },
            Bf16 = configuration["bf16"] is { } bf16 && (bool.TryParse(bf16, out bool b) ? b : throw new ArgumentException($"--bf16 takes no value or true/false, got '{bf16}'")),
            QueueLength = Int("queue-length", defaults.QueueLength, min: 0),
            OutputFolder = configuration["output"] ?? defaults.OutputFolder,
            KeepJobs = Int("keep-jobs", defaults.KeepJobs),
            MaxPromptLength = Int("max-prompt-length", defaults.MaxPromptLength),
            MaxBodyBytes = Int("max-body-bytes", defaults.MaxBodyBytes, min: 256),
            MaxSteps = Int("max-steps", defaults.MaxSteps),
            MaxImageSide = Int("max-image-side", defaults.MaxImageSide),
            DefaultSteps = Int("steps", defaults.DefaultSteps),
            MaxSequenceLength = Int("max-sequence-length", defaults.MaxSequenceLength),
        };
        if (options.Model is not null && !Directory.Exists(options.Model))
            throw new ArgumentException($"--model '{options.Model}' is not a folder");
        if (options.Parallel is not null)
        {
            try { Sd35.Mesh.ParallelConfig.Parse(options.Parallel); }
            catch (Exception e) when (e is FormatException or KeyNotFoundException)
            {
                throw new ArgumentException($"--parallel '{options.Parallel}': {e.Message}", e);
            }
        }
        return options;
    }

    /// <summary>
    /// The demo's flags take no value (<c>--bf16</c>); ASP.NET Core's command-line source wants one, so a bare flag
    /// becomes <c>--bf16=true</c>. Loopback is the default address.
    /// </summary>
    public static string[] NormalizeArguments(string[] args)
    {
        var result = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            bool bareFlag = (args[i] == "--bf16" || AccessOptions.BareFlags.Contains(args[i])) && (i + 1 == args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal));
            result.Add(bareFlag ? args[i] + "=true" : args[i]);
        }
        if (!result.Any(a => a.StartsWith("--urls", StringComparison.Ordinal)) && Environment.GetEnvironmentVariable("ASPNETCORE_URLS") is null)
            result.AddRange(["--urls", "http://127.0.0.1:5080"]);
        return [.. result];
    }
}
