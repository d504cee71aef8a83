using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using Sd35.Server.Jobs;

namespace Sd35.Server.Tests;

/// <summary>
/// The whole app in process (TestServer): tiny reference model, 2 steps by default, a queue of 2 so that 429 is
/// cheap to reach, and its own temporary output folder.
/// </summary>
public sealed class ServerFactory : WebApplicationFactory<Program>
{
    public string OutputFolder { get; } = Directory.CreateTempSubdirectory("sd35-server-api-").FullName;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("output", OutputFolder);
        builder.UseSetting("steps", "2");
        builder.UseSetting("queue-length", "2");
        builder.UseSetting("max-prompt-length", "300");
        builder.UseSetting("max-body-bytes", "4096");
        builder.ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning));
    }

    public GenerationQueue Queue => Services.GetRequiredService<GenerationQueue>();

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && Directory.Exists(OutputFolder)) Directory.Delete(OutputFolder, recursive: true);
    }
}
