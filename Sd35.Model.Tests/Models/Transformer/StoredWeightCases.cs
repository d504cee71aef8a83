using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;

namespace Sd35.Tests.Models.Transformer;

/// <summary>
/// The one case source of the transformer tests on stored weights (<see cref="QuantizedTransformerTests"/>,
/// <see cref="GgufTransformerTests"/>): every MMDiT golden (<see cref="TransformerGoldenTests.GoldenFolders"/>), named
/// relative to fixtures/, alone or with every block type the codec holds, and every <c>*.gguf</c> dropped beside a
/// golden — so a new golden, block type or GGUF file is a new case of each test at once.
/// </summary>
public static class StoredWeightCases
{
    /// <summary>Each golden folder.</summary>
    public static TheoryData<string> Folders() => Golden.Cases(TransformerGoldenTests.GoldenFolders());

    /// <summary>Each golden with each block type the codec holds.</summary>
    public static TheoryData<string, GgmlType> FoldersAndTypes()
    {
        var data = new TheoryData<string, GgmlType>();
        foreach (var (folder, type) in GoldensAndTypes()) data.Add(folder, type);
        return data;
    }

    /// <summary>(golden folder, a block type to write the golden in, or the name of a GGUF file found in the folder).</summary>
    public static TheoryData<string, string> GgufVariants()
    {
        var data = new TheoryData<string, string>();
        foreach (var (folder, type) in GoldensAndTypes()) data.Add(folder, type.ToString());
        foreach (var folder in TransformerGoldenTests.GoldenFolders())
            foreach (var file in Directory.EnumerateFiles(folder, "*.gguf").Order())
                data.Add(Relative(folder), Path.GetFileName(file));
        return data;
    }

    static IEnumerable<(string Folder, GgmlType Type)> GoldensAndTypes() =>
        from folder in TransformerGoldenTests.GoldenFolders()
        from type in GgmlCodec.Supported
        select (Relative(folder), type);

    static string Relative(string folder) => Path.GetRelativePath(RepoPaths.Fixtures(), folder);
}
