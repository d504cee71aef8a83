using System.Globalization;
using Microsoft.Extensions.Configuration;
using Sd35.Hosting;
using Sd35.Pipeline;

namespace Sd35.Server.Hosting;

/// <summary>
/// The server's settings, read once at start-up from the command line (<c>--model</c>, <c>--parallel</c>, … as the
/// demo spells them) or any other configuration source (the tests set them in memory). A bad value stops the server
/// before it binds a port, with a message naming the option.
/// </summary>
public sealed record ServerOptions
{
    /// <summary>
    /// The pipeline: model, mesh, device, dtypes, residency (resident by default here) and the limits on a request
    /// (<see cref="Defaults"/>); read through the library's one mapping (<see cref="PipelineSettingOptions"/>).
    /// </summary>
    public PipelineSettings Pipeline { get; init; } = Defaults;

    /// <summary>The server's pipeline defaults: models stay loaded between requests, and a request's size is bounded.</summary>
    public static PipelineSettings Defaults { get; } = new()
    {
        Residency = ModelResidency.Resident,
        Limits = new GenerationLimits { MaxImages = 4, MaxSteps = 200, MaxImageSide = 2048 },
    };

    /// <summary>Jobs that may wait behind the running one; one more gets 429.</summary>
    public int QueueLength { get; init; } = 8;
    /// <summary>The only folder the server writes to: one PNG per finished job, named by the job id.</summary>
    public string OutputFolder { get; init; } = "sd35-server-output";
    /// <summary>Finished jobs (and their PNGs) remembered; older ones are forgotten and their files deleted.</summary>
    public int KeepJobs { get; init; } = 200;
    public int MaxPromptLength { get; init; } = 2000;
    /// <summary>Room for an input image and a mask in base64 (a 1024² PNG is a few MB).</summary>
    public int MaxBodyBytes { get; init; } = 24 * 1024 * 1024;
    public int DefaultSteps { get; init; } = 28;
    public int MaxSequenceLength { get; init; } = 256;

    public static string Usage { get; } = $"""
        Sd35.Server — HTTP API and web GUI for Stable Diffusion 3.5

          --urls <url>               where to listen (default http://127.0.0.1:5080; loopback only unless you say otherwise)
        {PipelineSettingOptions.Usage(Defaults)}
          --queue-length <n>         jobs that may wait behind the running one (default 8); more get 429
          --output <dir>             the folder the server writes its PNGs to (default ./sd35-server-output)
          --keep-jobs <n>            finished jobs remembered, with their PNGs (default 200)
          --max-prompt-length <n>    characters per prompt (default 2000)
          --max-body-bytes <n>       request body limit, input image and mask included (default 25165824)
          --max-images <n>           images per request, the API's n (default {Defaults.Limits.MaxImages})
          --max-steps <n>            steps per request (default {Defaults.Limits.MaxSteps})
          --max-image-side <px>      width and height limit (default {Defaults.Limits.MaxImageSide})
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
            Pipeline = PipelineSettingOptions.Read(key => configuration[key], Defaults) with
            {
                Limits = new GenerationLimits
                {
                    MaxSteps = Int("max-steps", Defaults.Limits.MaxSteps),
                    MaxImages = Int("max-images", Defaults.Limits.MaxImages),
                    MaxImageSide = Int("max-image-side", Defaults.Limits.MaxImageSide),
                },
            },
            QueueLength = Int("queue-length", defaults.QueueLength, min: 0),
            OutputFolder = configuration["output"] ?? defaults.OutputFolder,
            KeepJobs = Int("keep-jobs", defaults.KeepJobs),
            MaxPromptLength = Int("max-prompt-length", defaults.MaxPromptLength),
            MaxBodyBytes = Int("max-body-bytes", defaults.MaxBodyBytes, min: 256),
            DefaultSteps = Int("steps", defaults.DefaultSteps),
            MaxSequenceLength = Int("max-sequence-length", defaults.MaxSequenceLength),
        };
        return options;
    }

    static readonly HashSet<string> PipelineFlags = [.. PipelineSettingOptions.All.Where(o => o.IsFlag).Select(o => "--" + o.Name)];

    /// <summary>
    /// The demo's flags take no value (<c>--bf16</c>); ASP.NET Core's command-line source wants one, so a bare flag
    /// becomes <c>--bf16=true</c>. Loopback is the default address.
    /// </summary>
    public static string[] NormalizeArguments(string[] args)
    {
        var result = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            bool bareFlag = (PipelineFlags.Contains(args[i]) || AccessOptions.BareFlags.Contains(args[i])) && (i + 1 == args.Length || args[i + 1].StartsWith("--", StringComparison.Ordinal));
            result.Add(bareFlag ? args[i] + "=true" : args[i]);
        }
        if (!result.Any(a => a.StartsWith("--urls", StringComparison.Ordinal)) && Environment.GetEnvironmentVariable("ASPNETCORE_URLS") is null)
            result.AddRange(["--urls", "http://127.0.0.1:5080"]);
        return [.. result];
    }
}
