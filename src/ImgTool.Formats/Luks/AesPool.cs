using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace ImgTool.Formats.Luks;

/// <summary>Keyed AES instances for concurrent callers: .NET does not promise that one instance may be used
/// from several threads, and setting up a key per request would cost more than a small pool.</summary>
internal sealed class AesPool(byte[] key) : IDisposable
{
    private readonly ConcurrentBag<Aes> _idle = [];
    private readonly byte[] _key = key;

    public Aes Rent()
    {
        if (_idle.TryTake(out Aes? aes))
        {
            return aes;
        }

        aes = Aes.Create();
        aes.Key = _key;
        return aes;
    }

    public void Return(Aes aes) => _idle.Add(aes);

    public void Dispose()
    {
        while (_idle.TryTake(out Aes? aes))
        {
            aes.Dispose();
        }

        CryptographicOperations.ZeroMemory(_key);
    }
}
