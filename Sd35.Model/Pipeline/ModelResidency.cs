namespace Sd35.Pipeline;

/// <summary>How long a pipeline keeps its models (<see cref="PipelineOptions.Residency"/>).</summary>
public enum ModelResidency
{
    /// <summary>
    /// Each generation loads every stage's models for that stage only and releases them before the next stage
    /// (text encoders → transformer → VAE): the lowest peak memory, one stage's weights at a time.
    /// </summary>
    Staged,

    /// <summary>
    /// Each device's models are loaded on first use and kept across generations until the pipeline is disposed:
    /// no load time after the first generation, at the memory of every stage's weights at once.
    /// </summary>
    Resident,
}

/// <summary>One model loaded for one device: which component (the model folder's part name) and how long it took.</summary>
public sealed record ModelLoad(Sd35.Mesh.DeviceId DeviceId, string Component, double Seconds);
