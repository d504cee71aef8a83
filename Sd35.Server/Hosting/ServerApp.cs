using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.FileProviders;
using Sd35.Server.Api;
using Sd35.Server.Api.OpenAi;
using Sd35.Server.Jobs;

namespace Sd35.Server.Hosting;

/// <summary>Builds the web application: options, the pipeline (once), the queue, the API, OpenAPI and the GUI.</summary>
public static class ServerApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ServerOptions.NormalizeArguments(args),
            // The GUI's files are copied next to the assembly, so the app finds them wherever it is started from.
            WebRootPath = Path.Combine(AppContext.BaseDirectory, "wwwroot"),
        });
        configure?.Invoke(builder);
        AddServices(builder);
        var app = builder.Build();
        Configure(app);
        return app;
    }

    public static void AddServices(WebApplicationBuilder builder)
    {
        // Read now: they decide the logging, Kestrel's connection hook, and whether the server may start at all.
        var access = AccessOptions.From(builder.Configuration);
        access.CheckExposure(builder.Configuration);
        var limits = new ConnectionLimits(access);
        builder.Services.AddSingleton(access);
        builder.Services.AddSingleton(limits);
        builder.Services.AddSingleton(new SessionTokens(TimeProvider.System, SessionTokens.DefaultLifetime));
        builder.WebHost.ConfigureKestrel(limits.CountConnections);
        RequestIds.AddLogging(builder, access.LogFormat);
        builder.Services.AddSingleton<OpenAiJobPlanner>();
        ServerMetrics.AddServices(builder);
        builder.Services.AddSingleton(services => ServerOptions.From(services.GetRequiredService<IConfiguration>()));
        builder.Services.AddSingleton<PipelineAdapter>();
        builder.Services.AddSingleton<OutputFolder>();
        builder.Services.AddSingleton<GenerationQueue>();
        builder.Services.AddHostedService(services => services.GetRequiredService<GenerationQueue>());
        builder.Services.ConfigureHttpJsonOptions(o => ConfigureJson(o.SerializerOptions));
        builder.Services.AddOpenApi();
        // Kestrel's own cap on bodies, above the configured one (which RequestReader applies with a clear message).
        builder.WebHost.ConfigureKestrel((context, k) => k.Limits.MaxRequestBodySize =
            (int.TryParse(context.Configuration["max-body-bytes"], out int configured) ? configured : new ServerOptions().MaxBodyBytes) + (1L << 20));
    }

    public static void ConfigureJson(JsonSerializerOptions json)
    {
        json.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        // A number is a JSON number: "steps": "2" is a type error naming the field, as in the OpenAPI schema.
        json.NumberHandling = JsonNumberHandling.Strict;
        json.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
    }

    public static void Configure(WebApplication app)
    {
        // Resolve the options and the pipeline now, so a bad --model or --parallel stops the start rather than the first request.
        var pipeline = app.Services.GetRequiredService<PipelineAdapter>();
        app.Logger.LogInformation("runtime: {Runtime}", pipeline.Runtime.ReplaceLineEndings("; "));
        app.Logger.LogInformation("precision: {Precision}", pipeline.Precision);
        foreach (var component in pipeline.Components) app.Logger.LogInformation("model: {Component}", component);
        app.Services.GetRequiredService<OutputFolder>();
        var access = app.Services.GetRequiredService<AccessOptions>();
        app.UseRequestIds();
        app.Services.GetRequiredService<ConnectionLimits>().UseLimits(app);
        app.UseApiKeys(access);
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions { FileProvider = new PhysicalFileProvider(app.Environment.WebRootPath) });
        app.MapOpenApi();
        app.MapImageApi();
        app.MapOpenAiApi();
        app.MapSession(access);
        ServerMetrics.MapMetrics(app);
    }
}
