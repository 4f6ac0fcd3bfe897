using FsCheck.Xunit;
using ImgTool.Block.Devices;
using static ImgTool.Formats.Tests.Vmdk.VmdkTestImages;

namespace ImgTool.Formats.Tests.Vmdk;

/// <summary>Random writes and zero writes against a byte-array model, then reopen and compare.</summary>
public sealed class VmdkPropertyTests : IDisposable
{
    private const int Size = (2 * MiB) + (3 * 512); // a partial last grain
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Property(MaxTest = 20)]
    public bool Sparse_images_match_a_model_after_reopen(int[] operations, bool zeroedGrain, bool withParent)
    {
        string name = Guid.NewGuid().ToString("N");
        string path = _dir.File($"{name}.vmdk");
        byte[] model = new byte[Size];
        if (withParent)
        {
            string parent = _dir.File($"{name}-base.vmdk");
            CreateAsync(parent, Size).GetAwaiter().GetResult();
            model = Random(Size, operations.Length);
            IImage parentImage = OpenAsync(parent, readOnly: false).AsTask().GetAwaiter().GetResult();
            try
            {
                parentImage.WriteAsync(0, model).AsTask().GetAwaiter().GetResult();
            }
            finally
            {
                parentImage.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }

        CreateAsync(path, Size, zeroedGrain ? "zeroed_grain=on" : string.Empty, withParent ? $"{name}-base.vmdk" : null).GetAwaiter().GetResult();
        IImage writer = OpenAsync(path, readOnly: false).AsTask().GetAwaiter().GetResult();
        try
        {
            foreach (int op in operations)
            {
                uint bits = (uint)op;
                long offset = bits % Size;
                int length = (int)Math.Min(Size - offset, 1 + ((bits >> 8) % (200 * 1024)));
                if ((bits & 3) == 0)
                {
                    writer.WriteZeroesAsync(offset, length, BlockZeroFlags.MayUnmap).AsTask().GetAwaiter().GetResult();
                    model.AsSpan((int)offset, length).Clear();
                }
                else
                {
                    byte[] data = Random(length, op);
                    writer.WriteAsync(offset, data).AsTask().GetAwaiter().GetResult();
                    data.CopyTo(model, offset);
                }
            }
        }
        finally
        {
            writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        IImage reader = OpenAsync(path).AsTask().GetAwaiter().GetResult();
        try
        {
            return ReadAllAsync(reader).GetAwaiter().GetResult().AsSpan().SequenceEqual(model)
                && ((ICheckable)reader).CheckAsync(CheckRepair.None).AsTask().GetAwaiter().GetResult().Corruptions == 0;
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    [Property(MaxTest = 15)]
    public bool StreamOptimized_in_order_writes_match_a_model(int[] cuts)
    {
        string path = _dir.File($"{Guid.NewGuid():N}.vmdk");
        CreateAsync(path, Size, "subformat=streamOptimized").GetAwaiter().GetResult();
        byte[] model = new byte[Size];
        IImage writer = OpenAsync(path, readOnly: false).AsTask().GetAwaiter().GetResult();
        try
        {
            // Increasing, non-overlapping pieces of random length with gaps: what convert sends.
            long offset = 0;
            foreach (int cut in cuts)
            {
                uint bits = (uint)cut;
                offset += (bits & 1) == 0 ? 0 : Grain * (1 + ((bits >> 1) % 3));
                offset = (offset + Grain - 1) / Grain * Grain;
                int length = (int)Math.Min(Size - offset, 1 + ((bits >> 4) % (300 * 1024)));
                if (length <= 0)
                {
                    break;
                }

                byte[] data = Random(length, cut);
                writer.WriteAsync(offset, data).AsTask().GetAwaiter().GetResult();
                data.CopyTo(model, offset);
                offset += length;
            }
        }
        finally
        {
            writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        IImage reader = OpenAsync(path).AsTask().GetAwaiter().GetResult();
        try
        {
            return ReadAllAsync(reader).GetAwaiter().GetResult().AsSpan().SequenceEqual(model);
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
