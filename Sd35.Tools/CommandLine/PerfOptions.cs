using System.CommandLine;
using System.CommandLine.Parsing;

namespace Sd35.Tools.CommandLine;

/// <summary>Options and arguments that several commands share, so that they read and check the same way everywhere.</summary>
public static class PerfOptions
{
    /// <summary><c>--repeat N</c>: how many timed runs (or rounds) a median is taken over.</summary>
    public static Option<int> Repeat(int defaultValue, string what = "timed runs to take the median of") =>
        PositiveCount("--repeat", $"How many {what}", defaultValue);

    /// <summary>An option whose value is a whole number above zero, with a default.</summary>
    public static Option<int> PositiveCount(string name, string description, int defaultValue, string helpName = "n") => new(name)
    {
        Description = $"{description}.",
        HelpName = helpName,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => r.Tokens.Count == 0 ? defaultValue : PositiveWholeNumber(r),
    };

    /// <summary><c>--fp32</c>: float32 weights instead of bfloat16.</summary>
    public static Option<bool> Fp32() => new("--fp32") { Description = "Float32 weights instead of bfloat16." };

    /// <summary><c>--device cpu|cuda|cuda:N</c>, checked for its form at parse time (whether CUDA is there, when it is used).</summary>
    public static Option<string> Device(string defaultValue)
    {
        var option = new Option<string>("--device") { Description = "cpu, cuda or cuda:N.", DefaultValueFactory = _ => defaultValue, HelpName = "device" };
        option.Validators.Add(r =>
        {
            var text = r.Tokens.Count > 0 ? r.Tokens[^1].Value : defaultValue;
            if (text is not ("cpu" or "cuda") && !(text.StartsWith("cuda:", StringComparison.Ordinal) && uint.TryParse(text[5..], out _)))
                r.AddError($"--device '{text}' is not cpu, cuda or cuda:N");
        });
        return option;
    }

    /// <summary><c>--model DIR</c>: a diffusers SD3.5 folder, which must exist.</summary>
    public static Option<string> ModelFolder(string description)
    {
        var option = new Option<string>("--model") { Description = description, HelpName = "dir", Required = true };
        option.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && !Directory.Exists(r.Tokens[^1].Value)) r.AddError($"--model '{r.Tokens[^1].Value}' is not a folder");
        });
        return option;
    }

    /// <summary>Parallel-config ids (<c>t3k_cfg2_sp2_tp2</c>…), each checked at parse time so that a typo fails before any work.</summary>
    public static Argument<string[]> ParallelConfigs(string description, params string[] defaults)
    {
        var argument = new Argument<string[]>("config") { Description = description, Arity = ArgumentArity.ZeroOrMore, DefaultValueFactory = _ => defaults };
        argument.Validators.Add(r => CheckConfigIds(r, r.Tokens));
        return argument;
    }

    /// <summary>Adds an error naming the first token that is not a parallel-config id.</summary>
    public static void CheckConfigIds(SymbolResult result, IEnumerable<Token> tokens)
    {
        foreach (var token in tokens)
        {
            try
            {
                Sd35.Mesh.ParallelConfig.Parse(token.Value);
            }
            catch (Exception e) when (e is FormatException or KeyNotFoundException or ArgumentException)
            {
                result.AddError(e.Message);
                return;
            }
        }
    }

    /// <summary>A comma-separated list (<c>--components a,b</c>) of names from a known set; empty when not given.</summary>
    public static Option<string[]> NameList(string name, string description, IReadOnlyCollection<string> known) => new(name)
    {
        Description = $"{description} Comma-separated, from: {string.Join(", ", known)}.",
        HelpName = "a,b,...",
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0) return [];
            var names = r.Tokens[^1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var unknown = names.FirstOrDefault(n => !known.Contains(n));
            if (names.Length == 0 || unknown is not null)
                r.AddError($"{name} '{r.Tokens[^1].Value}': {(unknown is null ? "names nothing" : $"unknown '{unknown}'")}; known: {string.Join(", ", known)}");
            return names;
        },
    };

    /// <summary>The component folders of a diffusers SD3.5 model.</summary>
    public static readonly string[] ComponentFolders = ["text_encoder", "text_encoder_2", "text_encoder_3", "transformer", "vae"];

    /// <summary>Parses a whole number above zero, naming the option (or argument) and the value otherwise.</summary>
    public static int PositiveWholeNumber(ArgumentResult result)
    {
        var text = result.Tokens[^1].Value;
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n > 0) return n;
        result.AddError($"{NameOf(result)} must be a positive whole number; got '{text}'");
        return 0;
    }

    static string NameOf(ArgumentResult result) => result.Parent switch
    {
        OptionResult option => option.Option.Name,
        _ => result.Argument.Name,
    };
}
