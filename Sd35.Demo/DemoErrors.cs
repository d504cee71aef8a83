namespace Sd35.Demo;

/// <summary>How a failing rank of a multi-process run reports: its error once, from its own process, which then ends the job.</summary>
static class DemoErrors
{
    public static int ReportRankFailure(Sd35.Mesh.DeviceId device, Exception e)
    {
        Console.Error.Write($"rank {device}: ");
        return DemoApp.Report(e, Console.Error);
    }
}
