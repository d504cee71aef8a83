using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Checkpoints.Layouts;
using Sd35.Tensors.Quantization;
using Sd35.Tests.TestSupport;

namespace Sd35.Server.Tests;

/// <summary>
/// The server on the files users hold: a diffusers folder with its transformer replaced by a Q4_0 GGUF file and
/// <c>--quantize q8_0</c> for the text encoders. <c>/v1/info</c> shows each component's source, format, quantization
/// and bytes, and the precision; a generation runs on the blocks.
/// </summary>
public sealed class GgufModelInfoTests
{
    sealed class GgufServer(string model, string transformer) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseSetting("model", model);
            builder.UseSetting("transformer", transformer);
            builder.UseSetting("quantize", "q8_0");
            builder.UseSetting("compute-dtype", "float32");
            builder.UseSetting("steps", "1");
            builder.UseSetting("output", Path.Combine(model, "out"));
            builder.ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        }
    }

    [Fact]
    public async Task Info_shows_each_component_source_format_quantization_and_bytes()
    {
        using var model = new TinyModelCopy();
        var gguf = Path.Combine(model.Root, "transformer-Q4_0.gguf");
        using (var checkpoint = new ModelFolder(model.Transformer).OpenCheckpoint())
            OriginalLayoutWriter.WriteGguf(gguf, checkpoint, GgmlType.Q4_0, GgmlCodec.Quantize);
        Directory.CreateDirectory(Path.Combine(model.Root, "out"));
        using var server = new GgufServer(model.Root, gguf);
        using var client = server.CreateClient();

        var info = await client.GetFromJsonAsync<JsonElement>("/v1/info");
        var precision = info.GetProperty("precision");
        (precision.GetProperty("compute").GetString(), precision.GetProperty("vae").GetString()).Should().Be(("fp32", "fp32"));
        precision.GetProperty("storage").GetString().Should().Contain("quantized Q8_0");
        precision.GetProperty("measured").ValueKind.Should().Be(JsonValueKind.Null, "--compute-dtype was given");

        var components = info.GetProperty("components").EnumerateArray().ToDictionary(c => c.GetProperty("component").GetString()!);
        var transformer = components["transformer"];
        (transformer.GetProperty("source").GetString(), transformer.GetProperty("format").GetString(), transformer.GetProperty("quantization").GetString())
            .Should().Be((gguf, "GGUF", "q4_0 (in the file)"));
        transformer.GetProperty("stored").GetProperty("Q4_0").GetInt64().Should().BePositive();
        transformer.GetProperty("bytes").GetInt64().Should().Be(transformer.GetProperty("stored").EnumerateObject().Sum(p => p.Value.GetInt64()));
        var t5 = components["text_encoder_3"];
        (t5.GetProperty("source").GetString(), t5.GetProperty("format").GetString(), t5.GetProperty("quantization").GetString())
            .Should().Be((Path.Combine(model.Root, "text_encoder_3"), "diffusers folder", "q8_0 (at load)"));
        components["vae"].GetProperty("quantization").GetString().Should().Be("none", "the VAE's convolutions are not quantized");

        var response = await client.PostAsJsonAsync("/v1/generate", new { prompt = "a red fox", seed = 1 });
        response.IsSuccessStatusCode.Should().BeTrue(await response.Content.ReadAsStringAsync());
    }
}
