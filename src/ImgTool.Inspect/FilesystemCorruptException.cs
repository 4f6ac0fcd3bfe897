using ImgTool.Block.Errors;

namespace ImgTool.Inspect;

/// <summary>A partition table or file system inside the image is damaged where we had to read it:
/// a pointer past the end, a loop, a count beyond its limit. One line for the CLI, never a crash.</summary>
public sealed class FilesystemCorruptException(string message, string? fileName = null)
    : ImgToolException(message, fileName);

/// <summary>A path inside an image's file system that does not exist, or is not what the command needs.</summary>
public sealed class GuestPathException(string message, string? fileName = null)
    : ImgToolException(message, fileName);
