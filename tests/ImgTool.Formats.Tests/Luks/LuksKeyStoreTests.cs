using System.Buffers.Binary;
using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Formats.Luks;

namespace ImgTool.Formats.Tests.Luks;

/// <summary>A LUKS header area in memory: create one for a password, unlock it, and refuse hostile headers.</summary>
public sealed class LuksKeyStoreTests
{
    private static readonly byte[] Password = Encoding.UTF8.GetBytes("correct horse");

    private static async Task<(byte[] Area, LuksHeader Header, byte[] MasterKey)> CreateAsync(LuksCipherSpec spec)
    {
        byte[] area = new byte[LuksKeyStore.AreaBytes(spec.KeyBytes)];
        (LuksHeader header, byte[] key) = await LuksKeyStore.CreateAsync(spec, LuksHash.Sha256, Password, 1,
            (offset, data, _) => { data.Span.CopyTo(area.AsSpan((int)offset)); return ValueTask.CompletedTask; }, null, default);
        return (area, header, key);
    }

    private static LuksAreaReader Reader(byte[] area) => (offset, buffer, _) =>
    {
        area.AsMemory((int)offset, buffer.Length).CopyTo(buffer);
        return ValueTask.CompletedTask;
    };

    public static TheoryData<string, int, string, string?> Specs => new()
    {
        { "xts", 64, "plain64", null },
        { "xts", 32, "plain64", null },
        { "cbc", 32, "essiv", "sha256" },
        { "cbc", 16, "plain", null },
        { "cbc", 24, "plain64", null },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public async Task Created_header_unlocks_with_its_password_only(string mode, int keyBytes, string ivgen, string? ivHash)
    {
        var spec = new LuksCipherSpec("aes", keyBytes, mode, ivgen, ivHash);
        (byte[] area, LuksHeader created, byte[] key) = await CreateAsync(spec);
        LuksHeader header = LuksHeader.Read(area, area.Length, null);
        Assert.Equal(created.Uuid, header.Uuid);
        Assert.Equal(spec.HeaderMode, header.CipherMode);
        Assert.Equal(area.Length, header.PayloadOffsetBytes);

        byte[] unlocked = await LuksKeyStore.UnlockAsync(header, Password, Reader(area), null, default);
        Assert.Equal(key, unlocked);

        var wrong = await Assert.ThrowsAsync<EncryptionKeyException>(
            async () => await LuksKeyStore.UnlockAsync(header, Encoding.UTF8.GetBytes("wrong"), Reader(area), null, default));
        Assert.Equal("Invalid password, cannot unlock any keyslot", wrong.Message);
    }

    [Fact]
    public async Task Header_is_592_bytes_and_round_trips()
    {
        (byte[] area, LuksHeader header, _) = await CreateAsync(new LuksCipherSpec("aes", 64, "xts", "plain64", null));
        Assert.Equal(592, LuksHeader.Length);
        byte[] again = new byte[LuksHeader.Length];
        LuksHeader.Read(area, area.Length, null).Write(again);
        Assert.Equal(area.AsSpan(0, LuksHeader.Length).ToArray(), again);
        Assert.Equal(2068480, header.PayloadOffsetBytes);
        Assert.Equal(4096, header.KeySlots[0].KeyMaterialOffsetBytes);
        Assert.Equal(262144, header.KeySlots[1].KeyMaterialOffsetBytes);
    }

    public static TheoryData<string, int, uint> Hostile => new()
    {
        { "bad magic", 0, 0x12345678 },
        { "huge slot iterations", LuksHeader.KeySlotsOffset + LuksKeySlot.IterationsOffset, 0xffffffff },
        { "zero digest iterations", LuksHeader.MasterKeyDigestIterationsOffset, 0 },
        { "huge stripes", LuksHeader.KeySlotsOffset + LuksKeySlot.StripesOffset, 0x7fffffff },
        { "key material outside the area", LuksHeader.KeySlotsOffset + LuksKeySlot.KeyMaterialOffsetOffset, 0x00ffffff },
        { "key bytes", LuksHeader.KeyBytesOffset, 4096 },
        { "slot state", LuksHeader.KeySlotsOffset + (3 * LuksKeySlot.Length), 0x11111111 },
        { "version", LuksHeader.VersionOffset, 0x00020000 },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task Hostile_fields_are_refused(string what, int offset, uint value)
    {
        (byte[] area, _, _) = await CreateAsync(new LuksCipherSpec("aes", 64, "xts", "plain64", null));
        if (what == "version")
        {
            BinaryPrimitives.WriteUInt16BigEndian(area.AsSpan(offset), 2);
        }
        else
        {
            BinaryPrimitives.WriteUInt32BigEndian(area.AsSpan(offset), value);
        }

        Assert.ThrowsAny<ImgToolException>(() => LuksHeader.Read(area, area.Length, null));
    }
}
