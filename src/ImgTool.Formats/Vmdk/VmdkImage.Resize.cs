using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vmdk;

/// <summary>
/// Resize, which qemu-img cannot do for VMDK: a single-extent image (monolithicSparse, monolithicFlat) grows in place.
/// The extent grows first (<see cref="VmdkSparseExtent.GrowAsync"/>, or a longer flat file), then the descriptor's
/// extent line and ddb.geometry.cylinders say the new size; the new descriptor must fit where the old one is.
/// Shrinking is refused. The opened image keeps its old layout in memory: reopen it to use the new size.
/// </summary>
internal partial class VmdkImage : IResizable
{
    public async ValueTask ResizeAsync(long newSizeBytes, CancellationToken cancellationToken = default)
    {
        if (newSizeBytes <= 0 || newSizeBytes % VmdkLimits.SectorBytes != 0)
        {
            throw new InvalidOptionException($"The new size must be a positive multiple of {VmdkLimits.SectorBytes}", HostFile.Path);
        }

        if (IsReadOnly)
        {
            throw new UnsupportedFeatureException("the image is open read-only", HostFile.Path);
        }

        if (Descriptor.ParentFileNameHint is not null)
        {
            throw new UnsupportedFeatureException("a delta VMDK has its parent's size and cannot be resized on its own", HostFile.Path);
        }

        if (_extents.Length != 1 || _extents[0] is not (VmdkSparseExtent or VmdkFlatExtent) || Descriptor.Extents.Count != 1)
        {
            throw new UnsupportedFeatureException("only single-extent VMDKs (monolithicSparse, monolithicFlat) can be resized in place; convert the image", HostFile.Path);
        }

        if (newSizeBytes < SizeBytes)
        {
            throw new UnsupportedFeatureException("shrinking a VMDK is not supported", HostFile.Path);
        }

        long sectors = newSizeBytes / VmdkLimits.SectorBytes;
        byte[] descriptor = Encoding.UTF8.GetBytes(ResizedDescriptor(_descriptorText, sectors));
        if (!_descriptorPlace.IsWholeFile && descriptor.Length > _descriptorPlace.CapacityBytes)
        {
            throw new UnsupportedFeatureException("the resized descriptor does not fit in the space the image keeps for it", HostFile.Path);
        }

        switch (_extents[0])
        {
            case VmdkSparseExtent sparse:
                await sparse.GrowAsync(sectors, cancellationToken).ConfigureAwait(false);
                break;
            case VmdkFlatExtent flat:
                long end = (Descriptor.Extents[0].FlatOffsetSectors * VmdkLimits.SectorBytes) + newSizeBytes;
                if (flat.File.Length < end)
                {
                    flat.File.SetLength(end);
                }

                await flat.File.FlushAsync(cancellationToken).ConfigureAwait(false);
                break;
        }

        if (_descriptorPlace.IsWholeFile)
        {
            await HostFile.WriteAsync(0, descriptor, cancellationToken).ConfigureAwait(false);
            HostFile.SetLength(descriptor.Length);
        }
        else
        {
            byte[] area = new byte[_descriptorPlace.CapacityBytes];
            descriptor.CopyTo(area, 0);
            await HostFile.WriteAsync(_descriptorPlace.OffsetBytes, area, cancellationToken).ConfigureAwait(false);
        }

        await HostFile.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The descriptor text with the extent line's sector count and the cylinder count (as QEMU computes it at
    /// create: sectors / (63 * heads)) changed; every other line stays as it was.</summary>
    private static string ResizedDescriptor(string text, long sectors)
    {
        string[] lines = text.Split('\n');
        int heads = 16;
        foreach (string line in lines)
        {
            Match h = Regex.Match(line, "^\\s*ddb\\.geometry\\.heads\\s*=\\s*\"?(\\d+)\"?");
            if (h.Success && int.TryParse(h.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int parsed) && parsed > 0)
            {
                heads = parsed;
            }
        }

        for (int i = 0; i < lines.Length; i++)
        {
            bool cr = lines[i].EndsWith('\r');
            string line = lines[i].TrimEnd('\r');
            Match extent = Regex.Match(line, "^(\\s*(?:RW|RDONLY)\\s+)\\d+(\\s+.*)$");
            if (extent.Success)
            {
                line = extent.Groups[1].Value + sectors.ToString(CultureInfo.InvariantCulture) + extent.Groups[2].Value;
            }

            Match cylinders = Regex.Match(line, "^(\\s*ddb\\.geometry\\.cylinders\\s*=\\s*\"?)\\d+(\"?.*)$");
            if (cylinders.Success)
            {
                long value = sectors / (63L * heads);
                line = cylinders.Groups[1].Value + value.ToString(CultureInfo.InvariantCulture) + cylinders.Groups[2].Value;
            }

            lines[i] = line + (cr ? "\r" : string.Empty);
        }

        return string.Join('\n', lines);
    }
}
