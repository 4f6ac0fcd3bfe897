namespace ImgTool.Inspect.OsRelease;

/// <summary>What a file system says about the operating system installed on it.</summary>
/// <param name="Source">The file it came from (/etc/os-release, /etc/debian_version, /etc/redhat-release).</param>
public sealed record OsHint(int? Partition, string Source, string? Id, string? Name, string? VersionId, string? PrettyName);
