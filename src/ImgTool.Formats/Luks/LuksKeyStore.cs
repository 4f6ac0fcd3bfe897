using System.Diagnostics;
using System.Security.Cryptography;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Luks;

/// <summary>Reads <c>length</c> bytes of the LUKS header area at an offset from its start.</summary>
internal delegate ValueTask LuksAreaReader(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken);

/// <summary>Writes bytes into the LUKS header area at an offset from its start.</summary>
internal delegate ValueTask LuksAreaWriter(long offsetBytes, ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

/// <summary>
/// Recovering the master key from a password, and making a new header for one (LUKS1 spec sections 2.3-2.4,
/// QEMU's crypto/block-luks.c behaviour): for each active slot, PBKDF2(password, slot salt) is the key that
/// decrypts the slot's split key material (sector numbers counted from 0); merging the stripes gives a
/// candidate master key, accepted when PBKDF2(candidate, digest salt) equals the header's digest.
/// </summary>
internal static class LuksKeyStore
{
    public const string InvalidPassword = "Invalid password, cannot unlock any keyslot";

    public const uint Stripes = 4000;

    /// <summary>Key material areas start on 4 KiB boundaries, as QEMU and cryptsetup align them.</summary>
    private const int AlignmentSectors = 4096 / LuksLimits.SectorBytes;

    public static async ValueTask<byte[]> UnlockAsync(LuksHeader header, byte[] password, LuksAreaReader read, string? fileName, CancellationToken cancellationToken)
    {
        LuksCipherSpec spec = LuksCipherSpec.FromHeader(header);
        spec.CheckSupported(fileName);
        LuksHash hash = LuksHash.Parse(header.HashSpec, fileName);
        byte[] candidate = new byte[header.KeyBytes];
        byte[] slotKey = new byte[header.KeyBytes];
        byte[] digest = new byte[LuksHeader.DigestBytes];
        foreach (LuksKeySlot slot in header.KeySlots.Where(s => s.Active))
        {
            byte[] split = new byte[header.SplitKeyBytes(slot)];
            await read(slot.KeyMaterialOffsetBytes, split, cancellationToken).ConfigureAwait(false);
            hash.Pbkdf2(password, slot.Salt, slot.Iterations, slotKey);
            using (ISectorCipher cipher = spec.Create(slotKey, fileName))
            {
                cipher.Decrypt(split.AsSpan(0, split.Length & ~15), 0);
            }

            AntiForensicSplitter.Merge(split, (int)slot.Stripes, hash, candidate);
            hash.Pbkdf2(candidate, header.MasterKeyDigestSalt, header.MasterKeyDigestIterations, digest);
            CryptographicOperations.ZeroMemory(split);
            if (CryptographicOperations.FixedTimeEquals(digest, header.MasterKeyDigest))
            {
                CryptographicOperations.ZeroMemory(slotKey);
                return candidate;
            }
        }

        CryptographicOperations.ZeroMemory(candidate);
        CryptographicOperations.ZeroMemory(slotKey);
        throw new EncryptionKeyException(InvalidPassword, fileName);
    }

    /// <summary>
    /// Makes a header with one active slot (slot 0) for <paramref name="password"/> and a new random master key,
    /// writes the header and that slot's key material through <paramref name="write"/>, and returns both.
    /// The caller provides a zeroed area of <see cref="LuksHeader.PayloadOffsetBytes"/> bytes.
    /// </summary>
    public static async ValueTask<(LuksHeader Header, byte[] MasterKey)> CreateAsync(
        LuksCipherSpec spec, LuksHash hash, byte[] password, int iterTimeMs, LuksAreaWriter write, string? fileName, CancellationToken cancellationToken)
    {
        spec.CheckSupported(fileName);
        byte[] masterKey = RandomNumberGenerator.GetBytes(spec.KeyBytes);
        byte[] digestSalt = RandomNumberGenerator.GetBytes(LuksHeader.SaltBytes);
        byte[] slotSalt = RandomNumberGenerator.GetBytes(LuksHeader.SaltBytes);

        // As QEMU: the slot gets iter-time's worth of PBKDF2, the digest an eighth of it; at least 1000 each.
        uint slotIterations = IterationsFor(hash, spec.KeyBytes, iterTimeMs);
        uint digestIterations = Math.Max(LuksLimits.MinIterations, IterationsFor(hash, LuksHeader.DigestBytes, iterTimeMs) / 8);

        uint splitSectors = SplitKeySectors(spec.KeyBytes);
        uint headerSectors = AlignmentSectors;
        var slots = new LuksKeySlot[LuksHeader.SlotCount];
        for (int i = 0; i < slots.Length; i++)
        {
            uint offset = headerSectors + ((uint)i * splitSectors);
            slots[i] = i == 0
                ? new LuksKeySlot(true, slotIterations, slotSalt, offset, Stripes)
                : new LuksKeySlot(false, 0, new byte[LuksHeader.SaltBytes], offset, Stripes);
        }

        byte[] digest = new byte[LuksHeader.DigestBytes];
        hash.Pbkdf2(masterKey, digestSalt, digestIterations, digest);
        var header = new LuksHeader
        {
            CipherName = spec.CipherName,
            CipherMode = spec.HeaderMode,
            HashSpec = hash.Name,
            PayloadOffsetSectors = headerSectors + (LuksHeader.SlotCount * splitSectors),
            KeyBytes = spec.KeyBytes,
            MasterKeyDigest = digest,
            MasterKeyDigestSalt = digestSalt,
            MasterKeyDigestIterations = digestIterations,
            Uuid = Guid.NewGuid().ToString("D"),
            KeySlots = slots,
        };

        byte[] split = new byte[header.SplitKeyBytes(slots[0])];
        AntiForensicSplitter.Split(masterKey, (int)Stripes, hash, split);
        byte[] slotKey = new byte[spec.KeyBytes];
        hash.Pbkdf2(password, slotSalt, slotIterations, slotKey);
        using (ISectorCipher cipher = spec.Create(slotKey, fileName))
        {
            cipher.Encrypt(split.AsSpan(0, split.Length & ~15), 0);
        }

        CryptographicOperations.ZeroMemory(slotKey);
        byte[] raw = new byte[LuksHeader.Length];
        header.Write(raw);
        await write(0, raw, cancellationToken).ConfigureAwait(false);
        await write(slots[0].KeyMaterialOffsetBytes, split, cancellationToken).ConfigureAwait(false);
        return (header, masterKey);
    }

    /// <summary>Sectors of one slot's key material area: key bytes × stripes, rounded up to the 4 KiB alignment.</summary>
    private static uint SplitKeySectors(int keyBytes)
    {
        uint sectors = (uint)((((long)keyBytes * Stripes) + LuksLimits.SectorBytes - 1) / LuksLimits.SectorBytes);
        return (sectors + AlignmentSectors - 1) / AlignmentSectors * AlignmentSectors;
    }

    /// <summary>The size of the header area a new header with this key size needs: header plus eight key material
    /// areas, which is also the payload offset QEMU writes (2068480 bytes for 64-byte keys).</summary>
    public static long AreaBytes(int keyBytes) =>
        (AlignmentSectors + (LuksHeader.SlotCount * (long)SplitKeySectors(keyBytes))) * LuksLimits.SectorBytes;

    /// <summary>How many PBKDF2 iterations producing <paramref name="outputBytes"/> run in <paramref name="milliseconds"/>
    /// here: measured on a short run, as QEMU's qcrypto_pbkdf2_count_iters does.</summary>
    private static uint IterationsFor(LuksHash hash, int outputBytes, int milliseconds)
    {
        Span<byte> output = stackalloc byte[outputBytes];
        Span<byte> salt = stackalloc byte[LuksHeader.SaltBytes];
        const int Probe = 20_000;
        long start = Stopwatch.GetTimestamp();
        hash.Pbkdf2("probe"u8, salt, Probe, output);
        double elapsedMs = Math.Max(Stopwatch.GetElapsedTime(start).TotalMilliseconds, 0.01);
        double iterations = Probe / elapsedMs * milliseconds;
        return (uint)Math.Clamp(iterations, LuksLimits.MinIterations, LuksLimits.MaxIterations / 2);
    }
}
