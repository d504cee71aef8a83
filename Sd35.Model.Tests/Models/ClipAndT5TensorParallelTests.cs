using Sd35.Tensors.Checkpoints;
using Sd35.Mesh;
using FluentAssertions;
using Sd35.Models.T5;
using Sd35.Tests.TestSupport;
using static Sd35.Tests.Models.TextEncoderFixtures;
using static TorchSharp.torch;

namespace Sd35.Tests.Models;

/// <summary>
/// Tensor-parallel text encoders: what a split refuses. That every rank reproduces the goldens, with its shards
/// of the right size, is checked once per parallel config (<c>ParallelModelTests</c>, CLIP and T5 on the devices
/// the reference places them on).
/// </summary>
[Collection(Sd35.Tests.Mesh.MeshRunCollection.Name)]
public class ClipAndT5TensorParallelTests
{
    [Fact]
    public void Heads_that_do_not_split_evenly_are_refused()
    {
        var act = () => TensorParallel.Run(3, rank => new T5EncoderModel(T5Config.T5Xxl, rank, ScalarType.BFloat16), Meta);
        act.Should().Throw<ArgumentException>().WithMessage("*64 attention heads*3*");
    }
}
