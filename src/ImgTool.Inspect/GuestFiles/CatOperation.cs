using System.Buffers;
using ImgTool.Block.Devices;
using ImgTool.Block.Errors;
using ImgTool.Formats;
using ImgTool.Inspect.Files;
using ImgTool.Inspect.Inspection;

namespace ImgTool.Inspect.GuestFiles;

/// <summary>imgtool cat: the content of a file inside an image, written to a stream in pieces (bounded memory).</summary>
public sealed class CatOperation(ImageOpener opener)
{
    public const int ChunkBytes = 1 << 20;

    /// <returns>The bytes written.</returns>
    public async ValueTask<long> RunAsync(GuestFileOptions options, Stream output, CancellationToken cancellationToken = default)
    {
        GuestTarget target = GuestTarget.Parse(options.Target);
        await using IImage image = await InspectedImage.OpenAsync(opener, target.ImageFileName, options.Format, options.ForceShare, cancellationToken).ConfigureAwait(false);
        IGuestFileSystem fs = await GuestVolumes.OpenAsync(image, target, cancellationToken).ConfigureAwait(false);
        try
        {
            GuestEntry entry = await GuestPath.ResolveAsync(fs, target.Path, followFinal: true, cancellationToken).ConfigureAwait(false);
            if (entry.Kind != GuestFileKind.File)
            {
                throw new GuestPathException($"{target.Path}: not a regular file");
            }

            return await CopyAsync(fs, entry, output, cancellationToken).ConfigureAwait(false);
        }
        catch (ImgToolException e) when (e.FileName is null)
        {
            throw ListOperation.Rename(e, target);
        }
    }

    internal static async ValueTask<long> CopyAsync(IGuestFileSystem fs, GuestEntry file, Stream output, CancellationToken cancellationToken)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            long offset = 0;
            while (offset < file.SizeBytes)
            {
                int n = await fs.ReadAsync(file, offset, buffer.AsMemory(0, (int)Math.Min(ChunkBytes, file.SizeBytes - offset)), cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                await output.WriteAsync(buffer.AsMemory(0, n), cancellationToken).ConfigureAwait(false);
                offset += n;
            }

            return offset;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
