namespace ImgTool.Inspect.Files;

/// <summary>Resolves a path inside a guest file system, following symbolic links as the kernel would (absolute targets
/// from this file system's root) with its limit of 40 links, so a link loop ends with an error.</summary>
public static class GuestPath
{
    public const int MaxSymlinkFollows = 40;
    public const int MaxComponents = 4096;

    /// <param name="followFinal">Follow a symbolic link in the last component (cat does; ls -l shows the link itself).</param>
    public static async ValueTask<GuestEntry> ResolveAsync(IGuestFileSystem fs, string path, bool followFinal, CancellationToken cancellationToken)
    {
        int follows = 0;
        return await ResolveFromAsync(fs, [], path, followFinal, () => ++follows <= MaxSymlinkFollows, path, cancellationToken).ConfigureAwait(false);
    }

    private static async ValueTask<GuestEntry> ResolveFromAsync(IGuestFileSystem fs, List<GuestEntry> stack, string path, bool followFinal, Func<bool> mayFollow, string original, CancellationToken cancellationToken)
    {
        if (path.StartsWith('/'))
        {
            stack.Clear();
        }

        string[] parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length > MaxComponents)
        {
            throw new GuestPathException($"{original}: path has more than {MaxComponents} components");
        }

        for (int i = 0; i < parts.Length; i++)
        {
            string part = parts[i];
            bool last = i == parts.Length - 1;
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (stack.Count > 0)
                {
                    stack.RemoveAt(stack.Count - 1);
                }

                continue;
            }

            GuestEntry directory = stack.Count > 0 ? stack[^1] : fs.Root;
            if (directory.Kind != GuestFileKind.Directory)
            {
                throw new GuestPathException($"{original}: {directory.Name} is not a directory");
            }

            IReadOnlyList<GuestEntry> entries = await fs.ListAsync(directory, cancellationToken).ConfigureAwait(false);
            GuestEntry? found = Find(fs, entries, part) ?? throw new GuestPathException($"{original}: no such file or directory");
            if (found.Kind == GuestFileKind.Symlink && (!last || followFinal))
            {
                if (!mayFollow())
                {
                    throw new GuestPathException($"{original}: too many levels of symbolic links");
                }

                string target = await fs.ReadLinkAsync(found, cancellationToken).ConfigureAwait(false);
                GuestEntry resolved = await ResolveFromAsync(fs, stack, target, true, mayFollow, original, cancellationToken).ConfigureAwait(false);
                if (last)
                {
                    return resolved;
                }

                if (stack.Count == 0 || !ReferenceEquals(stack[^1], resolved))
                {
                    stack.Add(resolved);
                }

                continue;
            }

            if (last)
            {
                return found;
            }

            stack.Add(found);
        }

        return stack.Count > 0 ? stack[^1] : fs.Root;
    }

    /// <summary>FAT names compare without regard to case, as Windows and Linux's vfat do; ext names exactly.</summary>
    private static GuestEntry? Find(IGuestFileSystem fs, IReadOnlyList<GuestEntry> entries, string name)
    {
        StringComparison comparison = fs.Type == "vfat" ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return entries.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal))
            ?? entries.FirstOrDefault(e => string.Equals(e.Name, name, comparison));
    }
}
