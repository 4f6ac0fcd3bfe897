using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Qed;

/// <summary>
/// Checks a header read from a file before any of its fields sizes an allocation or a loop: the spec's ranges, the
/// checks QEMU's open makes (in its order), and the bounds of <see cref="QedLimits"/>. A bad field is one clear error.
/// </summary>
internal static class QedHeaderValidation
{
    /// <returns>The geometry the header describes.</returns>
    public static QedGeometry Validate(QedHeader header, long fileLength, string path)
    {
        QedFeatures unknown = header.Features & ~QedFeatures.Known;
        if (unknown != QedFeatures.None)
        {
            // QEMU's wording: "Unsupported QED features: %x".
            throw new UnsupportedFeatureException($"Unsupported QED features: {(ulong)unknown:x}", path);
        }

        if (!QedGeometry.IsValidClusterSize(header.ClusterSize))
        {
            throw new ImageFormatException($"invalid QED cluster_size {header.ClusterSize}: must be a power of 2 in [{QedLimits.MinClusterSize}, {QedLimits.MaxClusterSize}]", path);
        }

        if (!QedGeometry.IsValidTableSize(header.TableSize))
        {
            throw new ImageFormatException($"invalid QED table_size {header.TableSize}: must be a power of 2 in [{QedLimits.MinTableSize}, {QedLimits.MaxTableSize}]", path);
        }

        long maxImage = QedGeometry.MaxImageSize(header.ClusterSize, header.TableSize);
        if (header.ImageSize % QedLimits.SectorBytes != 0 || header.ImageSize > (ulong)maxImage)
        {
            throw new ImageFormatException($"invalid QED image_size {header.ImageSize}: must be a multiple of 512 and at most {maxImage}", path);
        }

        // QEMU rejects a header size whose byte count overflows 32 bits; one cluster at least holds the header itself.
        if (header.HeaderClusters == 0 || header.HeaderClusters > uint.MaxValue / header.ClusterSize)
        {
            throw new ImageFormatException($"invalid QED header_size {header.HeaderClusters} clusters", path);
        }

        var geometry = new QedGeometry(header.ClusterSize, header.TableSize, (long)header.ImageSize);
        long fileEnd = fileLength & ~(long)(header.ClusterSize - 1);
        if (!IsValidTableOffset(header.L1TableOffset, header, geometry, fileEnd))
        {
            throw new ImageFormatException($"invalid QED l1_table_offset {header.L1TableOffset}: it must be cluster aligned, after the header and inside the file", path);
        }

        if (header.Has(QedFeatures.BackingFile))
        {
            ulong nameEnd = (ulong)header.BackingFileNameOffset + header.BackingFileNameSize;
            if (nameEnd > (ulong)header.HeaderClusters * header.ClusterSize)
            {
                throw new ImageFormatException("the QED backing file name lies outside the header clusters", path);
            }

            if (header.BackingFileNameSize > QedLimits.MaxBackingFileNameBytes)
            {
                throw new ImageFormatException($"the QED backing file name is too long ({header.BackingFileNameSize} bytes, at most {QedLimits.MaxBackingFileNameBytes})", path);
            }
        }

        if (geometry.L1EntriesUsed > QedLimits.MaxTableEntriesInMemory || geometry.L2EntriesUsed(0) > QedLimits.MaxTableEntriesInMemory)
        {
            throw new UnsupportedFeatureException($"the QED tables are too large to hold in memory (more than {QedLimits.MaxTableEntriesInMemory} entries)", path);
        }

        return geometry;
    }

    /// <summary>The backing name's bytes as a string; a NUL inside it (which would cut QEMU's C string short) is refused.</summary>
    public static string DecodeBackingFileName(ReadOnlySpan<byte> name, string path)
    {
        if (name.Contains((byte)0))
        {
            throw new ImageFormatException("the QED backing file name contains a NUL byte", path);
        }

        if (name.IsEmpty)
        {
            throw new ImageFormatException("the QED backing file name is empty", path);
        }

        return Encoding.UTF8.GetString(name);
    }

    /// <summary>QEMU's qed_check_cluster_offset: aligned, past the header, and inside the file.</summary>
    public static bool IsValidClusterOffset(ulong offset, QedHeader header, long fileEnd) =>
        (offset & (header.ClusterSize - 1)) == 0
        && offset >= (ulong)header.HeaderClusters * header.ClusterSize
        && offset < (ulong)fileEnd;

    /// <summary>QEMU's qed_check_table_offset: the table's first and last clusters are valid cluster offsets.</summary>
    public static bool IsValidTableOffset(ulong offset, QedHeader header, QedGeometry geometry, long fileEnd)
    {
        ulong last = offset + (ulong)(geometry.TableBytes - geometry.ClusterSize);
        return last >= offset
            && IsValidClusterOffset(offset, header, fileEnd)
            && IsValidClusterOffset(last, header, fileEnd);
    }
}
