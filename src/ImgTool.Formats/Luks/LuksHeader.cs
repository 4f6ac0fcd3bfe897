using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;

namespace ImgTool.Formats.Luks;

/// <summary>One of the eight key slots of a LUKS1 header (LUKS On-Disk Format Specification 1.2.3, table 2).</summary>
/// <param name="Active">0x00AC71F3 when the slot holds a key, 0x0000DEAD when disabled.</param>
/// <param name="KeyMaterialOffsetSectors">Where the slot's anti-forensic split key lies, in 512-byte sectors from the header start.</param>
internal sealed record LuksKeySlot(bool Active, uint Iterations, byte[] Salt, uint KeyMaterialOffsetSectors, uint Stripes)
{
    public const uint ActiveMarker = 0x00AC71F3;
    public const uint DisabledMarker = 0x0000DEAD;

    // Field offsets within one 48-byte slot.
    public const int ActiveOffset = 0;
    public const int IterationsOffset = ActiveOffset + 4;
    public const int SaltOffset = IterationsOffset + 4;
    public const int KeyMaterialOffsetOffset = SaltOffset + LuksHeader.SaltBytes;
    public const int StripesOffset = KeyMaterialOffsetOffset + 4;
    public const int Length = StripesOffset + 4; // 48

    public long KeyMaterialOffsetBytes => (long)KeyMaterialOffsetSectors * LuksLimits.SectorBytes;
}

/// <summary>
/// The LUKS1 partition header (spec table 1): big-endian, 592 bytes, followed by the key material areas.
/// Parse and serialize only; no I/O. <see cref="Read"/> checks every field that later sizes a read,
/// an allocation or a PBKDF2 run against <see cref="LuksLimits"/>.
/// </summary>
internal sealed record LuksHeader
{
    public static ReadOnlySpan<byte> Magic => [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe];

    public const int SaltBytes = 32;
    public const int DigestBytes = 20;
    public const int NameBytes = 32;
    public const int UuidBytes = 40;
    public const int SlotCount = 8;

    public const int MagicOffset = 0;
    public const int VersionOffset = MagicOffset + 6;
    public const int CipherNameOffset = VersionOffset + 2;
    public const int CipherModeOffset = CipherNameOffset + NameBytes;
    public const int HashSpecOffset = CipherModeOffset + NameBytes;
    public const int PayloadOffsetOffset = HashSpecOffset + NameBytes;
    public const int KeyBytesOffset = PayloadOffsetOffset + 4;
    public const int MasterKeyDigestOffset = KeyBytesOffset + 4;
    public const int MasterKeyDigestSaltOffset = MasterKeyDigestOffset + DigestBytes;
    public const int MasterKeyDigestIterationsOffset = MasterKeyDigestSaltOffset + SaltBytes;
    public const int UuidOffset = MasterKeyDigestIterationsOffset + 4;
    public const int KeySlotsOffset = UuidOffset + UuidBytes; // 208
    public const int Length = KeySlotsOffset + (SlotCount * LuksKeySlot.Length); // 592

    public const ushort Version1 = 1;

    public required string CipherName { get; init; }

    public required string CipherMode { get; init; }

    public required string HashSpec { get; init; }

    public uint PayloadOffsetSectors { get; init; }

    public int KeyBytes { get; init; }

    public required byte[] MasterKeyDigest { get; init; }

    public required byte[] MasterKeyDigestSalt { get; init; }

    public uint MasterKeyDigestIterations { get; init; }

    public required string Uuid { get; init; }

    public required IReadOnlyList<LuksKeySlot> KeySlots { get; init; }

    public long PayloadOffsetBytes => (long)PayloadOffsetSectors * LuksLimits.SectorBytes;

    public static bool HasMagic(ReadOnlySpan<byte> head) => head.Length >= 6 && head[..6].SequenceEqual(Magic);

