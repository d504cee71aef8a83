using System.ClientModel;
using System.Net.Http.Json;
using FluentAssertions;
using OpenAI;
using OpenAI.Images;
using OpenAI.Models;
using SkiaSharp;

namespace Sd35.Server.Tests;

/// <summary>The server on a loopback socket, for a real OpenAI client (one for the class: the model loads once).</summary>
public sealed class OpenAiServer : IAsyncLifetime
{
    public LiveServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await LiveServer.StartAsync(null, "--queue-length", "4");

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>OpenAI's client pointed at this server (<c>/v1</c> is the base, as with OpenAI).</summary>
    public OpenAIClient Client(string key = "no key needed") =>
        new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(Server.BaseAddress, "/v1") });
}

/// <summary>
/// The OpenAI-compatible images API driven by the official OpenAI .NET library, as any OpenAI client would use it:
/// generations as bytes and as URLs (each image equal to the native API's image of its seed), a 400 surfacing as the
/// SDK's exception with the server's message, the model list, and edits.
/// </summary>
public sealed class OpenAiSdkTests(OpenAiServer fixture) : IClassFixture<OpenAiServer>
{
    const string Model = "sd35-tiny-reference";
    readonly HttpClient _http = fixture.Server.Client;

    [Fact]
    public async Task The_sdk_lists_the_served_model()
    {
        var models = (await fixture.Client().GetOpenAIModelClient().GetModelsAsync()).Value;
        models.Select(m => m.Id).Should().Equal(Model);
        (await fixture.Client().GetOpenAIModelClient().GetModelAsync(Model)).Value.OwnedBy.Should().Be("sd35");
    }

    [Fact]
    public async Task The_sdk_generates_n_images_as_bytes_and_as_urls_each_the_native_image_of_its_seed()
    {
        var images = fixture.Client().GetImageClient(Model);
        var options = new ImageGenerationOptions { Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Bytes };
        var asBytes = (await images.GenerateImagesAsync("a red fox", 2, options)).Value;
        asBytes.Should().HaveCount(2);
        asBytes.CreatedAt.Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));

        // n images are seeds 0, 1 (the default seed and the next): the native API's images of those seeds.
        for (int seed = 0; seed < 2; seed++)
        {
            var native = await _http.PostAsJsonAsync("/v1/generate", new { prompt = "a red fox", seed, width = 64, height = 64 }, Api.Json);
            asBytes[seed].ImageBytes.ToArray().Should().Equal(await native.Content.ReadAsByteArrayAsync(), $"image {seed} is seed {seed}'s");
        }
        using (var bitmap = SKBitmap.Decode(asBytes[0].ImageBytes.ToArray())) (bitmap.Width, bitmap.Height).Should().Be((64, 64));

        options.ResponseFormat = GeneratedImageFormat.Uri;
        var asUrls = (await images.GenerateImagesAsync("a red fox", 2, options)).Value;
        asUrls.Should().HaveCount(2);
        for (int i = 0; i < 2; i++)
        {
            var url = asUrls[i].ImageUri;
            url.IsAbsoluteUri.Should().BeTrue("OpenAI answers absolute URLs");
            url.GetLeftPart(UriPartial.Authority).Should().Be(fixture.Server.BaseAddress.GetLeftPart(UriPartial.Authority));
            url.AbsolutePath.Should().MatchRegex("^/v1/images/[0-9a-f]{32}/png$");
            (await _http.GetByteArrayAsync(url)).Should().Equal(asBytes[i].ImageBytes.ToArray());
        }
    }

    [Fact]
    public async Task A_bad_request_is_the_sdks_exception_with_the_servers_message()
    {
        var images = fixture.Client().GetImageClient(Model);
        var bad = () => images.GenerateImageAsync("a red fox", new ImageGenerationOptions { Size = new GeneratedImageSize(30, 64) });
        var thrown = (await bad.Should().ThrowAsync<ClientResultException>()).Which;
        thrown.Status.Should().Be(400);
        thrown.Message.Should().Contain("must be a positive multiple of 8 pixels; got 30");

        var otherModel = () => fixture.Client().GetImageClient("dall-e-3").GenerateImageAsync("a red fox");
        (await otherModel.Should().ThrowAsync<ClientResultException>()).Which.Message.Should().Contain($"this server serves '{Model}'");
    }

    /// <summary>Until the pipeline has image-to-image, an edit is checked in full and refused, naming what is missing.</summary>
    [Fact]
    public async Task An_edit_is_refused_naming_the_missing_image_to_image_until_the_pipeline_has_it()
    {
        var images = fixture.Client().GetImageClient(Model);
        using var image = new MemoryStream(Png(64, 64, transparentFrom: null));
        var edit = () => images.GenerateImageEditsAsync(image, "photo.png", "the same fox at night", 1, new ImageEditOptions { Size = new GeneratedImageSize(64, 64) });
        var thrown = (await edit.Should().ThrowAsync<ClientResultException>()).Which;
        thrown.Status.Should().Be(400);
        thrown.Message.Should().Contain("image-to-image is missing from this server's pipeline");

        using var again = new MemoryStream(Png(64, 64, transparentFrom: null));
        using var mask = new MemoryStream(Png(64, 64, transparentFrom: 32));
        var inpaint = () => images.GenerateImageEditsAsync(again, "photo.png", "a hat", mask, "mask.png", 1);
        (await inpaint.Should().ThrowAsync<ClientResultException>()).Which.Message.Should().Contain("image-to-image and inpainting are missing");
    }

    /// <summary>
    /// To enable once the pipeline takes an initial image, a mask and a strength: remove Skip, and make
    /// <c>OpenAiJobPlanner.Edits</c> return the edit's requests (the refusal test above then goes).
    /// </summary>
    [Fact(Skip = "the pipeline has no image-to-image or inpainting yet: OpenAiJobPlanner.Edits refuses every edit (see the test above)")]
    public async Task The_sdk_edits_an_image_and_inpaints_under_the_masks_transparent_pixels()
    {
        var images = fixture.Client().GetImageClient(Model);
        using var image = new MemoryStream(Png(64, 64, transparentFrom: null));
        var options = new ImageEditOptions { Size = new GeneratedImageSize(64, 64), ResponseFormat = GeneratedImageFormat.Bytes };
        var edited = (await images.GenerateImageEditsAsync(image, "photo.png", "the same fox at night", 2, options)).Value;
        edited.Should().HaveCount(2);
        edited[0].ImageBytes.ToArray().Should().NotEqual(edited[1].ImageBytes.ToArray(), "two images, two seeds");

        using var again = new MemoryStream(Png(64, 64, transparentFrom: null));
        using var mask = new MemoryStream(Png(64, 64, transparentFrom: 32));
        var inpainted = (await images.GenerateImageEditsAsync(again, "photo.png", "a hat", mask, "mask.png", 1, options)).Value.Single();
        using var bitmap = SKBitmap.Decode(inpainted.ImageBytes.ToArray());
        // Above row 32 the mask is opaque: the image is kept there (up to the VAE's round trip).
        bitmap.GetPixel(5, 5).Red.Should().BeCloseTo(Gradient(5, 5).Red, 40);
    }

    static SKColor Gradient(int x, int y) => new((byte)(x * 4), (byte)(y * 4), 128, 255);

    /// <summary>A gradient PNG; rows from <paramref name="transparentFrom"/> down are fully transparent (OpenAI's "repaint here").</summary>
    public static byte[] Png(int width, int height, int? transparentFrom)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, y >= transparentFrom ? SKColors.Transparent : Gradient(x, y));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
