using Sd35.Tests.TestSupport;
using TorchSharp;

namespace Sd35.Tests.Models;

/// <summary>The tiny golden text encoders and small helpers the CLIP / T5 tests share.</summary>
static class TextEncoderFixtures
{
    public static string ClipLFolder => RepoPaths.Fixtures("reference", "text_encoder", "clip_l_tiny");
    public static string ClipGFolder => RepoPaths.Fixtures("reference", "text_encoder", "clip_g_tiny");
    public static string T5Folder => RepoPaths.Fixtures("reference", "text_encoder", "t5_tiny");

    public static long ParameterCount(torch.nn.Module module) => module.parameters().Sum(p => p.numel());

    /// <summary>Parameters are allocated without storage, so even T5-XXL (4.76 B) builds instantly.</summary>
    public static torch.Device Meta { get; } = new(DeviceType.META);
}
