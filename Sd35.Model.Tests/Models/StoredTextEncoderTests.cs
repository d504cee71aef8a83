using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FluentAssertions;
using Sd35.Layers;
using Sd35.Models.Clip;
using Sd35.Models.T5;
using Sd35.Pipeline;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Gguf;
using Sd35.Tensors.Quantization;
using Sd35.Tests.Tensors.Quantization;
using Sd35.Tests.TestSupport;
using Sd35.Tools.Numerics;
using TorchSharp;
using Xunit.Abstractions;
using static Sd35.Tests.Models.TextEncoderFixtures;
using static TorchSharp.torch;

namespace Sd35.Tests.Models;

/// <summary>
/// The text encoders with their linears and embedding tables held in a storage format apart from the dtype they
/// compute in, data-driven over the golden encoders (<see cref="ClipAndT5GoldenTests.Cases"/>): a stored encoder
/// computes what the fp32 encoder computes on the values its held bytes stand for, as the tests' own decoders read
/// them; the token table really is held in its storage form; a GGUF T5 keeps its Q8_0 <c>token_embd</c>; and an fp8
/// T5 file is held as its bytes and computes exactly what its fp16 expansion computes.
/// </summary>
[Collection(Sd35.Tests.Mesh.MeshRunCollection.Name)]
public sealed class StoredTextEncoderTests(ITestOutputHelper output)
{
    /// <summary>Each golden encoder × bf16 and every block type the codec holds, where the encoder's width is whole blocks.</summary>
    public static TheoryData<string, GgmlType> FoldersAndFormats()
    {
        var data = new TheoryData<string, GgmlType>();
        foreach (var folder in ClipAndT5GoldenTests.Cases.Select((object[] row) => (string)row[0]))
        {
            foreach (var format in GgmlCodec.Supported.Prepend(GgmlType.BF16))
                if (!GgmlBlocks.IsBlockQuantized(format) || Width(Golden.Resolve(folder)) % GgmlBlocks.Of(format).Elements == 0)
                    data.Add(folder, format);
        }
        return data;
    }

    /// <summary>The token table's width: CLIP's hidden size, T5's d_model.</summary>
    static long Width(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var root = json.RootElement;
        return (root.TryGetProperty("hidden_size", out var hidden) ? hidden : root.GetProperty("d_model")).GetInt64();
    }

    static WeightStorage StorageOf(GgmlType format) =>
        GgmlBlocks.IsBlockQuantized(format) ? new WeightStorage { Quantize = format } : new WeightStorage { WeightDType = WeightFormats.FloatDType(format) };

    static nn.Module Load(ModelFolder folder, WeightStorage? storage, ScalarType dtype = ScalarType.Float32) =>
        ClipAndT5GoldenTests.ModelType(folder.Directory) == ClipTextConfig.ClipTextModelType
            ? ClipTextModel.FromFolder(folder, dtype: dtype, storage: storage)
            : T5EncoderModel.FromFolder(folder, dtype: dtype, storage: storage);

    static Tensor Run(nn.Module model, Tensor ids) => model switch
    {
        ClipTextModel clip => clip.forward(ids).LastHiddenState.to(ScalarType.Float32),
        T5EncoderModel t5 => t5.forward(ids).to(ScalarType.Float32),
        _ => throw new ArgumentException(model.GetName()),
    };

    static Tensor InputIds(string folder) => Golden.ReadAll(Path.Combine(folder, "io.safetensors"))["input_ids"];

