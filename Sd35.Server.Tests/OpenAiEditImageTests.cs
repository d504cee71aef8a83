using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using Microsoft.AspNetCore.Http;
using Sd35.Server.Api.OpenAi;
using Sd35.Tests.TestSupport;
using SkiaSharp;

namespace Sd35.Server.Tests;

/// <summary>How the edit form decodes its files: the declared size is checked before any pixel is decoded, and pixels read unpremultiplied.</summary>
public sealed class OpenAiEditImageTests(ServerFactory factory) : IClassFixture<ServerFactory>
{
    readonly HttpClient _client = factory.CreateClient();

    static MultipartFormDataContent Form(byte[] image, byte[]? mask = null)
    {
        var form = new MultipartFormDataContent();
        form.Add(new ByteArrayContent(image) { Headers = { ContentType = new MediaTypeHeaderValue("image/png") } }, "image", "image.png");
        if (mask is not null) form.Add(new ByteArrayContent(mask) { Headers = { ContentType = new MediaTypeHeaderValue("image/png") } }, "mask", "mask.png");
        form.Add(new StringContent("a hat"), "prompt");
        return form;
    }

    [Theory]
    [InlineData("image")]
    [InlineData("mask")]
    public async Task A_small_file_declaring_a_huge_image_is_a_400_before_it_is_decoded(string field)
    {
        // A few hundred bytes whose header says 30000x30000: decoding it first would allocate 3.6 GB of RGBA.
        var huge = HugePng.Declaring(30000, 30000);
        huge.Length.Should().BeLessThan(1000);
        var image = OpenAiSdkTests.Png(64, 64, transparentFrom: null);
        using var form = field == "image" ? Form(huge) : Form(image, huge);

        var response = await _client.PostAsync("/v1/images/edits", form);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        error.GetProperty("param").GetString().Should().Be(field);
        error.GetProperty("message").GetString().Should().Contain("30000×30000").And.Contain("at most 2048");
    }

    [Fact]
    public async Task A_half_transparent_pixel_keeps_its_colour()
    {
        using var bitmap = new SKBitmap(new SKImageInfo(8, 8, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        bitmap.Erase(new SKColor(200, 100, 50, 128));
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100);

        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        Hosting.ServerApp.ConfigureJson(json);
        json.MakeReadOnly(populateMissingResolver: true); // as the app's options are once in use
        var form = await OpenAiEditForm.ReadAsync(Request(Form(png.ToArray())), 1 << 20, 2048, json, CancellationToken.None);

        form.Image.Pixels[..3].Should().Equal([200, 100, 50], "premultiplied decoding would read (100, 50, 25)");
        form.Mask.Should().BeNull("no pixel is fully transparent");
    }

    static HttpRequest Request(MultipartFormDataContent content)
    {
        var http = new DefaultHttpContext();
        http.Request.Method = "POST";
        http.Request.ContentType = content.Headers.ContentType!.ToString();
        var body = content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
        http.Request.Body = new MemoryStream(body);
        http.Request.ContentLength = body.Length;
        return http.Request;
    }
}
