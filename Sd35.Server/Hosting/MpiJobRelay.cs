using System.Text.Json;
using Sd35.Mesh.Mpi;
using Sd35.Pipeline;

namespace Sd35.Server.Hosting;

/// <summary>
/// The server under <c>mpirun</c>: the lead process (world rank 0, which serves HTTP and owns the queue) sends each
/// job's checked request to every other process before they all run the same generation, and a stop when the server
/// shuts down. The request travels as JSON (numbers round-trip exactly), so every process generates from the same values.
/// </summary>
public sealed class MpiJobRelay
{
    sealed record Command(GenerationRequest? Generate);

    readonly MpiCommandChannel _channel = new();
    readonly object _gate = new();
    bool _stopped;

    public bool IsLead => _channel.IsLead;

    /// <summary>Lead: every process is to run <paramref name="request"/> now.</summary>
    public void Announce(GenerationRequest request) => Send(new Command(request));

    /// <summary>Lead: the workers are to exit. Once only; later calls do nothing.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            if (_stopped) return;
            _stopped = true;
        }
        Send(new Command(null));
    }

    /// <summary>Worker: the next request to run, or null when the lead says stop.</summary>
    public GenerationRequest? Next() =>
        JsonSerializer.Deserialize<Command>(_channel.Receive())?.Generate;

    void Send(Command command)
    {
        lock (_gate)
        {
            if (_stopped && command.Generate is not null) throw new InvalidOperationException("the workers were told to stop");
        }
        _channel.Send(JsonSerializer.SerializeToUtf8Bytes(command));
    }
}