    [Theory]
    [MemberData(nameof(FoldersAndFormats))]
    public void A_stored_encoder_is_the_fp32_encoder_on_the_reference_decoded_weights(string relativeFolder, GgmlType format)
    {
        using var scope = NewDisposeScope();
        var folder = Golden.Resolve(relativeFolder);
        using var stored = Load(new ModelFolder(folder), StorageOf(format));
        using var reference = Load(new ModelFolder(folder), storage: null);

        // Every table (the token table above all) is held in the format; with blocks, where its rows are whole blocks.
        var tables = stored.modules().OfType<EmbeddingTable>().ToList();
        tables.Should().NotBeEmpty();
        foreach (var table in tables)
            table.WeightStorage.Should().Be(!GgmlBlocks.IsBlockQuantized(format) || table.Width % 32 == 0 ? format : GgmlType.F32);
        tables.MaxBy(t => t.Entries)!.WeightStorage.Should().Be(format, "the token table's width is whole blocks in every case");

        var converted = ReferenceWeights.CopyInto(reference, stored);
        var ids = InputIds(folder);
        var report = AssertQuality.Fp32(Run(reference, ids), Run(stored, ids), $"{relativeFolder} {format} against fp32 on the reference-decoded weights");
        output.WriteLine($"{relativeFolder} {format}: {converted.Count} stored weights ({tables.Count(t => t.WeightStorage == format)} tables); {report}");
    }

    /// <summary>Bytes of a [rows, width] table in <paramref name="format"/>, from the format description (not the code under test).</summary>
    static long DescribedBytes(GgmlType format, long rows, long width) =>
        GgmlBlocks.IsBlockQuantized(format) ? rows * (width / 32) * ReferenceBlocks.BlockBytes(format) : rows * width * 2;

