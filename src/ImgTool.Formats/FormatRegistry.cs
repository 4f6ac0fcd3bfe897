using ImgTool.Block.Errors;
using ImgTool.Formats.Luks;
using ImgTool.Formats.Qcow2;
using ImgTool.Formats.QcowV1;
using ImgTool.Formats.Dmg;
using ImgTool.Formats.Cloop;
using ImgTool.Formats.Bochs;
using ImgTool.Formats.Parallels;
using ImgTool.Formats.Vmdk;
using ImgTool.Formats.Vhd;
using ImgTool.Formats.Vhdx;
using ImgTool.Formats.Raw;

namespace ImgTool.Formats;

/// <summary>The formats imgtool knows, as one immutable list (no reflection, AOT-safe).</summary>
public sealed class FormatRegistry(IReadOnlyList<FormatDriver> drivers)
{
    /// <summary>Every built-in format.</summary>
    public static FormatRegistry Default { get; } = new([
        Qcow2Format.Instance, Qed.QedFormat.Instance, VmdkFormat.Instance, VhdFormat.Instance, VhdxFormat.Instance, Vdi.VdiFormat.Instance,
        LuksFormat.Instance, QcowV1Format.Instance, ParallelsFormat.Instance, BochsFormat.Instance, CloopFormat.Instance, DmgFormat.Instance,
        RawFormat.Instance,
    ]);

    public IReadOnlyList<FormatDriver> Drivers { get; } = drivers;

    public FormatDriver? Find(string name) => Drivers.FirstOrDefault(d => d.Name == name);

    public FormatDriver Get(string name) => Find(name)
        ?? throw new InvalidOptionException($"unknown image format '{name}' (known: {string.Join(", ", Drivers.Select(d => d.Name))})");

    /// <summary>The driver with the highest score; raw scores 1, so it wins only when nothing else does.</summary>
    public FormatDriver Probe(ProbeInput input)
    {
        FormatDriver? best = null;
        int bestScore = 0;
        foreach (FormatDriver driver in Drivers)
        {
            int score = driver.Probe(input);
            if (score > bestScore)
            {
                best = driver;
                bestScore = score;
            }
        }

        return best ?? throw new ImageFormatException("could not determine the image format", input.FileName);
    }
}
