using System.Net.Http.Json;
using System.Text.Json;
using FluentAssertions;
using PuppeteerSharp;
using SkiaSharp;
using Xunit.Abstractions;

namespace Sd35.Server.Tests;

/// <summary>
/// Inpainting through the GUI in a real headless browser: upload an image, paint a mask with mouse moves on the
/// canvas over it, generate two images, and check that the mask the server received is the painted region (the job
/// reports its area and bounding box), that every image of the job is shown, and that the shown image equals, pixel
/// for pixel, the API's PNG for the same request. (The tiny model's random VAE does not reproduce the kept region,
/// so the kept pixels themselves are not the check.)
/// </summary>
public sealed class GuiImageTests(ITestOutputHelper output)
{
    [BrowserFact]
    public async Task Painting_a_mask_on_an_uploaded_image_inpaints_that_region_and_shows_the_apis_images()
    {
        await using var server = await LiveServer.StartAsync();
        await using var browser = await Browser.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1100, Height = 1000 });
        await page.GoToAsync(server.BaseAddress.ToString());
        await page.WaitForFunctionAsync("() => document.getElementById('width').value === '64'");

        // Upload a 48×32 picture: the editor opens at the picture's size and the size fields follow it.
        var folder = Directory.CreateTempSubdirectory("sd35-gui-image-").FullName;
        try
        {
            var picture = Path.Combine(folder, "in.png");
            File.WriteAllBytes(picture, ImageModeApiTests.Picture(48, 32));
            var upload = (IElementHandle)await page.QuerySelectorAsync("#image");
            await upload.UploadFileAsync(picture);
            await page.WaitForFunctionAsync("() => !document.getElementById('image-editor').hidden && document.getElementById('mask-canvas').width === 48");
            (await page.EvaluateExpressionAsync<string>("document.getElementById('width').value")).Should().Be("48");
            (await page.EvaluateExpressionAsync<string>("document.getElementById('height').value")).Should().Be("32");

            // Paint with the mouse: a brush of 4 pixels dragged from image pixel (10, 8) to (30, 8) and down to (30, 20).
            await page.EvaluateFunctionAsync("v => { const b = document.getElementById('brush'); b.value = v; b.dispatchEvent(new Event('input')); }", "4");
            var box = await page.EvaluateExpressionAsync<JsonElement>(
                "(() => { const r = document.getElementById('mask-canvas').getBoundingClientRect(); return { left: r.left, top: r.top, width: r.width, height: r.height }; })()");
            double left = box.GetProperty("left").GetDouble(), top = box.GetProperty("top").GetDouble();
            double scale = box.GetProperty("width").GetDouble() / 48;
            // The centre of image pixel (x, y) on the screen.
            (decimal X, decimal Y) Screen(int x, int y) => ((decimal)(left + (x + 0.5) * scale), (decimal)(top + (y + 0.5) * scale));
            var start = Screen(10, 8);
            await page.Mouse.MoveAsync(start.X, start.Y);
            await page.Mouse.DownAsync();
            foreach (var (x, y) in Enumerable.Range(10, 21).Select(x => (x, 8)).Concat(Enumerable.Range(9, 12).Select(y => (30, y))))
            {
                var point = Screen(x, y);
                await page.Mouse.MoveAsync(point.X, point.Y);
            }
            await page.Mouse.UpAsync();

            // The painted region as the page holds it: brush squares of 4 around the path, from (8, 6) to (31, 21).
            var painted = await page.EvaluateExpressionAsync<JsonElement>("""
                (() => {
                  const c = document.getElementById('mask-canvas');
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let area = 0, x0 = 1e9, y0 = 1e9, x1 = -1, y1 = -1;
                  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
                    if (d[(y * c.width + x) * 4] < 128) continue;
                    area++; x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
                  }
                  return { area, x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
                })()
                """);
            output.WriteLine($"painted: {painted}");
            (painted.GetProperty("x").GetInt32(), painted.GetProperty("y").GetInt32(), painted.GetProperty("width").GetInt32(), painted.GetProperty("height").GetInt32())
                .Should().Be((8, 6, 24, 16), "the brush followed the mouse");

            await page.TypeAsync("#prompt", "a small boat on a calm lake");
            await page.EvaluateFunctionAsync("() => { for (const [id, v] of [['steps', '4'], ['seed', '9'], ['n', '2']]) document.getElementById(id).value = v; }");
            await page.EvaluateFunctionAsync("() => { const s = document.getElementById('strength'); s.value = '0.5'; s.dispatchEvent(new Event('input')); }");
            // The request the page sends, as the browser puts it on the wire (the page exposes no test hook).
            string? sent = null;
            page.Request += (_, e) =>
            {
                if (e.Request.Method == HttpMethod.Post && new Uri(e.Request.Url).AbsolutePath == "/v1/images") sent = Convert.ToString(e.Request.PostData);
            };
            await page.ClickAsync("#generate");
            await page.WaitForFunctionAsync(
                "() => { const imgs = [...document.querySelectorAll('#results img')]; return !document.getElementById('result-figure').hidden && imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
                new WaitForFunctionOptions { Timeout = 120_000, PollingInterval = 50 });

            // What the server received: the job reports the mask's region, and it is the painted one.
            var id = await page.EvaluateExpressionAsync<string>("document.getElementById('result').dataset.jobId");
            var job = await server.Client.Status(id);
            job.Parameters.Mode.Should().Be("inpainting");
            job.Parameters.Strength.Should().Be(0.5);
            job.Parameters.Mask.Should().Be(new Jobs.MaskRegion(painted.GetProperty("area").GetInt64(), 8, 6, 24, 16));
            job.Images.Should().HaveCount(2);
            (await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#gallery figure img').length")).Should().Be(2, "the gallery shows both images");

            // The shown first image equals the first PNG of the page's own request sent again as it was, n = 2 included
            // (the batch's first image has the first noise rows of the same seed only when n is the same).
            var shown = await page.EvaluateExpressionAsync<string>(GuiTests.ShownPixels);
            sent.Should().NotBeNull("the page posted its request to /v1/images");
            var again = await server.Client.PostAsync("/v1/images", new StringContent(sent!, System.Text.Encoding.UTF8, "application/json"));
            again.EnsureSuccessStatusCode();
            var againId = JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
            (await server.Client.WaitFinished(againId)).Status.Should().Be(Jobs.JobStatus.Succeeded);
            Convert.FromBase64String(shown).Should().Equal(GuiTests.RgbPixels(await server.Client.GetByteArrayAsync($"/v1/images/{againId}/png/1")),
                "the browser shows exactly the API's image");

            var screenshot = Path.Combine(AppContext.BaseDirectory, "server-gui-inpainting.png");
            await page.ScreenshotAsync(screenshot);
            output.WriteLine($"screenshot: {screenshot}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
