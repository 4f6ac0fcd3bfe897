using ImgTool.Block.Errors;

namespace ImgTool.Formats;

/// <summary>
/// A filename given with --image-opts, as qemu-img takes it: "driver=qcow2,file.filename=X,encrypt.key-secret=ID"
/// (comma-separated key=value pairs; a doubled comma is a literal comma, as in QEMU's option strings).
/// We accept the keys that matter for opening an image; any other key is an error rather than ignored.
/// </summary>
/// <param name="BackingFileName">"backing.file.filename": the backing file to use, for formats that do not store its name (VDI).</param>
public sealed record ImageOptsString(string FileName, string? Driver, string? KeySecretId, string? BackingFileName = null)
{
    /// <summary>
    /// How qemu-img names the image in `info`: the plain file name when the options add nothing else, else
    /// "json:{...}" with the options as QEMU's dictionary orders them (its order for the qcow2 and luks shapes).
    /// </summary>
    public string QemuDisplayName
    {
        get
        {
            if (KeySecretId is null)
            {
                return FileName;
            }

            string file = $"\"file\": {{\"driver\": \"file\", \"filename\": {Quote(FileName)}}}";
            return Driver == "luks"
                ? $"json:{{\"driver\": \"luks\", {file}, \"key-secret\": {Quote(KeySecretId)}}}"
                : $"json:{{\"encrypt.key-secret\": {Quote(KeySecretId)}, \"driver\": {Quote(Driver ?? "qcow2")}, {file}}}";
        }
    }

    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>Whether a filename argument is an option string rather than a plain path.</summary>
    public static bool Looks(string text) => text.Contains('=', StringComparison.Ordinal);

    public static ImageOptsString Parse(string text)
    {
        string? fileName = null;
        string? driver = null;
        string? secret = null;
        string? backing = null;
        foreach ((string key, string value) in Split(text))
        {
            switch (key)
            {
                case "file.filename" or "filename":
                    fileName = value;
                    break;
                case "driver":
                    driver = value;
                    break;
                case "encrypt.key-secret" or "key-secret":
                    secret = value;
                    break;
                case "backing.file.filename":
                    backing = value;
                    break;
                case "file.driver" or "backing.file.driver" when value == "file":
                    break;
                default:
                    throw new InvalidOptionException($"image option '{key}' is not supported (driver, file.filename, encrypt.key-secret, backing.file.filename are)", text);
            }
        }

        return new ImageOptsString(
            fileName ?? throw new InvalidOptionException("image options name no file (file.filename=...)", text),
            driver,
            secret,
            backing);
    }

    /// <summary>Splits "a=1,b=2" into pairs; ",," stands for a comma inside a value.</summary>
    public static IEnumerable<(string Key, string Value)> Split(string text)
    {
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == ',')
            {
                if (i + 1 < text.Length && text[i + 1] == ',')
                {
                    current.Append(',');
                    i++;
                    continue;
                }

                parts.Add(current.ToString());
                current.Clear();
                continue;
            }

            current.Append(text[i]);
        }

        parts.Add(current.ToString());
        foreach (string part in parts.Where(p => p.Length > 0))
        {
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new InvalidOptionException($"invalid option '{part}': expected key=value", text);
            }

            yield return (part[..eq], part[(eq + 1)..]);
        }
    }
}
