namespace ImgTool.Block.Options;

public enum ImageOptionKind
{
    Size,
    Bool,
    Number,
    String,
    Choice,
}

/// <summary>One `-o` option a format accepts, as `-o help` lists it. A format lists its options in QEMU's internal
/// order, which its "Formatting ..." line follows (`-o help` sorts them by name).</summary>
/// <param name="Default">The value qemu-img's "Formatting ..." line prints when the option is not given (QEMU's
/// def_value_str), or null when it prints nothing for it.</param>
/// <param name="Choices">The values that work. A Choice option is checked against them when parsed; a String
/// option with choices lists them in `-o help` but leaves the refusal to the format, whose message says more.</param>
public sealed record ImageOptionSpec(string Name, ImageOptionKind Kind, string Description, IReadOnlyList<string>? Choices = null, string? Default = null)
{
    /// <summary>
    /// Accepted, so that qemu-img's spelling parses and gets a clear refusal, but not listed by `-o help`: an option
    /// whose only working value is its default (qcow2's deprecated encryption=on asks for AES, which we do not have).
    /// </summary>
    public bool Hidden { get; init; }

    /// <summary>The value placeholder qemu-img prints in `-o help` ("&lt;size&gt;", "&lt;bool (on/off)&gt;", ...).</summary>
    public string Placeholder => Kind switch
    {
        ImageOptionKind.Size => "<size>",
        ImageOptionKind.Bool => "<bool (on/off)>",
        ImageOptionKind.Number => "<num>",
        _ => "<str>",
    };

    public string HelpLine
    {
        get
        {
            string description = Choices is { Count: > 0 } && !Description.Contains("allowed values", StringComparison.Ordinal)
                ? $"{Description} (allowed values: {string.Join(", ", Choices)})"
                : Description;
            return $"  {$"{Name}={Placeholder}",-22} - {description}";
        }
    }
}
