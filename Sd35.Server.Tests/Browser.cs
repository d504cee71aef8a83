using PuppeteerSharp;

namespace Sd35.Server.Tests;

/// <summary>
/// Debian's chromium driven over the DevTools protocol (PuppeteerSharp: .NET only, no browser download, works
/// offline). <c>.ci/run</c> installs chromium; elsewhere set <c>SD35_CHROMIUM</c> or the browser tests are skipped.
/// </summary>
public static class Browser
{
    public static string? ExecutablePath { get; } = Find();

    static string? Find()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("SD35_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" };
        return candidates.FirstOrDefault(path => !string.IsNullOrEmpty(path) && File.Exists(path));
    }

    public static Task<IBrowser> LaunchAsync() => Puppeteer.LaunchAsync(new LaunchOptions
    {
        ExecutablePath = ExecutablePath,
        Headless = true,
        // Root in CI containers has no user namespace sandbox; /dev/shm is small there.
        Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--force-color-profile=srgb"],
        Timeout = 60_000,
    });
}

/// <summary>A test that needs a real browser; reported as skipped (with the reason) where there is none.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (Browser.ExecutablePath is null) Skip = "no chromium found (apt-get install -y chromium, or set SD35_CHROMIUM)";
    }
}
