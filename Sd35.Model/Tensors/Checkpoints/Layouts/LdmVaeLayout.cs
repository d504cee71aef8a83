using System.Text.RegularExpressions;

namespace Sd35.Tensors.Checkpoints.Layouts;

/// <summary>
/// The VAE under the original latent-diffusion (ldm) names against diffusers' <c>AutoencoderKL</c> names. Facts from
/// diffusers' <c>convert_ldm_vae_checkpoint</c>: <c>down.N.block.M</c> / <c>up.N.block.M</c> are the resnets, the
/// decoder's <c>up</c> blocks counted from the lowest resolution (so diffusers' up block i is ldm's <c>up.{n-1-i}</c>);
/// <c>mid.block_1/2</c> and <c>mid.attn_1</c> (with <c>norm, q, k, v, proj_out</c> as 1×1 convolutions); <c>nin_shortcut</c>
/// is the resnet's 1×1 shortcut; <c>norm_out</c> the last group norm.
/// </summary>
static partial class LdmVaeLayout
{
    static readonly (string Ldm, string Diffusers)[] Attention =
        [("norm", "group_norm"), ("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("proj_out", "to_out.0")];

    /// <summary>A rule for each stored ldm key that has a diffusers name (others stay as they are and count as unexpected).</summary>
    public static IEnumerable<KeyRule> RulesFor(ICollection<string> ldmKeys)
    {
        int ups = UpCount(ldmKeys, UpLdm());
        foreach (var key in ldmKeys)
            if (ToDiffusers(key, ups) is { } model)
                yield return new KeyRule(model, key, ConvKernel: model.Contains(".mid_block.attentions.", StringComparison.Ordinal));
    }

    /// <summary>Rules for writing a diffusers-named VAE in ldm names.</summary>
    public static IEnumerable<KeyRule> RulesForModel(ICollection<string> diffusersKeys)
    {
        int ups = UpCount(diffusersKeys, UpDiffusers());
        foreach (var key in diffusersKeys)
            if (ToLdm(key, ups) is { } stored)
                yield return new KeyRule(key, stored, ConvKernel: key.Contains(".mid_block.attentions.", StringComparison.Ordinal));
    }

    public static string? ToDiffusers(string key, int upBlocks) => Renamed(key, ("norm_out.", "conv_norm_out."), rest => rest switch
    {
        _ when DownBlock().Match(rest) is { Success: true } m => $"down_blocks.{m.Groups[1]}.resnets.{m.Groups[2]}.{Shortcut(m.Groups[3].Value)}",
        _ when DownSample().Match(rest) is { Success: true } m => $"down_blocks.{m.Groups[1]}.downsamplers.0.conv.{m.Groups[2]}",
        _ when UpBlock().Match(rest) is { Success: true } m => $"up_blocks.{upBlocks - 1 - int.Parse(m.Groups[1].Value)}.resnets.{m.Groups[2]}.{Shortcut(m.Groups[3].Value)}",
        _ when UpSample().Match(rest) is { Success: true } m => $"up_blocks.{upBlocks - 1 - int.Parse(m.Groups[1].Value)}.upsamplers.0.conv.{m.Groups[2]}",
        _ when MidBlock().Match(rest) is { Success: true } m => $"mid_block.resnets.{int.Parse(m.Groups[1].Value) - 1}.{Shortcut(m.Groups[2].Value)}",
        _ when MidAttention().Match(rest) is { Success: true } m && Attention.FirstOrDefault(a => a.Ldm == m.Groups[1].Value) is { Diffusers: { } d }
            => $"mid_block.attentions.0.{d}.{m.Groups[2]}",
        _ => null,
    });

    public static string? ToLdm(string key, int upBlocks) => Renamed(key, ("conv_norm_out.", "norm_out."), rest => rest switch
    {
        _ when DiffusersResnet().Match(rest) is { Success: true } m => m.Groups[1].Value switch
        {
            "down_blocks" => $"down.{m.Groups[2]}.block.{m.Groups[3]}.{Unshortcut(m.Groups[4].Value)}",
            _ => $"up.{upBlocks - 1 - int.Parse(m.Groups[2].Value)}.block.{m.Groups[3]}.{Unshortcut(m.Groups[4].Value)}",
        },
        _ when DiffusersSampler().Match(rest) is { Success: true } m => m.Groups[1].Value == "down_blocks"
            ? $"down.{m.Groups[2]}.downsample.conv.{m.Groups[3]}"
            : $"up.{upBlocks - 1 - int.Parse(m.Groups[2].Value)}.upsample.conv.{m.Groups[3]}",
        _ when DiffusersMidResnet().Match(rest) is { Success: true } m => $"mid.block_{int.Parse(m.Groups[1].Value) + 1}.{Unshortcut(m.Groups[2].Value)}",
        _ when DiffusersMidAttention().Match(rest) is { Success: true } m && Attention.FirstOrDefault(a => a.Diffusers == m.Groups[1].Value) is { Ldm: { } l }
            => $"mid.attn_1.{l}.{m.Groups[2]}",
        _ => null,
    });

    /// <summary>
    /// A name of the encoder or decoder with its part after <c>encoder.</c>/<c>decoder.</c> renamed: the output norm
    /// (its one name difference besides the blocks), <c>conv_in</c>/<c>conv_out</c> as they are, the blocks by
    /// <paramref name="blocks"/>; the quant convs keep their names and anything else has none (null).
    /// </summary>
    static string? Renamed(string key, (string From, string To) normOut, Func<string, string?> blocks)
    {
        var parts = key.Split('.');
        if (parts.Length < 3 || parts[0] is not ("encoder" or "decoder")) return parts[0] is "quant_conv" or "post_quant_conv" ? key : null;
        var rest = string.Join('.', parts[1..]);
        string? mapped = rest.StartsWith(normOut.From, StringComparison.Ordinal) ? normOut.To + rest[normOut.From.Length..]
            : rest.StartsWith("conv_in.", StringComparison.Ordinal) || rest.StartsWith("conv_out.", StringComparison.Ordinal) ? rest
            : blocks(rest);
        return mapped is null ? null : $"{parts[0]}.{mapped}";
    }

    static string Shortcut(string rest) => rest.Replace("nin_shortcut", "conv_shortcut", StringComparison.Ordinal);
    static string Unshortcut(string rest) => rest.Replace("conv_shortcut", "nin_shortcut", StringComparison.Ordinal);

    static int UpCount(IEnumerable<string> keys, Regex up) =>
        keys.Select(k => up.Match(k)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).DefaultIfEmpty(-1).Max() + 1;

    [GeneratedRegex(@"^down\.(\d+)\.block\.(\d+)\.(.+)$")] private static partial Regex DownBlock();
    [GeneratedRegex(@"^down\.(\d+)\.downsample\.conv\.(\w+)$")] private static partial Regex DownSample();
    [GeneratedRegex(@"^up\.(\d+)\.block\.(\d+)\.(.+)$")] private static partial Regex UpBlock();
    [GeneratedRegex(@"^up\.(\d+)\.upsample\.conv\.(\w+)$")] private static partial Regex UpSample();
    [GeneratedRegex(@"^mid\.block_([12])\.(.+)$")] private static partial Regex MidBlock();
    [GeneratedRegex(@"^mid\.attn_1\.(\w+)\.(weight|bias)$")] private static partial Regex MidAttention();
    [GeneratedRegex(@"^decoder\.up\.(\d+)\.")] private static partial Regex UpLdm();
    [GeneratedRegex(@"^decoder\.up_blocks\.(\d+)\.")] private static partial Regex UpDiffusers();
    [GeneratedRegex(@"^(down_blocks|up_blocks)\.(\d+)\.resnets\.(\d+)\.(.+)$")] private static partial Regex DiffusersResnet();
    [GeneratedRegex(@"^(down_blocks|up_blocks)\.(\d+)\.(?:downsamplers|upsamplers)\.0\.conv\.(\w+)$")] private static partial Regex DiffusersSampler();
    [GeneratedRegex(@"^mid_block\.resnets\.([01])\.(.+)$")] private static partial Regex DiffusersMidResnet();
    [GeneratedRegex(@"^mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(weight|bias)$")] private static partial Regex DiffusersMidAttention();
}
