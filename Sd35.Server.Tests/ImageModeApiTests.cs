using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Sd35.Server.Jobs;
using Sd35.Tests.TestSupport;
using SkiaSharp;

namespace Sd35.Server.Tests;

/// <summary>
/// Image to image, inpainting, several images per request and the text options through the API in process: JSON with
/// base64 images and multipart uploads, what the job reports (mode, strength, the mask's repaint region), every image
/// of a batch, and the bad inputs answered 400 (413 for the body) naming the field, before any work.
/// </summary>
public sealed class ImageModeApiTests(ServerFactory factory) : IClassFixture<ServerFactory>
{
    readonly HttpClient _client = factory.WithWebHostBuilder(b => b.UseSetting("max-body-bytes", "200000").UseSetting("max-images", "3")).CreateClient();

    /// <summary>A smooth colour picture as PNG or JPEG bytes.</summary>
    internal static byte[] Picture(int width, int height, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(255 * x / width), (byte)(255 * y / height), 90));
        using var data = bitmap.Encode(format, 95);
        return data.ToArray();
    }

    /// <summary>A black PNG mask with a white (repaint) rectangle.</summary>
    internal static byte[] Mask(int width, int height, SKRectI repaint)
    {
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, repaint.Contains(x, y) ? SKColors.White : SKColors.Black);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    static (int Width, int Height) SizeOf(byte[] png)
    {
        using var bitmap = SKBitmap.Decode(png);
        return (bitmap.Width, bitmap.Height);
    }

    [Fact]
    public async Task Image_to_image_from_base64_jpeg_runs_strength_of_the_steps_at_the_images_size()
    {
        var id = await _client.SubmitOk(new { prompt = "a red fox", steps = 4, strength = 0.5, seed = 2, image = Convert.ToBase64String(Picture(48, 32, SKEncodedImageFormat.Jpeg)) });
        var job = await _client.WaitFinished(id);
        job.Status.Should().Be(JobStatus.Succeeded, job.Error);
        job.Steps.Should().Be(2, "strength 0.5 of 4 steps runs the last 2");
        job.Parameters.Mode.Should().Be("image_to_image");
        job.Parameters.Strength.Should().Be(0.5);
        (job.Parameters.Width, job.Parameters.Height).Should().Be((48, 32));
        SizeOf(await _client.GetByteArrayAsync($"/v1/images/{id}/png")).Should().Be((48, 32));
    }

    [Fact]
    public async Task Inpainting_by_multipart_upload_reports_the_mask_region_and_equals_the_json_request()
    {
        var image = Picture(32, 32);
        var mask = Mask(32, 32, new SKRectI(4, 8, 20, 24));   // 16 × 16 pixels from (4, 8)
        using var form = new MultipartFormDataContent
        {
            { new StringContent("a vase of flowers"), "prompt" },
            { new StringContent("2"), "steps" },
            { new StringContent("0.8"), "strength" },
            { new StringContent("5"), "seed" },
            { new ByteArrayContent(image), "image", "in.png" },
            { new ByteArrayContent(mask), "mask", "mask.png" },
        };
        var response = await _client.PostAsync("/v1/images", form);
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        var id = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        var job = await _client.WaitFinished(id);
        job.Status.Should().Be(JobStatus.Succeeded, job.Error);
        job.Parameters.Mode.Should().Be("inpainting");
        job.Parameters.Mask.Should().Be(new MaskRegion(16 * 16, 4, 8, 16, 16));

        var direct = await _client.PostAsJsonAsync("/v1/generate", new
        {
            prompt = "a vase of flowers", steps = 2, strength = 0.8, seed = 5,
            image = "data:image/png;base64," + Convert.ToBase64String(image), mask = Convert.ToBase64String(mask),
        }, Api.Json);
        direct.StatusCode.Should().Be(HttpStatusCode.OK, await direct.Content.ReadAsStringAsync());
        (await direct.Content.ReadAsByteArrayAsync()).Should().Equal(await _client.GetByteArrayAsync($"/v1/images/{id}/png"),
            "an upload and base64 JSON are the same request");
    }

    [Fact]
    public async Task Several_images_per_prompt_with_a_prompt_per_encoder_are_each_served()
    {
        var id = await _client.SubmitOk(new { prompt = "a lighthouse", prompt_2 = "stormy sea", prompt_3 = "a tall lighthouse", negative_prompt_2 = "cartoon", n = 2, steps = 2, width = 32, height = 32 });
        var job = await _client.WaitFinished(id);
        job.Status.Should().Be(JobStatus.Succeeded, job.Error);
        job.Parameters.N.Should().Be(2);
        job.Parameters.Prompt2.Should().Be("stormy sea");
        job.Images.Should().Equal($"/v1/images/{id}/png/1", $"/v1/images/{id}/png/2");
        var first = await _client.GetByteArrayAsync(job.Images[0]);
        var second = await _client.GetByteArrayAsync(job.Images[1]);
        first.Should().Equal(await _client.GetByteArrayAsync($"/v1/images/{id}/png"));
        second.Should().NotEqual(first, "each image of the batch has its own noise");
        (await _client.GetAsync($"/v1/images/{id}/png/3")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task No_t5_runs()
    {
        var job = await _client.WaitFinished(await _client.SubmitOk(new { prompt = "a cat", no_t5 = true, steps = 1, width = 32, height = 32 }));
        job.Status.Should().Be(JobStatus.Succeeded, job.Error);
        job.Parameters.NoT5.Should().BeTrue();
    }

    public static TheoryData<string, string> BadRequests()
    {
        var png = Convert.ToBase64String(Picture(32, 32));
        var cut = Convert.ToBase64String(Picture(32, 32)[..100]);
        var wideMask = Convert.ToBase64String(Mask(48, 32, new SKRectI(0, 0, 8, 8)));
        var tooLarge = Convert.ToBase64String(Picture(208, 32));
        var odd = Convert.ToBase64String(Picture(40, 36));
        // A few hundred bytes declaring 30000×30000 (30000² × 4 overflows an int): refused from the header.
        var huge = Convert.ToBase64String(HugePng.Declaring(30000, 30000));
        return new()
        {
            { """{"prompt":"x","n":0}""", "n" },
            { """{"prompt":"x","n":4}""", "n" },
            { $$"""{"prompt":"x","strength":1.5,"image":"{{png}}"}""", "strength" },
            { $$"""{"prompt":"x","strength":0,"image":"{{png}}"}""", "strength" },
            { """{"prompt":"x","strength":0.5}""", "strength" },
            { $$"""{"prompt":"x","mask":"{{png}}"}""", "mask" },
            { $$"""{"prompt":"x","seed":101,"image":"{{cut}}"}""", "image" },
            { """{"prompt":"x","image":"not base64!"}""", "image" },
            { """{"prompt":"x","image":"aGVsbG8="}""", "image" },
            { $$"""{"prompt":"x","image":"{{png}}","mask":"{{wideMask}}"}""", "mask" },
            { $$"""{"prompt":"x","seed":102,"image":"{{tooLarge}}"}""", "image" },
            { $$"""{"prompt":"x","seed":103,"image":"{{odd}}"}""", "image" },
            { $$"""{"prompt":"x","seed":104,"image":"{{huge}}"}""", "image" },
            { $$"""{"prompt":"x","seed":105,"image":"{{png}}","mask":"{{huge}}"}""", "mask" },
            { """{"prompt":"x","no_t5":true,"prompt_3":"t5 text"}""", "prompt_3" },
            { $$$"""{"prompt":"x","seed":106,"image":"{{{png}}}","skip_layer_guidance":{"layers":[1]}}""", "skip_layer_guidance" },
        };
    }

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_input_is_400_naming_the_field(string body, string field)
    {
        var response = await _client.PostAsync("/v1/images", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, text);
        JsonDocument.Parse(text).RootElement.GetProperty("field").GetString().Should().Be(field, text);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_and_n_above_one_is_refused_by_the_synchronous_endpoint()
    {
        var big = Convert.ToBase64String(new byte[300_000]);
        (await _client.PostAsJsonAsync("/v1/images", new { prompt = "x", image = big }, Api.Json)).StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        var response = await _client.PostAsJsonAsync("/v1/generate", new { prompt = "x", n = 2 }, Api.Json);
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).Should().Contain("\"field\":\"n\"");
    }
}
