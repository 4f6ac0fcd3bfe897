namespace ImgTool.Block.Errors;

/// <summary>
/// A failure the user can act on. The CLI prints it as one line, "imgtool: FILE: message",
/// so the message is a sentence fragment without the file name and without a trailing period.
/// </summary>
public class ImgToolException : Exception
{
    public ImgToolException(string message, string? fileName = null, Exception? inner = null)
        : base(message, inner)
    {
        FileName = fileName;
    }

    /// <summary>The file the failure concerns, as the user named it, or null.</summary>
    public string? FileName { get; }
}

/// <summary>The file is not a valid image of the format (bad magic, bad header field).</summary>
public sealed class ImageFormatException(string message, string? fileName = null, Exception? inner = null)
    : ImgToolException(message, fileName, inner);

/// <summary>The image's metadata is inconsistent at a known place.</summary>
public sealed class ImageCorruptException(string message, string structure, long offsetBytes, string? fileName = null)
    : ImgToolException(message, fileName)
{
    public string Structure { get; } = structure;

    public long OffsetBytes { get; } = offsetBytes;
}

/// <summary>The image uses something this build does not implement, or the request asks for an impossible combination.</summary>
public sealed class UnsupportedFeatureException(string message, string? fileName = null)
    : ImgToolException(message, fileName);

/// <summary>A backing file is missing, loops, or is too deep.</summary>
public sealed class BackingFileException(string message, string? fileName = null, Exception? inner = null)
    : ImgToolException(message, fileName, inner);

/// <summary>Another process holds a lock that conflicts with this open.</summary>
public sealed class ImageLockedException(string message, string? fileName = null)
    : ImgToolException(message, fileName);

/// <summary>A command-line value or image option is invalid (bad size, unknown option, bad value).</summary>
public sealed class InvalidOptionException(string message, string? fileName = null)
    : ImgToolException(message, fileName);

/// <summary>The host refused an I/O operation (missing file, permission, no space).</summary>
public sealed class HostIOException(string message, string? fileName = null, Exception? inner = null)
    : ImgToolException(message, fileName, inner)
{
    /// <summary>The system's own words for the refusal (strerror: "No such file or directory"), when the message
    /// wraps them, so a caller that says what the file was (a backing file) can quote just the reason.</summary>
    public string? Reason { get; init; }
}

/// <summary>An encrypted image cannot be opened: no key was given, or the key unlocks nothing.</summary>
public sealed class EncryptionKeyException(string message, string? fileName = null)
    : ImgToolException(message, fileName);
