using ImgTool.Block.Info;

namespace ImgTool.Formats.Luks;

/// <summary>
/// The "encrypt" block qemu-img info prints for a LUKS header (QAPI QCryptoBlockInfoLUKS). qemu-img
/// passes it through a dictionary, so its members come out in that dictionary's order, not the schema's;
/// we print them in the order qemu-img 7.2 does.
/// </summary>
internal static class LuksInfo
{
    /// <param name="withFormat">qcow2's encrypt block names the format ("luks"); the luks driver's own block does not.</param>
    public static InfoObject Build(LuksHeader header, bool withFormat = true)
    {
        LuksCipherSpec spec = LuksCipherSpec.FromHeader(header);
        var members = new List<KeyValuePair<string, InfoValue>>
        {
            new("ivgen-alg", InfoValue.Of(spec.IvGenerator)),
            new("hash-alg", InfoValue.Of(header.HashSpec)),
            new("cipher-alg", InfoValue.Of(spec.CipherAlgorithm)),
            new("uuid", InfoValue.Of(header.Uuid)),
        };
        if (spec.IvHash is { } ivHash)
        {
            members.Add(new("ivgen-hash-alg", InfoValue.Of(ivHash)));
        }

        if (withFormat)
        {
            members.Add(new("format", InfoValue.Of("luks")));
        }

        members.Add(new("cipher-mode", InfoValue.Of(spec.Mode)));
        members.Add(new("slots", new InfoArray([.. header.KeySlots.Select(Slot)])));
        members.Add(new("payload-offset", InfoValue.Of(header.PayloadOffsetBytes)));
        members.Add(new("master-key-iters", InfoValue.Of((long)header.MasterKeyDigestIterations)));
        return new InfoObject(members);
    }

    private static InfoValue Slot(LuksKeySlot slot)
    {
        var members = new List<KeyValuePair<string, InfoValue>> { new("active", InfoValue.Of(slot.Active)) };
        if (slot.Active)
        {
            members.Add(new("iters", InfoValue.Of((long)slot.Iterations)));
        }

        members.Add(new("key-offset", InfoValue.Of(slot.KeyMaterialOffsetBytes)));
        if (slot.Active)
        {
            members.Add(new("stripes", InfoValue.Of((long)slot.Stripes)));
        }

        return new InfoObject(members);
    }
}
