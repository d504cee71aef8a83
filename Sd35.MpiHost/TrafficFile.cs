using System.Text.Json;
using Sd35.Mesh;

namespace Sd35.MpiHost;

/// <summary>One device's traffic by label and op, as JSON: what the tests compare between the backends.</summary>
public static class TrafficFile
{
    public static Dictionary<string, Dictionary<string, long[]>> Of(IReadOnlyDictionary<string, CollectiveStats> byLabel) =>
        byLabel.ToDictionary(l => l.Key, l => l.Value.ByOp.ToDictionary(o => o.Key, o => new[] { o.Value.Count, o.Value.BytesSent, o.Value.BytesReceived }));

    public static void Write(string path, IReadOnlyDictionary<string, CollectiveStats> byLabel) =>
        File.WriteAllText(path, JsonSerializer.Serialize(Of(byLabel)));

    public static Dictionary<string, Dictionary<string, long[]>> Read(string path) =>
        JsonSerializer.Deserialize<Dictionary<string, Dictionary<string, long[]>>>(File.ReadAllText(path))!;
}
