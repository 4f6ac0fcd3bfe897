namespace ImgTool.Formats.Vdi;

/// <summary>The header's image type (VirtualBox's VDIIMAGETYPE).</summary>
internal enum VdiImageType : uint
{
    /// <summary>Blocks are allocated as they are written (qemu's "dynamic", VirtualBox's "normal").</summary>
    Dynamic = 1,

    /// <summary>Every block is allocated at create time, in order (qemu's static=on, VirtualBox's "fixed").</summary>
    Static = 2,

    /// <summary>VirtualBox's old undo image: a differencing image for undo/commit; not supported.</summary>
    Undo = 3,

    /// <summary>A differencing image (a VirtualBox snapshot): unallocated blocks read from the parent.</summary>
    Differencing = 4,
}
