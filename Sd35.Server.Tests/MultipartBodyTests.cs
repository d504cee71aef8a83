using System.Net;
using System.Text;
using System.Text.Json;
using FluentAssertions;
using Microsoft.AspNetCore.Hosting;

namespace Sd35.Server.Tests;

/// <summary>
/// Multipart bodies a client got wrong — no boundary, a body that ends inside a part, more fields than the form reader
/// takes — are 4xx answers on both routes that read forms (the native <c>/v1/images</c> and the OpenAI edits), never a
/// 500; and a base64 image sent as a text part is read up to the body limit, not ASP.NET Core's 4 MB value default.
/// </summary>
public sealed class MultipartBodyTests(ServerFactory factory) : IClassFixture<ServerFactory>
{
    // The default 24 MiB body limit (the shared factory's is 4 KB): only the form reader's own limits can refuse here.
    readonly HttpClient _client = factory.WithWebHostBuilder(b => b.UseSetting("max-body-bytes", (24 << 20).ToString())).CreateClient();

    static ByteArrayContent Raw(string body, string contentType)
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return content;
    }

    const string Part = "--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na hat\r\n";

    [Theory]
    [InlineData("/v1/images", "no_boundary", 400)]
    [InlineData("/v1/images", "truncated_part", 400)]
    [InlineData("/v1/images", "too_many_fields", 413)]
    [InlineData("/v1/images/edits", "no_boundary", 400)]
    [InlineData("/v1/images/edits", "truncated_part", 400)]
    [InlineData("/v1/images/edits", "too_many_fields", 413)]
    public async Task A_malformed_or_overlong_form_is_a_4xx_not_a_500(string route, string situation, int status)
    {
        var content = situation switch
        {
            "no_boundary" => Raw(Part + "--b--\r\n", "multipart/form-data"),
            // The body stops inside the part's value: no closing boundary follows.
            "truncated_part" => Raw("--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na ha", "multipart/form-data; boundary=b"),
            // ASP.NET Core's form reader takes at most 1024 values.
            "too_many_fields" => Raw(string.Concat(Enumerable.Range(0, 1100).Select(i => $"--b\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nx\r\n")) + "--b--\r\n",
                "multipart/form-data; boundary=b"),
            _ => throw new ArgumentOutOfRangeException(nameof(situation)),
        };

        var response = await _client.PostAsync(route, content);

        var text = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(status, text);
        text.Should().Contain(status == 413 ? "limit" : "multipart body could not be read");
    }

    [Fact]
    public async Task A_base64_image_text_part_over_4_MB_is_read_within_the_body_limit()
    {
        // A valid PNG followed by 4 MB of padding (bytes after PNG's end chunk are tolerated) as a text part.
        var padded = ImageModeApiTests.Picture(32, 32).Concat(new byte[4 << 20]).ToArray();
        using var form = new MultipartFormDataContent
        {
            { new StringContent("a hat"), "prompt" },
            { new StringContent(Convert.ToBase64String(padded)), "image" },
            // Refused only after the form is read, so no job runs: the answer names this field.
            { new StringContent("1.5"), "strength" },
        };

        var response = await _client.PostAsync("/v1/images", form);

        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, text);
        JsonDocument.Parse(text).RootElement.GetProperty("field").GetString().Should().Be("strength", text);
    }
}
