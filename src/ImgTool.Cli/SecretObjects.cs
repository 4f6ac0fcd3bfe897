using System.Text;
using ImgTool.Block.Errors;
using ImgTool.Formats;

namespace ImgTool.Cli;

/// <summary>
/// qemu-img's <c>--object secret,id=ID,data=TEXT</c> or <c>secret,id=ID,file=PATH</c> (optionally
/// <c>format=base64</c>): the passwords that encrypt.key-secret refers to by id. Other object types are refused.
/// </summary>
internal static class SecretObjects
{
    /// <summary>A secret file larger than this is surely not a password.</summary>
    private const long MaxSecretFileBytes = 64 * 1024;

    public static Dictionary<string, byte[]> Parse(IEnumerable<string> objects)
    {
        var secrets = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (string text in objects)
        {
            int comma = text.IndexOf(',', StringComparison.Ordinal);
            string type = comma < 0 ? text : text[..comma];
            if (type.StartsWith("qom-type=", StringComparison.Ordinal))
            {
                type = type["qom-type=".Length..];
            }

            if (type != "secret")
            {
                throw new InvalidOptionException($"--object type '{type}' is not supported (only secret)");
            }

            string? id = null, data = null, file = null, format = null;
            foreach ((string key, string value) in comma < 0 ? [] : ImageOptsString.Split(text[(comma + 1)..]))
            {
                switch (key)
                {
                    case "id": id = value; break;
                    case "data": data = value; break;
                    case "file": file = value; break;
                    case "format": format = value; break;
                    default: throw new InvalidOptionException($"Property 'secret.{key}' not found");
                }
            }

            if (id is null)
            {
                throw new InvalidOptionException("Parameter 'id' is missing");
            }

            if ((data is null) == (file is null))
            {
                throw new InvalidOptionException($"secret '{id}': give exactly one of data= and file=");
            }

            byte[] raw = data is not null ? Encoding.UTF8.GetBytes(data) : ReadFile(file!);
            secrets[id] = format switch
            {
                null or "raw" => raw,
                "base64" => FromBase64(raw, id),
                _ => throw new InvalidOptionException($"secret '{id}': invalid format '{format}' (raw or base64)"),
            };
        }

        return secrets;
    }

    private static byte[] ReadFile(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > MaxSecretFileBytes)
            {
                throw new InvalidOptionException($"secret file is larger than {MaxSecretFileBytes} bytes", path);
            }

            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostIOException($"cannot read secret file: {e.Message}", path, e);
        }
    }

    private static byte[] FromBase64(byte[] text, string id)
    {
        try
        {
            return Convert.FromBase64String(Encoding.ASCII.GetString(text));
        }
        catch (FormatException)
        {
            throw new InvalidOptionException($"secret '{id}': data is not valid base64");
        }
    }
}
