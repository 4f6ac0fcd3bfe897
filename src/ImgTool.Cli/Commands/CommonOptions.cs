using System.CommandLine;
using ImgTool.Block.Errors;
using ImgTool.Block.Host;

namespace ImgTool.Cli.Commands;

/// <summary>Options several commands share, spelled as qemu-img spells them.</summary>
internal static class CommonOptions
{
    public static Option<string?> Format(string name = "-f", string description = "Image format (probed when not given)") =>
        new(name) { Description = description, HelpName = "fmt" };

    public static Option<bool> ForceShare() =>
        new("-U", "--force-share") { Description = "Open read-only without taking locks (the image may be in use)" };

    public static Option<string> Output() =>
        new Option<string>("--output") { Description = "Output format", DefaultValueFactory = _ => "human", HelpName = "human|json" }
            .AcceptOnlyFromAmong("human", "json");

    public static Option<string?> Cache(string name, string description) =>
        new(name) { Description = description, HelpName = "cache" };

    public static Option<string?> Preset() =>
        new("--preset") { Description = "Destination platform: azure, hyperv, esxi, esxi-flat (format, options and size rules)", HelpName = "platform" };

    public static bool IsJson(this ParseResult parse, Option<string> output) => parse.GetValue(output) == "json";

    /// <summary>-T src_cache as qemu-img takes it: a cache mode name, refused in qemu-img's words.</summary>
    public static CacheMode ParseSourceCache(string? name) =>
        IsCacheMode(name) ? ParseCache(name, CacheMode.Writeback) : throw new InvalidOptionException($"Invalid source cache option: {name}");

    private static bool IsCacheMode(string? name) => name is null or "writeback" or "writethrough" or "directsync" or "none" or "unsafe";

    /// <summary>Cache mode names as qemu-img takes them (-t / -T).</summary>
    public static CacheMode ParseCache(string? name, CacheMode fallback) => name switch
    {
        null => fallback,
        "writeback" => CacheMode.Writeback,
        "writethrough" => CacheMode.Writethrough,
        "directsync" => CacheMode.DirectSync,
        "none" => CacheMode.None,
        "unsafe" => CacheMode.Unsafe,
        _ => throw new InvalidOptionException($"invalid cache mode '{name}': use writeback, writethrough, none, unsafe or directsync"),
    };
}
