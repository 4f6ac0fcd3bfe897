using ImgTool.Block.Errors;

namespace ImgTool.Formats.Amend;

/// <summary>
/// Who uses each host cluster of the converted image: free, the header, a table, or the data cluster of one guest
/// cluster. Built while the old tables are walked, so a cluster referenced twice (which would become shared in the new
/// image) is found before anything is written; the qcow2 side derives its refcounts from it, the QED side its
/// compaction after the switch.
/// </summary>
internal sealed class HostClusterMap
{
    public const long Free = 0;
    public const long Header = -1;
    public const long L1Table = -2;

    /// <summary>One long per host cluster: 128 MiB of map for 16 Mi clusters (a 1 TiB file at 64 KiB clusters).</summary>
    public const long MaxClusters = 16L << 20;

    private const long FirstL2Code = -3;

    private long[] _owner;

    public HostClusterMap(long clusters, string path)
    {
        Path = path;
        _owner = new long[Checked(clusters)];
    }

    public string Path { get; }

    public long Length => _owner.Length;

    public long this[long cluster] => _owner[cluster];

    public static long DataOwner(long guestCluster) => guestCluster + 1;

    public static long L2Owner(long tableIndex) => FirstL2Code - tableIndex;

    public static bool IsData(long owner) => owner > 0;

    public static bool IsL2(long owner) => owner <= FirstL2Code;

    public static long GuestCluster(long owner) => owner - 1;

    public static long L2Index(long owner) => FirstL2Code - owner;

    public void Grow(long clusters)
    {
        if (clusters > _owner.Length)
        {
            Array.Resize(ref _owner, (int)Checked(clusters));
        }
    }

    /// <summary>Marks <paramref name="count"/> clusters from <paramref name="first"/> as used by <paramref name="owner"/>;
    /// a cluster already in use means the old image shares it, which a conversion cannot keep.</summary>
    public void Claim(long first, long count, long owner, string structure)
    {
        for (long c = first; c < first + count; c++)
        {
            if (_owner[c] != Free)
            {
                throw new ImageCorruptException($"host cluster at offset {c} (cluster index) is referenced twice; run 'imgtool check' on the image", structure, c, Path);
            }

            _owner[c] = owner;
        }
    }

    public void Set(long first, long count, long owner)
    {
        for (long c = first; c < first + count; c++)
        {
            _owner[c] = owner;
        }
    }

    private long Checked(long clusters)
    {
        if (clusters > MaxClusters)
        {
            throw new UnsupportedFeatureException($"the image file has {clusters} clusters; in-place conversion handles at most {MaxClusters}", Path);
        }

        return clusters;
    }
}
