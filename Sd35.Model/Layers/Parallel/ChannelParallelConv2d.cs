using Sd35.Mesh;
using Sd35.Tensors.Checkpoints;
using Sd35.Tensors.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Sd35.Layers.Parallel;

/// <summary>
/// A 2-D convolution (same-size, or the encoder's stride-2 downsampling without padding) for channel tensor parallelism, where activations are split by channel
/// (dim 1) across the group. A convolution mixes all input channels, so a channel-sharded input is first gathered;
/// the output is either this rank's slice of the output channels (its rows of the weight, so the compute is split
/// tp ways) or, for a layer too narrow to split (the decoder's 3-channel <c>conv_out</c>), the whole output.
/// With a group of one it is an ordinary <c>nn.Conv2d</c>; parameter names are <c>weight</c> and <c>bias</c>. The kernel
/// is held in a float storage format apart from the compute dtype (<see cref="StoredWeightModule"/>: bf16 kernels of a VAE
/// that computes in fp32 take half the memory) and never as blocks: a kernel's rows are not what ggml's blocks quantize.
/// </summary>
sealed class ChannelParallelConv2d : StoredWeightModule, IShardedParameters
{
    readonly IProcessGroup _tp;
    readonly bool _inputSharded;
    readonly ShardLayout? _outLayout;
    readonly long _padding;
    readonly long _stride;
    public Parameter bias;

    /// <param name="inputSharded">the input arrives as this rank's channel slice and is gathered first</param>
    /// <param name="outputSharded">each rank computes only its slice of the output channels</param>
    /// <param name="stride">2 with <paramref name="samePadding"/> false: diffusers' <c>Downsample2D</c> (padding 0; the caller pads)</param>
    /// <param name="samePadding">pad by half the kernel on every side (the output keeps the input's size at stride 1), else no padding</param>
    public ChannelParallelConv2d(long inChannels, long outChannels, long kernelSize, IProcessGroup tp, bool inputSharded, bool outputSharded,
        ScalarType dtype = ScalarType.Float32, Device? device = null, long stride = 1, bool samePadding = true)
        : base(nameof(ChannelParallelConv2d), [outChannels, inChannels, kernelSize, kernelSize],
            [LocalOut(outChannels, tp, outputSharded), inChannels, kernelSize, kernelSize], dtype, device)
    {
        if (kernelSize % 2 != 1) throw new ArgumentException($"kernel size {kernelSize} has no centre; only odd same-size kernels are supported");
        if (inputSharded && inChannels % tp.Size != 0)
            throw new ArgumentException($"{inChannels} input channels do not split over {tp.Size} ranks");
        _tp = tp;
        _inputSharded = inputSharded;
        _outLayout = outputSharded ? new ShardLayout(0, tp.Rank, tp.Size) : null;
        if (outputSharded && outChannels % tp.Size != 0)
            throw new ArgumentException($"{outChannels} output channels do not split over {tp.Size} ranks");
        _padding = samePadding ? kernelSize / 2 : 0;
        _stride = stride;
        bias = new Parameter(empty(WeightShape[0], dtype, device), requires_grad: false);
        register_parameter(nameof(bias), bias);
    }

    static long LocalOut(long outChannels, IProcessGroup tp, bool outputSharded) =>
        outputSharded ? new ShardLayout(0, tp.Rank, tp.Size).LocalSize(outChannels) : outChannels;

    public override Tensor forward(Tensor input)
    {
        if (!_inputSharded) return Convolve(input);
        using var full = _tp.AllGather(input, 1);
        return Convolve(full);
    }

    Tensor Convolve(Tensor input)
    {
        using var kernel = ExpandedWeight();
        if (!NeedsFloat32Workaround) return Kernels.Conv2d(input, kernel, bias, _padding, _stride);
        using var scope = NewDisposeScope();
        var result = Kernels.Conv2d(input.to(ScalarType.Float32), kernel.to(ScalarType.Float32), bias.to(ScalarType.Float32), _padding, _stride);
        return result.to(ComputeDType).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// libtorch 2.10's CPU bfloat16 convolution (TorchSharp-cpu 0.107) computes the output channels beyond the last
    /// multiple of 16 wrongly for kernels larger than 1×1: on the decoder's 3-channel <c>conv_out</c> the result
    /// correlates only ~0.95 with the same convolution in float32 (1×1 kernels, linears, and 16·k channels are
    /// correct). Such layers are computed in float32 and rounded to the layer's dtype — what a correct
    /// reduced-precision convolution with float32 accumulation returns, up to rounding. float16 is treated alike as a
    /// precaution (not measured); the layer it concerns is small, so the float32 detour costs little.
    /// </summary>
    bool NeedsFloat32Workaround =>
        ComputeDType is ScalarType.BFloat16 or ScalarType.Float16 && weight.device_type == DeviceType.CPU
        && WeightShape[2] > 1 && WeightShape[0] % 16 != 0;

    public override bool CanHoldBlocks(GgmlType type, long fullRowLength) => false;

    public override QuantizedWeight ShardBlocks(QuantizedWeight full) =>
        throw new NotSupportedException("convolution kernels are not held as blocks");

    public bool HoldsWhole(string parameterName) => _outLayout is not { Size: > 1 };

    public Tensor? ShardFromFull(string parameterName, Tensor full) => _outLayout is { Size: > 1 } layout ? layout.Apply(full) : null;
}