    /// <param name="areaBytes">How many bytes the header area holds (the qcow2 extension's length, or the file
    /// length for a raw LUKS container): key material must lie inside it.</param>
    public static LuksHeader Read(ReadOnlySpan<byte> data, long areaBytes, string? fileName)
    {
        if (data.Length < Length || !HasMagic(data))
        {
            throw new ImageFormatException("not a LUKS header (bad magic)", fileName);
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(data[VersionOffset..]);
        if (version != Version1)
        {
            throw new UnsupportedFeatureException($"LUKS version {version} is not supported (only LUKS1)", fileName);
        }

        var slots = new LuksKeySlot[SlotCount];
        for (int i = 0; i < SlotCount; i++)
        {
            ReadOnlySpan<byte> raw = data.Slice(KeySlotsOffset + (i * LuksKeySlot.Length), LuksKeySlot.Length);
            uint marker = BinaryPrimitives.ReadUInt32BigEndian(raw);
            if (marker is not (LuksKeySlot.ActiveMarker or LuksKeySlot.DisabledMarker))
            {
                throw new ImageFormatException($"LUKS key slot {i} has an invalid state 0x{marker:x8}", fileName);
            }

            slots[i] = new LuksKeySlot(
                marker == LuksKeySlot.ActiveMarker,
                BinaryPrimitives.ReadUInt32BigEndian(raw[LuksKeySlot.IterationsOffset..]),
                raw.Slice(LuksKeySlot.SaltOffset, SaltBytes).ToArray(),
                BinaryPrimitives.ReadUInt32BigEndian(raw[LuksKeySlot.KeyMaterialOffsetOffset..]),
                BinaryPrimitives.ReadUInt32BigEndian(raw[LuksKeySlot.StripesOffset..]));
        }

        var header = new LuksHeader
        {
            CipherName = ReadName(data.Slice(CipherNameOffset, NameBytes)),
            CipherMode = ReadName(data.Slice(CipherModeOffset, NameBytes)),
            HashSpec = ReadName(data.Slice(HashSpecOffset, NameBytes)),
            PayloadOffsetSectors = BinaryPrimitives.ReadUInt32BigEndian(data[PayloadOffsetOffset..]),
            KeyBytes = (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(data[KeyBytesOffset..])),
            MasterKeyDigest = data.Slice(MasterKeyDigestOffset, DigestBytes).ToArray(),
            MasterKeyDigestSalt = data.Slice(MasterKeyDigestSaltOffset, SaltBytes).ToArray(),
            MasterKeyDigestIterations = BinaryPrimitives.ReadUInt32BigEndian(data[MasterKeyDigestIterationsOffset..]),
            Uuid = ReadName(data.Slice(UuidOffset, UuidBytes)),
            KeySlots = slots,
        };
        header.Validate(areaBytes, fileName);
        return header;
    }

    private void Validate(long areaBytes, string? fileName)
    {
        if (KeyBytes is < 16 or > LuksLimits.MaxKeyBytes || KeyBytes % 8 != 0)
        {
            throw new ImageFormatException($"LUKS key size {KeyBytes} bytes is invalid", fileName);
        }

        if (MasterKeyDigestIterations is 0 or > LuksLimits.MaxIterations)
        {
            throw new ImageFormatException($"LUKS master key digest iterations {MasterKeyDigestIterations} are out of range (1..{LuksLimits.MaxIterations})", fileName);
        }

        long area = Math.Min(areaBytes, LuksLimits.MaxHeaderAreaBytes);
        for (int i = 0; i < SlotCount; i++)
        {
            LuksKeySlot slot = KeySlots[i];
            if (slot.KeyMaterialOffsetSectors == 0)
            {
                // The key material cannot overlap the header itself (the spec places it after the header).
                throw new ImageFormatException($"LUKS key slot {i} has its key material inside the header", fileName);
            }

            if (!slot.Active)
            {
                continue;
            }

            if (slot.Stripes is 0 or > LuksLimits.MaxStripes)
            {
                throw new ImageFormatException($"LUKS key slot {i} has {slot.Stripes} stripes (1..{LuksLimits.MaxStripes} accepted)", fileName);
            }

            if (slot.Iterations is 0 or > LuksLimits.MaxIterations)
            {
                throw new ImageFormatException($"LUKS key slot {i} has {slot.Iterations} iterations (1..{LuksLimits.MaxIterations} accepted)", fileName);
            }

            if (slot.KeyMaterialOffsetBytes + SplitKeyBytes(slot) > area)
            {
                throw new ImageFormatException($"LUKS key slot {i} key material lies outside the header area", fileName);
            }
        }
    }

    /// <summary>Bytes of the anti-forensic split key of a slot: key bytes × stripes.</summary>
    public long SplitKeyBytes(LuksKeySlot slot) => (long)KeyBytes * slot.Stripes;

    private static string ReadName(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }

    public void Write(Span<byte> data)
    {
        data[..Length].Clear();
        Magic.CopyTo(data);
        BinaryPrimitives.WriteUInt16BigEndian(data[VersionOffset..], Version1);
        WriteName(data.Slice(CipherNameOffset, NameBytes), CipherName);
        WriteName(data.Slice(CipherModeOffset, NameBytes), CipherMode);
        WriteName(data.Slice(HashSpecOffset, NameBytes), HashSpec);
        BinaryPrimitives.WriteUInt32BigEndian(data[PayloadOffsetOffset..], PayloadOffsetSectors);
        BinaryPrimitives.WriteUInt32BigEndian(data[KeyBytesOffset..], (uint)KeyBytes);
        MasterKeyDigest.CopyTo(data[MasterKeyDigestOffset..]);
        MasterKeyDigestSalt.CopyTo(data[MasterKeyDigestSaltOffset..]);
        BinaryPrimitives.WriteUInt32BigEndian(data[MasterKeyDigestIterationsOffset..], MasterKeyDigestIterations);
        WriteName(data.Slice(UuidOffset, UuidBytes), Uuid);
        for (int i = 0; i < SlotCount; i++)
        {
            LuksKeySlot slot = KeySlots[i];
            Span<byte> raw = data.Slice(KeySlotsOffset + (i * LuksKeySlot.Length), LuksKeySlot.Length);
            BinaryPrimitives.WriteUInt32BigEndian(raw, slot.Active ? LuksKeySlot.ActiveMarker : LuksKeySlot.DisabledMarker);
            BinaryPrimitives.WriteUInt32BigEndian(raw[LuksKeySlot.IterationsOffset..], slot.Iterations);
            slot.Salt.CopyTo(raw[LuksKeySlot.SaltOffset..]);
            BinaryPrimitives.WriteUInt32BigEndian(raw[LuksKeySlot.KeyMaterialOffsetOffset..], slot.KeyMaterialOffsetSectors);
            BinaryPrimitives.WriteUInt32BigEndian(raw[LuksKeySlot.StripesOffset..], slot.Stripes);
        }
    }

    private static void WriteName(Span<byte> field, string value)
    {
        int written = Encoding.ASCII.GetBytes(value, field[..(field.Length - 1)]);
        field[written..].Clear();
    }
}
