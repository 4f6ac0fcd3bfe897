namespace ImgTool.Formats.Luks;

/// <summary>
/// Encrypts and decrypts whole 512-byte sectors in place, each with an IV derived from its sector number
/// (dm-crypt's and QEMU's sector cipher). A request starts on a sector; its length is a multiple of the
/// cipher block (16 bytes), so the last sector may be short (split key material of some key sizes).
/// Safe to call from several threads at once.
/// </summary>
internal interface ISectorCipher : IDisposable
{
    void Encrypt(Span<byte> data, long firstSector);

    void Decrypt(Span<byte> data, long firstSector);
}
