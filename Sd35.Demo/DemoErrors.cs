namespace Sd35.Demo;

/// <summary>Which failures are the user's (a message, exit code 2, no stack trace) and how a failing rank reports.</summary>
static class DemoErrors
{
    public static bool IsUserError(Exception e) =>
        e is Sd35.Errors.InputException or ArgumentException or IOException or InvalidDataException or NotSupportedException or KeyNotFoundException
            or Sd35.Mesh.Mpi.MeshLaunchException;

    /// <summary>A rank of a multi-process run failed: print its error once (this process ends the job) and return the exit code.</summary>
    public static int ReportRankFailure(int device, Exception e)
    {
        if (IsUserError(e))
        {
            Console.Error.WriteLine($"error (rank {device}): {e.Message}");
            return 2;
        }
        Console.Error.WriteLine($"error: rank {device} failed: {e}");
        return 1;
    }
}
