using ImgTool.Block.Errors;

namespace ImgTool.Formats.Vhd;

/// <summary>CHS geometry and the sizing rules qemu applies when it creates and opens VHDs.</summary>
internal static class VhdGeometry
{
    /// <summary>
    /// The spec's "CHS calculation" (VHD specification, Appendix: CHS Calculation): from a sector count to cylinders,
    /// heads and sectors per track, capped at 65535 x 16 x 255.
    /// </summary>
    public static (ushort Cylinders, byte Heads, byte SectorsPerTrack) Calculate(long totalSectors)
    {
        totalSectors = Math.Min(totalSectors, VhdLimits.MaxGeometrySectors);
        int sectorsPerTrack;
        int heads;
        long cylinderTimesHeads;
        if (totalSectors >= 65535L * 16 * 63)
        {
            sectorsPerTrack = 255;
            heads = 16;
            cylinderTimesHeads = totalSectors / sectorsPerTrack;
        }
        else
        {
            sectorsPerTrack = 17;
            cylinderTimesHeads = totalSectors / sectorsPerTrack;
            heads = (int)Math.Max(4, (cylinderTimesHeads + 1023) / 1024);
            if (cylinderTimesHeads >= heads * 1024L || heads > 16)
            {
                sectorsPerTrack = 31;
                heads = 16;
                cylinderTimesHeads = totalSectors / sectorsPerTrack;
            }

            if (cylinderTimesHeads >= heads * 1024L)
            {
                sectorsPerTrack = 63;
                heads = 16;
                cylinderTimesHeads = totalSectors / sectorsPerTrack;
            }
        }

        return ((ushort)(cylinderTimesHeads / heads), (byte)heads, (byte)sectorsPerTrack);
    }

    /// <summary>
    /// The size and geometry qemu-img writes for a requested size: without force_size the size grows until a CHS geometry
    /// covers it (so a converted disk is never truncated by readers that size by CHS); with force_size, or when the size
    /// needs the largest geometry, the size stays as asked (in whole sectors) and the geometry is the maximum.
    /// </summary>
    public static (long SizeBytes, ushort Cylinders, byte Heads, byte SectorsPerTrack) ForCreate(long requestedBytes, bool forceSize, string? fileName)
    {
        long requestedSectors = (requestedBytes + VhdLimits.SectorBytes - 1) / VhdLimits.SectorBytes;
        (ushort c, byte h, byte s) = (0, 0, 0);
        if (forceSize)
        {
            (c, h, s) = (65535, 16, 255);
        }
        else
        {
            long wanted = Math.Min(VhdLimits.MaxGeometrySectors, requestedSectors);
            for (long extra = 0; wanted > (long)c * h * s; extra++)
            {
                (c, h, s) = Calculate(wanted + extra);
            }
        }

        long sectors = (long)c * h * s;
        if (sectors == VhdLimits.MaxGeometrySectors)
        {
            sectors = requestedSectors;
            if (sectors > VhdLimits.MaxSectors)
            {
                throw new InvalidOptionException("disk size is too large for VHD: the largest is 2040 GiB", fileName);
            }
        }

        return (sectors * VhdLimits.SectorBytes, c, h, s);
    }

    /// <summary>
    /// The virtual size of an opened image. Virtual PC ("vpc ") and old qemu ("qemu") size disks by their CHS geometry, so
    /// for them the geometry wins; every other creator (Hyper-V "win ", qemu force_size "qem2", disk2vhd "d2v ", XenServer
    /// "tap\0", XenConverter "CTXS", Azure "wa\0\0") means current_size. qemu 7.2 still sizes Azure images by CHS, which
    /// truncates them; QEMU 10 adopted this rule. A footer with the maximum geometry is always sized by current_size.
    /// </summary>
    public static long VirtualSize(in VhdFooter footer)
    {
        string creator = footer.CreatorApplicationText;
        bool useChs = creator is "vpc " or "qemu";
        long chsSectors = footer.CylinderHeadSectorCount;
        return !useChs || chsSectors == VhdLimits.MaxGeometrySectors
            ? (long)Math.Min(footer.CurrentSize / VhdLimits.SectorBytes, (ulong)long.MaxValue / VhdLimits.SectorBytes) * VhdLimits.SectorBytes
            : chsSectors * VhdLimits.SectorBytes;
    }
}
