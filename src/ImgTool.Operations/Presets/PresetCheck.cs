using ImgTool.Block.Devices;

namespace ImgTool.Operations.Presets;

/// <summary>What a platform would refuse in an image, as `info --preset` reports it.</summary>
public static class PresetCheck
{
    public static IReadOnlyList<string> Problems(Preset preset, IImage image)
    {
        var problems = new List<string>();
        if (image.FormatName != preset.Format)
        {
            problems.Add($"{preset.Platform} needs format '{preset.Format}', this image is '{image.FormatName}'");
            return problems;
        }

        string? subformat = image.Details.Subformat;
        if (subformat is not null && !preset.AcceptedSubformats.Contains(subformat))
        {
            problems.Add($"{preset.Platform} does not take '{subformat}' images (it takes {string.Join(", ", preset.AcceptedSubformats)})");
        }

        if (image.SizeBytes % preset.SizeAlignmentBytes != 0)
        {
            problems.Add($"{preset.Platform} needs a virtual size that is a multiple of {preset.SizeAlignmentBytes} bytes; this one is {image.SizeBytes} (round up to {preset.RoundSize(image.SizeBytes)})");
        }

        if (image.SizeBytes > preset.MaxSizeBytes)
        {
            problems.Add($"{preset.Platform} takes at most {preset.MaxSizeBytes} bytes; this image is {image.SizeBytes}");
        }

        foreach (var (key, value) in preset.Options)
        {
            if (key == "adapter_type" && image.Details.AdapterType is { } adapter && adapter != value)
            {
                problems.Add($"{preset.Platform} expects adapter type '{value}', this image names '{adapter}'");
            }
        }

        return problems;
    }
}
