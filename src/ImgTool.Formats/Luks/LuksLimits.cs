namespace ImgTool.Formats.Luks;

/// <summary>Bounds on values read from a LUKS header before they size an allocation or a loop; a hostile
/// header must not make us allocate without end or spin for hours.</summary>
internal static class LuksLimits
{
    /// <summary>The LUKS1 spec's sector: key material offsets and the payload offset count in these.</summary>
    public const int SectorBytes = 512;

    /// <summary>AES-256 in XTS mode needs two 256-bit keys; nothing LUKS1 defines needs more.</summary>
    public const int MaxKeyBytes = 64;

    /// <summary>The spec's value is 4000; QEMU and cryptsetup write nothing else. Allow some room, keep
    /// the split key material (key bytes × stripes) a few MiB at most.</summary>
    public const int MaxStripes = 64_000;

    /// <summary>PBKDF2 iterations we will run for one slot or the digest: cryptsetup picks about a second's
    /// worth, a few million on fast machines; far more than that only makes an open hang.</summary>
    public const uint MaxIterations = 50_000_000;

    /// <summary>How far a header may place key material or the payload: the standard layout ends at about
    /// 2 MiB; 128 MiB leaves room for large alignments and still bounds reads.</summary>
    public const long MaxHeaderAreaBytes = 128L << 20;

    /// <summary>Iterations below this give no protection; QEMU's minimum for both slot and digest.</summary>
    public const int MinIterations = 1000;
}
