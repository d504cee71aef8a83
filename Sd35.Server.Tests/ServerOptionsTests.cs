using FluentAssertions;
using Microsoft.Extensions.Configuration;
using Sd35.Server.Hosting;

namespace Sd35.Server.Tests;

/// <summary>The command line: the demo's spellings, loopback by default, bad values named before the server starts.</summary>
public sealed class ServerOptionsTests
{
    static ServerOptions Parse(params string[] args) =>
        ServerOptions.From(new ConfigurationBuilder().AddCommandLine(ServerOptions.NormalizeArguments(args)).Build());

    [Fact]
    public void Defaults_listen_on_loopback_and_bare_flags_need_no_value()
    {
        ServerOptions.NormalizeArguments([]).Should().Equal("--urls", "http://127.0.0.1:5080");
        ServerOptions.NormalizeArguments(["--urls", "http://0.0.0.0:80"]).Should().Equal("--urls", "http://0.0.0.0:80");
        var options = Parse("--bf16", "--queue-length", "3", "--parallel", "n300_cfg1_sp2_tp1");
        (options.Pipeline.WeightDType, options.QueueLength, options.Pipeline.Parallel.Id).Should().Be((TorchSharp.torch.ScalarType.BFloat16, 3, "n300_cfg1_sp2_tp1"));
        Parse().Should().Be(new ServerOptions());
        Parse().Pipeline.Residency.Should().Be(Sd35.Pipeline.ModelResidency.Resident);
        Parse("--models", "staged").Pipeline.Residency.Should().Be(Sd35.Pipeline.ModelResidency.Staged);
        Parse("--max-images", "2").Pipeline.Limits.MaxImages.Should().Be(2);
    }

    [Theory]
    [InlineData("--queue-length", "-1", "--queue-length")]
    [InlineData("--max-steps", "many", "--max-steps")]
    [InlineData("--parallel", "no_such_config", "--parallel 'no_such_config'")]
    [InlineData("--model", "/no/such/folder", "--model '/no/such/folder': is not a folder or a file")]
    [InlineData("--device", "gpu", "--device 'gpu': must be cpu or cuda")]
    [InlineData("--models", "cached", "--models 'cached': must be resident or staged")]
    [InlineData("--bf16", "maybe", "--bf16 'maybe': takes no value or true/false")]
    [InlineData("--quantize", "q4_k", "--quantize 'q4_k': is not a quantization this build holds weights in; supported: q8_0, q5_0, q5_1, q4_0, q4_1")]
    [InlineData("--log-format", "xml", "--log-format must be text or json")]
    [InlineData("--max-event-streams", "0", "--max-event-streams must be an integer ≥ 1")]
    [InlineData("--max-connections-per-client", "many", "--max-connections-per-client")]
    [InlineData("--api-key", " ", "--api-key (or SD35_API_KEY) is empty")]
    [InlineData("--api-key", "key-with-a-newline\n", "--api-key (or SD35_API_KEY) starts or ends with whitespace")]
    public void A_bad_option_is_named(string option, string value, string expected)
    {
        // The server reads both option sets at start-up; either names its own bad value.
        var configuration = new ConfigurationBuilder().AddCommandLine(ServerOptions.NormalizeArguments([option, value])).Build();
        var act = () => (ServerOptions.From(configuration), AccessOptions.From(configuration));
        // Pipeline options are the library's (SettingException, an InputException); the server's own are ArgumentExceptions: both exit 2.
        act.Should().Throw<Exception>().Where(e => e is ArgumentException || e is Sd35.Errors.InputException).WithMessage($"*{expected}*");
    }
}