    [Theory]
    [InlineData(GgmlType.BF16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void The_t5_token_table_is_held_in_its_storage_form(GgmlType format)
    {
        using var scope = NewDisposeScope();
        using var t5 = T5EncoderModel.FromFolder(new ModelFolder(T5Folder), storage: StorageOf(format));
        var table = t5.shared;
        long bytes = table.weight.numel() * table.weight.element_size();
        output.WriteLine($"T5 shared [{table.Entries}, {table.Width}] as {format}: {bytes} bytes ({table.weight.dtype}), fp32 {table.Entries * table.Width * 4}");
        table.WeightStorage.Should().Be(format);
        table.weight.dtype.Should().Be(GgmlBlocks.IsBlockQuantized(format) ? ScalarType.Byte : ScalarType.BFloat16);
        bytes.Should().Be(DescribedBytes(format, table.Entries, table.Width));
        t5.state_dict().Keys.Should().Contain("shared.weight", "the parameter keeps the checkpoint's name");
    }

    [Fact]
    public void A_table_held_as_computed_gathers_its_rows_as_they_are()
    {
        using var scope = NewDisposeScope();
        using var ids = tensor(new long[] { 3, 0, 7, 3, 9 }).reshape(1, 5);
        using var bf16 = new EmbeddingTable(10, 64, ScalarType.BFloat16, CPU);
        using (no_grad()) bf16.weight.copy_(randn(10, 64));
        bf16.forward(ids).Equals(bf16.weight.index_select(0, ids.flatten()).reshape(1, 5, 64)).Should().BeTrue("storage = compute gathers the rows untouched");

        // fp32 storage computing in bf16: the gathered rows are converted, exactly as converting the whole table would.
        using var wide = new EmbeddingTable(10, 64, ScalarType.BFloat16, CPU);
        wide.StoreWeightAs(GgmlType.F32);
        using (no_grad()) wide.weight.copy_(randn(10, 64));
        wide.forward(ids).Equals(wide.weight.to(ScalarType.BFloat16).index_select(0, ids.flatten()).reshape(1, 5, 64)).Should().BeTrue();
    }

    [Fact]
    public void A_gguf_t5_keeps_its_q8_0_token_table_as_the_files_blocks()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var gguf = dir.File("t5xxl-Q8_0.gguf");
        using (var checkpoint = new ModelFolder(T5Folder).OpenCheckpoint())
        {
            var stored = OriginalLayoutWriter.Stored(checkpoint, ModelComponent.T5, GgufT5Layout.RulesForModel);
            GgufWriter.Write(gguf, stored.Select(t => t.Shape is [_, var width] && width % 32 == 0
                ? new GgufTensor(t.Name, GgmlType.Q8_0, t.Shape, () => { using var dense = t.Read(); return GgmlCodec.Quantize(dense, GgmlType.Q8_0); })
                : new GgufTensor(t.Name, GgmlType.F32, t.Shape, t.Read)).ToList());
        }
        using var model = T5EncoderModel.FromFolder(PipelineComponents.FromFile(gguf, ModelComponent.T5, T5Folder));
        using var reference = T5EncoderModel.FromFolder(new ModelFolder(T5Folder));

        model.shared.WeightStorage.Should().Be(GgmlType.Q8_0);
        using (var file = SingleFileCheckpoint.Open(gguf, ModelComponent.T5))
        using (var blocks = file.ReadBlocks("shared.weight"))
            model.shared.weight.Equals(blocks.Blocks).Should().BeTrue("the table holds the file's blocks as they are");
        ReferenceWeights.StoredLayers(model).Should().OnlyContain(l => l.Layer.WeightStorage == GgmlType.Q8_0);

        ReferenceWeights.CopyInto(reference, model);
        var ids = InputIds(T5Folder);
        output.WriteLine($"GGUF T5 Q8_0: {AssertQuality.Fp32(reference.forward(ids), model.forward(ids), "GGUF Q8_0 T5 against fp32 on the reference-decoded file")}");
    }

    /// <summary>
    /// The golden T5 with every tensor rounded to E4M3 by the tests' own encoder, written as users hold it (a bare file
    /// of F8_E4M3 tensors, <c>t5xxl_fp8_e4m3fn.safetensors</c>) and as its exact fp16 expansion (what the reader made of
    /// the fp8 file before it kept the bytes).
    /// </summary>
    static (string Fp8, string Fp16) WriteFp8T5(TempDirectory dir)
    {
        var fp8 = dir.File("t5xxl_fp8_e4m3fn.safetensors");
        var fp16 = dir.File("t5xxl_fp16.safetensors");
        var bytes = new Dictionary<string, Tensor>();
        var halves = new Dictionary<string, Tensor>();
        foreach (var (name, value) in Golden.ReadAll(Path.Combine(T5Folder, "model.safetensors")))
        {
            var encoded = value.to(ScalarType.Float32).contiguous().data<float>().ToArray().Select(ReferenceFp8.EncodeE4M3).ToArray();
            bytes[name] = tensor(encoded).reshape(value.shape);
            halves[name] = tensor(encoded.Select(b => (float)ReferenceFp8.Value(GgmlType.F8_E4M3, b)).ToArray()).reshape(value.shape).to(ScalarType.Float16);
        }
        SafetensorsWriter.Write(fp16, halves);
        SafetensorsWriter.Write(fp8, bytes);
        RelabelAsE4M3(fp8);
        return (fp8, fp16);
    }

    /// <summary>The project's writer has no fp8 dtype: its U8 tensors (one byte each, as fp8's) are relabelled F8_E4M3.</summary>
    static void RelabelAsE4M3(string path)
    {
        var file = File.ReadAllBytes(path);
        int length = (int)BitConverter.ToUInt64(file, 0);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, length))!.AsObject();
        foreach (var (key, entry) in header)
            if (key != "__metadata__") entry!["dtype"] = "F8_E4M3";
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var padded = json.Concat(Enumerable.Repeat((byte)' ', (8 - json.Length % 8) % 8)).ToArray();
        using var stream = File.Create(path);
        stream.Write(BitConverter.GetBytes((ulong)padded.Length));
        stream.Write(padded);
        stream.Write(file, 8 + length, file.Length - 8 - length);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void An_fp8_t5_is_held_as_its_bytes_and_computes_what_its_fp16_expansion_computes(ScalarType compute)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var (fp8File, fp16File) = WriteFp8T5(dir);
        using var fp8 = T5EncoderModel.FromFolder(PipelineComponents.FromFile(fp8File, ModelComponent.T5, T5Folder), dtype: compute);
        using var fp16 = T5EncoderModel.FromFolder(PipelineComponents.FromFile(fp16File, ModelComponent.T5, T5Folder), dtype: compute);

