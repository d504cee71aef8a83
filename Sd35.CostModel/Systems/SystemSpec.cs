using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Sd35.CostModeling.Systems;

/// <summary>A number with where it comes from (a section of shared/docs/systems.md, a public spec, or "[E]" and the arithmetic).</summary>
public sealed record Sourced(
    [property: JsonPropertyName("value")] double Value,
    [property: JsonPropertyName("source")] string Source)
{
    public static implicit operator double(Sourced s) => s.Value;
}

/// <summary>How collectives behave on one topology: measured bus-bandwidth efficiency per op (fraction of the links' rate).</summary>
public sealed record CclEfficiency(
    [property: JsonPropertyName("all_gather")] Sourced AllGather,
    [property: JsonPropertyName("reduce_scatter")] Sourced ReduceScatter,
    [property: JsonPropertyName("all_reduce")] Sourced AllReduce,
    [property: JsonPropertyName("all_to_all")] Sourced AllToAll);

/// <summary>Fixed cost of a collective call: a base latency plus a cost per hop (fitted latency–bandwidth models).</summary>
public sealed record CclLatency(
    [property: JsonPropertyName("base_us")] Dictionary<string, double> BaseUs,
    [property: JsonPropertyName("per_hop_us")] Dictionary<string, double> PerHopUs,
    [property: JsonPropertyName("source")] string Source);

/// <summary>
/// One system the cost model can predict for, as data (<c>Systems/*.json</c>): the chip's rates, the mesh, and the
/// links between chips. Tenstorrent meshes have links per neighbour and a linear or ring topology per axis; GPU
/// nodes are switched (<see cref="Switched"/>), so any group of devices sees the same bus bandwidth.
/// </summary>
public sealed record SystemSpec
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("description")] public required string Description { get; init; }
    [JsonPropertyName("chip")] public required string Chip { get; init; }
    /// <summary>Devices calibrated together share a fitted compute efficiency ("tenstorrent"); others carry their own prior.</summary>
    [JsonPropertyName("calibration_family")] public required string CalibrationFamily { get; init; }
    [JsonPropertyName("mesh_rows")] public required int MeshRows { get; init; }
    [JsonPropertyName("mesh_cols")] public required int MeshCols { get; init; }
    [JsonPropertyName("mesh_source")] public required string MeshSource { get; init; }

    /// <summary>Dense BF16 matrix rate per chip at the fidelity the reference uses (TFLOP/s).</summary>
    [JsonPropertyName("matmul_tflops")] public required Sourced MatmulTflops { get; init; }
    /// <summary>Rate of element-wise arithmetic (TFLOP/s); norms and element-wise ops cost max(flops/this, bytes/DRAM).</summary>
    [JsonPropertyName("vector_tflops")] public required Sourced VectorTflops { get; init; }
    [JsonPropertyName("dram_gbps")] public required Sourced DramGBps { get; init; }
    [JsonPropertyName("dram_efficiency")] public required Sourced DramEfficiency { get; init; }
    /// <summary>Fraction of <see cref="MatmulTflops"/> reached by GEMM/attention/conv; null: fitted (<see cref="CalibrationFamily"/>).</summary>
    [JsonPropertyName("compute_efficiency")] public Sourced? ComputeEfficiency { get; init; }
    /// <summary>Fixed cost of every operation (dispatch, small-kernel floor) in µs; null: fitted.</summary>
    [JsonPropertyName("op_overhead_us")] public Sourced? OpOverheadUs { get; init; }

    [JsonPropertyName("switched")] public bool Switched { get; init; }
    /// <summary>Per link, per direction (GB/s). For a switched node: the per-GPU injection bandwidth.</summary>
    [JsonPropertyName("link_gbps")] public Sourced? LinkGBps { get; init; }
    [JsonPropertyName("links_axis0")] public Sourced? LinksAxis0 { get; init; }
    [JsonPropertyName("links_axis1")] public Sourced? LinksAxis1 { get; init; }
    /// <summary>"linear" or "ring" per mesh axis (a ring closes only over the whole axis).</summary>
    [JsonPropertyName("topology_axis0")] public string TopologyAxis0 { get; init; } = "linear";
    [JsonPropertyName("topology_axis1")] public string TopologyAxis1 { get; init; } = "linear";
    [JsonPropertyName("topology_source")] public string? TopologySource { get; init; }
    [JsonPropertyName("hop_latency_us")] public Sourced? HopLatencyUs { get; init; }
    [JsonPropertyName("ccl_latency")] public CclLatency? Latency { get; init; }
    /// <summary>Efficiency tables by topology: "line2", "line4" (used for lines of ≥ 4), "ring".</summary>
    [JsonPropertyName("ccl_efficiency")] public Dictionary<string, CclEfficiency>? Efficiency { get; init; }
    /// <summary>Switched nodes: measured bus bandwidth per op (GB/s), independent of group size.</summary>
    [JsonPropertyName("switched_busbw_gbps")] public CclEfficiency? SwitchedBusBw { get; init; }
    [JsonPropertyName("notes")] public string[] Notes { get; init; } = [];

    public int Devices => MeshRows * MeshCols;

    static readonly JsonSerializerOptions JsonOptions = new() { ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };

    public static SystemSpec FromJson(string json, string origin)
    {
        try
        {
            return JsonSerializer.Deserialize<SystemSpec>(json, JsonOptions) ?? throw new InvalidDataException($"{origin} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{origin} is not a valid system description: {e.Message}", e);
        }
    }

    /// <summary>The systems shipped with the cost model, by name.</summary>
    public static IReadOnlyDictionary<string, SystemSpec> BuiltIn { get; } = LoadBuiltIn();

    public static IReadOnlyList<string> Names => BuiltIn.Keys.Order().ToArray();

    /// <summary>A built-in system by name, or a JSON file by path.</summary>
    public static SystemSpec Get(string nameOrPath)
    {
        if (BuiltIn.TryGetValue(nameOrPath, out var spec)) return spec;
        if (File.Exists(nameOrPath)) return FromJson(File.ReadAllText(nameOrPath), nameOrPath);
        throw new ArgumentException($"unknown system '{nameOrPath}'; known: {string.Join(", ", Names)} (or a path to a system JSON file)");
    }

    static Dictionary<string, SystemSpec> LoadBuiltIn()
    {
        var assembly = typeof(SystemSpec).Assembly;
        var result = new Dictionary<string, SystemSpec>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("Systems.", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            var spec = FromJson(reader.ReadToEnd(), name);
            result[spec.Name] = spec;
        }
        return result;
    }
}
