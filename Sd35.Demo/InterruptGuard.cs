using System.Runtime.InteropServices;

namespace Sd35.Demo;

/// <summary>
/// Ctrl+C (SIGINT) ends the run at once with exit status 130 and "interrupted", leaving nothing behind. Until the
/// PNG is being written nothing exists on disk, so the process lets the signal take its default course (after
/// restoring the cursor a live progress bar hid). While the PNG is written (a temporary file, then a rename) the
/// signal is held, and once the write is done the file is removed again and the run ends with 130.
/// </summary>
public sealed class InterruptGuard : IDisposable
{
    public const int ExitCode = 130;

    readonly PosixSignalRegistration? _registration;
    readonly TextWriter _error;
    readonly object _gate = new();
    bool _writing, _interrupted;

    public InterruptGuard(TextWriter error)
    {
        _error = error;
        if (!OperatingSystem.IsWindows()) _registration = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
    }

    void OnSignal(PosixSignalContext context)
    {
        lock (_gate)
        {
            _interrupted = true;
            if (_writing)
            {
                context.Cancel = true;               // Writing() removes the file and reports
                return;
            }
        }
        if (!Console.IsOutputRedirected) Console.Out.Write("\u001b[?25h\n");   // a live bar hides the cursor
        _error.WriteLine("interrupted");
        _error.Flush();
        context.Cancel = false;                      // default SIGINT handling: the process ends now (status 130)
    }

    /// <summary>Writes <paramref name="path"/> with the signal held; if it came meanwhile, removes the file and throws.</summary>
    public void Writing(Action write, string path)
    {
        lock (_gate) _writing = true;
        try { write(); }
        finally
        {
            lock (_gate) _writing = false;
        }
        bool interrupted;
        lock (_gate) interrupted = _interrupted;
        if (interrupted)
        {
            File.Delete(path);
            throw new OperationCanceledException("interrupted");
        }
    }

    public void Dispose() => _registration?.Dispose();
}
