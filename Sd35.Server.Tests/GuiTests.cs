using System.Net.Http.Json;
using FluentAssertions;
using PuppeteerSharp;
using SkiaSharp;
using Xunit.Abstractions;

namespace Sd35.Server.Tests;

/// <summary>The GUI in a real headless browser against the server on a loopback socket.</summary>
public sealed class GuiTests(ITestOutputHelper output)
{
    const int Steps = 3;

    [BrowserFact]
    public async Task Typing_a_prompt_and_pressing_generate_shows_progress_then_the_image_the_api_makes_and_cancel_stops_a_long_one()
    {
        await using var server = await LiveServer.StartAsync();
        await using var browser = await Browser.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1100, Height = 820 });
        await page.GoToAsync(server.BaseAddress.ToString());
        await page.WaitForFunctionAsync("() => document.getElementById('width').value === '64'");

        // A bad size is refused before any work, shown in the error box with the field marked.
        await SetField(page, "#width", "30");
        await page.TypeAsync("#prompt", "a lighthouse in a storm");
        await page.ClickAsync("#generate");
        await page.WaitForSelectorAsync("#error:not([hidden])");
        (await page.EvaluateExpressionAsync<string>("document.getElementById('error').textContent")).Should().Contain("width").And.Contain("30");
        (await page.EvaluateExpressionAsync<bool>("document.getElementById('width').classList.contains('invalid')")).Should().BeTrue();

        // Each step of this job pauses, so every step's progress event reaches the page on its own.
        using var paced = new StepHold(server.Queue, "a lighthouse in a storm", TimeSpan.FromMilliseconds(300));
        await SetField(page, "#width", "64");
        await SetField(page, "#steps", Steps.ToString());
        await SetField(page, "#seed", "11");
        // Record every value the progress bar takes.
        await page.EvaluateExpressionAsync("""
            window.progressSeen = [];
            new MutationObserver(() => window.progressSeen.push(Number(document.getElementById('progress').getAttribute('value'))))
              .observe(document.getElementById('progress'), { attributes: true, attributeFilter: ['value'] });
            """);
        await page.ClickAsync("#generate");
        await page.WaitForFunctionAsync(
            "() => { const img = document.getElementById('result'); return !document.getElementById('result-figure').hidden && img.complete && img.naturalWidth > 0; }",
            new WaitForFunctionOptions { Timeout = 120_000, PollingInterval = 50 });

        var seen = await page.EvaluateExpressionAsync<int[]>("window.progressSeen");
        output.WriteLine($"progress bar values: {string.Join(", ", seen)}");
        seen.Should().Contain(v => v > 0 && v < Steps, "the bar moves through intermediate steps");
        seen.Last().Should().Be(Steps);
        (await page.EvaluateExpressionAsync<bool>("document.getElementById('error').hidden")).Should().BeTrue();
        (await page.EvaluateExpressionAsync<string>("document.getElementById('timings').textContent")).Should().Contain("denoising (3 steps)");
        (await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#gallery figure').length")).Should().Be(1);

        var shown = await page.EvaluateExpressionAsync<string>(ShownPixels);
        var browserPixels = Convert.FromBase64String(shown);

        var direct = await server.Client.PostAsJsonAsync("/v1/generate",
            new { prompt = "a lighthouse in a storm", negative_prompt = "", steps = Steps, guidance = 3.5, seed = 11, width = 64, height = 64 }, Api.Json);
        direct.EnsureSuccessStatusCode();
        browserPixels.Should().Equal(RgbPixels(await direct.Content.ReadAsByteArrayAsync()), "the browser shows exactly the API's image");

        var screenshot = Path.Combine(AppContext.BaseDirectory, "server-gui.png");
        await page.ScreenshotAsync(screenshot);
        output.WriteLine($"screenshot: {screenshot}");

        // Cancel: a long job stops at a step boundary, the page says so and is ready for the next prompt.
        using var hold = new StepHold(server.Queue, "long");
        await SetField(page, "#prompt", "long");
        await SetField(page, "#steps", "200");
        await page.ClickAsync("#generate");
        await page.WaitForFunctionAsync("() => Number(document.getElementById('progress').getAttribute('value')) >= 1",
            new WaitForFunctionOptions { Timeout = 120_000, PollingInterval = 50 });
        await page.ClickAsync("#cancel");
        await page.WaitForFunctionAsync("() => document.getElementById('status').textContent.startsWith('cancelled')",
            new WaitForFunctionOptions { Timeout = 60_000, PollingInterval = 50 });
        (await page.EvaluateExpressionAsync<bool>("document.getElementById('generate').disabled")).Should().BeFalse();
        (await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#gallery figure').length")).Should().Be(1, "a cancelled job adds nothing");
    }

    static async Task SetField(IPage page, string selector, string value)
    {
        await page.EvaluateFunctionAsync("(s, v) => { document.querySelector(s).value = v; }", selector, value);
    }

    /// <summary>The RGB bytes of the page's #result image as the browser decoded it, base64.</summary>
    internal const string ShownPixels = """
        (() => {
          const img = document.getElementById('result');
          const canvas = document.createElement('canvas');
          canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
          const context = canvas.getContext('2d');
          context.drawImage(img, 0, 0);
          const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
          let text = '';
          for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(rgba[i], rgba[i + 1], rgba[i + 2]);
          return btoa(text);
        })()
        """;

    internal static byte[] RgbPixels(byte[] png)
    {
        using var bitmap = SKBitmap.Decode(png);
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (int y = 0, i = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++, i += 3)
            {
                var c = bitmap.GetPixel(x, y);
                (rgb[i], rgb[i + 1], rgb[i + 2]) = (c.Red, c.Green, c.Blue);
            }
        return rgb;
    }
}
