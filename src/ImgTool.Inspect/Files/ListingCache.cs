namespace ImgTool.Inspect.Files;

/// <summary>Keeps the directory listings a series of path lookups reads (inspect looks for some twenty boot loader and
/// release files, most of them in the same few directories), so each directory is read once.</summary>
internal sealed class ListingCache(IGuestFileSystem inner) : IGuestFileSystem
{
    private const int MaxDirectories = 64;
    private readonly Dictionary<long, IReadOnlyList<GuestEntry>> listings = [];

    public string Type => inner.Type;

    public GuestEntry Root => inner.Root;

    public async ValueTask<IReadOnlyList<GuestEntry>> ListAsync(GuestEntry directory, CancellationToken cancellationToken)
    {
        if (!listings.TryGetValue(directory.Id, out IReadOnlyList<GuestEntry>? entries))
        {
            entries = await inner.ListAsync(directory, cancellationToken).ConfigureAwait(false);
            if (listings.Count < MaxDirectories)
            {
                listings[directory.Id] = entries;
            }
        }

        return entries;
    }

    public ValueTask<int> ReadAsync(GuestEntry file, long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken) =>
        inner.ReadAsync(file, offsetBytes, buffer, cancellationToken);

    public ValueTask<string> ReadLinkAsync(GuestEntry symlink, CancellationToken cancellationToken) =>
        inner.ReadLinkAsync(symlink, cancellationToken);
}
