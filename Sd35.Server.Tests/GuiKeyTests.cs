using FluentAssertions;
using PuppeteerSharp;

namespace Sd35.Server.Tests;

/// <summary>The GUI of a server started with <c>--api-key</c>, in a real headless browser: it asks for the key once.</summary>
public sealed class GuiKeyTests
{
    const string Key = "gui-key-91c2";

    [BrowserFact]
    public async Task The_gui_asks_for_the_key_once_and_then_generates_with_progress_events()
    {
        await using var server = await LiveServer.StartAsync(null, "--api-key", Key);
        await using var browser = await Browser.LaunchAsync();
        await using var page = await browser.NewPageAsync();
        await page.GoToAsync(server.BaseAddress.ToString());
        await page.WaitForSelectorAsync("#key-form:not([hidden])");
        (await page.EvaluateExpressionAsync<bool>("document.getElementById('generate').disabled")).Should().BeTrue("nothing works without the key");

        await page.TypeAsync("#api-key", "not the key");
        await page.ClickAsync("#key-submit");
        await page.WaitForSelectorAsync("#key-error:not([hidden])");
        (await page.EvaluateExpressionAsync<string>("document.getElementById('key-error').textContent")).Should().Contain("not valid");

        await page.TypeAsync("#api-key", Key);
        await page.ClickAsync("#key-submit");
        await page.WaitForSelectorAsync("#key-form", new WaitForSelectorOptions { Hidden = true });
        await page.WaitForFunctionAsync("() => document.getElementById('width').value === '64'");
        (await page.EvaluateExpressionAsync<string>("document.getElementById('api-key').value")).Should().BeEmpty("the page keeps no copy of the key");

        // Submitting, the progress stream (EventSource, which sends no headers) and the image all pass with the session cookie.
        await page.TypeAsync("#prompt", "a key-guarded lighthouse");
        await page.ClickAsync("#generate");
        await page.WaitForFunctionAsync(
            "() => { const img = document.getElementById('result'); return !document.getElementById('result-figure').hidden && img.complete && img.naturalWidth > 0; }",
            new WaitForFunctionOptions { Timeout = 120_000, PollingInterval = 100 });
        (await page.EvaluateExpressionAsync<string>("document.getElementById('status').textContent")).Should().StartWith("succeeded");

        // Once per session: a reload asks nothing.
        await page.ReloadAsync();
        await page.WaitForFunctionAsync("() => document.getElementById('width').value === '64'");
        (await page.EvaluateExpressionAsync<bool>("document.getElementById('key-form').hidden")).Should().BeTrue();
    }
}
