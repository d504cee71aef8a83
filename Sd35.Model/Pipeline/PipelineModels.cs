using System.Diagnostics;
using Sd35.Mesh;
using static TorchSharp.torch;

namespace Sd35.Pipeline;

/// <summary>
/// Where a generation's stages get their models: loaded for the stage and released after it
/// (<see cref="ModelResidency.Staged"/>), or kept per device and component across generations
/// (<see cref="ModelResidency.Resident"/>). Rank programs call it from their own threads (the in-process launcher
/// makes new ones for every generation), each for its own device id, so the store is keyed by device and
/// component and guarded by a lock. A kept model holds its rank's process groups themselves: the pipeline runs every
/// generation on one mesh session (<see cref="IMeshSession"/>), whose groups live as long as it.
/// </summary>
sealed class PipelineModels(ModelResidency residency) : IDisposable
{
    /// <summary>Loads for one stage only (the default of the public stage methods).</summary>
    public static PipelineModels Staged { get; } = new(ModelResidency.Staged);

    readonly object _gate = new();
    readonly Dictionary<(DeviceId Device, string Component), Kept> _kept = [];
    bool _disposed;

    sealed record Kept(IDisposable Model, MeshRank Rank, long Bytes);

    public ModelResidency Residency { get; } = residency;

    /// <summary>Models kept now (tests: a disposed pipeline keeps none).</summary>
    public int KeptCount
    {
        get { lock (_gate) return _kept.Count; }
    }

    /// <summary>Bytes of the kept models' parameters and buffers, per component (summed over this process's devices).</summary>
    public IReadOnlyDictionary<string, long> KeptBytes()
    {
        lock (_gate) return _kept.GroupBy(k => k.Key.Component).ToDictionary(g => g.Key, g => g.Sum(k => k.Value.Bytes));
    }

    /// <summary>
    /// The model <paramref name="component"/> of <paramref name="rank"/>'s device, made by <paramref name="load"/>
    /// when it is not kept (and then tells <paramref name="observer"/>, on the loading rank's thread). Dispose the lease
    /// when the stage is done: it releases a staged model, not a kept one.
    /// </summary>
    public ModelLease<T> Get<T>(MeshRank rank, string component, Func<MeshRank, T> load, IGenerationObserver? observer = null)
        where T : class, IDisposable
    {
        if (Residency == ModelResidency.Staged) return new ModelLease<T>(Load(rank, component, load, observer), owned: true);
        var key = (rank.Id, component);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_kept.TryGetValue(key, out var kept))
            {
                CheckSamePlace(kept.Rank, rank, component);
                return new ModelLease<T>((T)kept.Model, owned: false);
            }
        }
        var model = OutsideAnyDisposeScope(() => Load(rank, component, load, observer));
        lock (_gate)
        {
            if (_disposed || _kept.ContainsKey(key))
            {
                // Disposed meanwhile, or another thread kept the same model first (a caller running generations at once).
                model.Dispose();
                ObjectDisposedException.ThrowIf(_disposed, this);
                return new ModelLease<T>((T)_kept[key].Model, owned: false);
            }
            _kept[key] = new Kept(model, rank, TensorBytes(model));
        }
        return new ModelLease<T>(model, owned: false);
    }

    /// <summary>A kept model runs only where it was made: on the same device, with the very groups it holds (the same mesh session).</summary>
    static void CheckSamePlace(MeshRank kept, MeshRank now, string component)
    {
        if (!kept.Device.Equals(now.Device))
            throw new InvalidOperationException($"{component} of device {now.Id} is kept on {kept.Device}, but this run binds the device to {now.Device}");
        if (!ReferenceEquals(kept.Sp, now.Sp) || !ReferenceEquals(kept.Tp, now.Tp))
            throw new InvalidOperationException($"{component} of device {now.Id} is kept with the process groups of another mesh session; a resident model runs on the session it was loaded in");
    }

    static T Load<T>(MeshRank rank, string component, Func<MeshRank, T> load, IGenerationObserver? observer)
    {
        var watch = Stopwatch.StartNew();
        var model = load(rank);
        observer?.ModelLoaded(new ModelLoad(rank.Id, component, watch.Elapsed.TotalSeconds));
        return model;
    }

    static long TensorBytes(IDisposable model) => model is nn.Module module
        ? module.parameters().Concat(module.buffers()).Sum(t => t.numel() * t.element_size())
        : 0;

    /// <summary>
    /// A kept model must outlive whatever dispose scope the caller has open (the 1×1 mesh runs on the caller's
    /// thread, and a server wraps each request in a scope): its tensors are detached from a scope of its own.
    /// </summary>
    static T OutsideAnyDisposeScope<T>(Func<T> make)
    {
        var scope = NewDisposeScope();
        try
        {
            var made = make();
            scope.Detach(scope.DisposablesView.ToArray());
            scope.Dispose();
            return made;
        }
        catch
        {
            scope.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        List<Kept> released;
        lock (_gate)
        {
            _disposed = true;
            released = [.. _kept.Values];
            _kept.Clear();
        }
        foreach (var kept in released) kept.Model.Dispose();
    }
}

/// <summary>A model handed to a stage; disposing it releases the model only if the stage owns it (staged residency).</summary>
readonly struct ModelLease<T>(T model, bool owned) : IDisposable where T : class, IDisposable
{
    public T Model { get; } = model;

    public void Dispose()
    {
        if (owned) Model.Dispose();
    }
}