        // Every linear and the token table hold the file's bytes, one per value; everything else is in the compute dtype.
        var layers = ReferenceWeights.StoredLayers(fp8).ToList();
        layers.Should().NotBeEmpty().And.Contain(l => l.Layer is EmbeddingTable);
        foreach (var (name, layer) in layers)
        {
            layer.WeightStorage.Should().Be(GgmlType.F8_E4M3, name);
            layer.weight.dtype.Should().Be(ScalarType.Byte, name);
            layer.weight.numel().Should().Be(layer.WeightShape.Aggregate(1L, (a, b) => a * b), name);
        }
        var storedNames = layers.Select(l => l.Name + ".weight").ToHashSet();
        fp8.state_dict().Where(p => !storedNames.Contains(p.Key)).Should().OnlyContain(p => p.Value.dtype == compute);
        long heldBytes = fp8.parameters().Sum(p => p.numel() * p.element_size()), fp16Bytes = fp16.parameters().Sum(p => p.numel() * p.element_size());
        output.WriteLine($"fp8 T5 computing in {compute}: {layers.Count} weights held as bytes; parameters {heldBytes} bytes against {fp16Bytes} read as fp16");

        // What /v1/info and the demo report: the file's fp8 bytes, one a value, held as they are.
        var summary = ComponentSummary.Of("text_encoder_3", PipelineComponents.FromFile(fp8File, ModelComponent.T5, T5Folder), null);
        summary.Quantization.Should().Be("f8_e4m3 (in the file)");
        summary.Stored.Keys.Should().Equal("F8_E4M3");
        summary.Bytes.Should().Be(new FileInfo(fp8File).Length - 8 - (long)BitConverter.ToUInt64(File.ReadAllBytes(fp8File), 0));

        var ids = InputIds(T5Folder);
        using var actual = fp8.forward(ids);
        using var expected = fp16.forward(ids);
        output.WriteLine($"against the fp16 expansion: {Quality.Compare(expected.to(ScalarType.Float32), actual.to(ScalarType.Float32))}");
        actual.Equals(expected).Should().BeTrue("fp8 values are exact in every compute dtype, so expanding at use computes what reading as fp16 did");
    }

    [Fact]
    public void An_fp8_t5_on_a_tensor_parallel_mesh_holds_bytes_on_every_rank_and_computes_what_one_device_does()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDirectory();
        var (fp8File, _) = WriteFp8T5(dir);
        var ids = InputIds(T5Folder);
        using var single = T5EncoderModel.FromFolder(PipelineComponents.FromFile(fp8File, ModelComponent.T5, T5Folder));
        using var expected = single.forward(ids);
        // One-value blocks never split: every column and row cut of an fp8 weight is whole, so every rank keeps bytes.
        var ranks = TensorParallel.Run(2, rank =>
        {
            using var model = T5EncoderModel.FromFolder(PipelineComponents.FromFile(fp8File, ModelComponent.T5, T5Folder), rank);
            var storage = ReferenceWeights.StoredLayers(model).Select(l => l.Layer.WeightStorage).Distinct().ToList();
            return (Storage: storage, Output: model.forward(ids));
        });
        foreach (var (rank, index) in ranks.Select((r, i) => (r, i)))
        {
            rank.Storage.Should().Equal([GgmlType.F8_E4M3], $"rank {index}");
            output.WriteLine($"rank {index} of 2: {AssertQuality.Fp32(expected, rank.Output, $"fp8 T5 at tp 2, rank {index}, against one device")}");
        }
    }
}
