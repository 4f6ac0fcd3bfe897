using ImgTool.TestSupport;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>`create` prints qemu-img's "Formatting ..." line: every option of the format in QEMU's order, given
/// values (sizes as numbers) or the defaults qemu-img prints.</summary>
public sealed class CreateOutputInteropTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> Commands =>
    [
        "-f qcow2 new.qcow2 1G",
        "-f qcow2 -o compat=0.10 new.qcow2 100M",
        "-f qcow2 -o compat=1.1,extended_l2=on,preallocation=metadata,compression_type=zstd,lazy_refcounts=on,refcount_bits=64,cluster_size=128k new.qcow2 64M",
        "-f qcow2 -o data_file=new.data,data_file_raw=on new.qcow2 8M",
        "-f qcow2 -b base.qcow2 -F qcow2 new.qcow2",
        "-f qcow2 -o size=2M new.qcow2",
        "-f qcow2 --object secret,id=s,data=x -o encrypt.format=luks,encrypt.key-secret=s,encrypt.cipher-alg=aes-128,encrypt.iter-time=10 new.qcow2 8M",
        "-f raw new.raw 1G",
        "-f raw -o preallocation=falloc new.raw 1M",
        "-f vmdk new.vmdk 1G",
        "-f vmdk -o adapter_type=lsilogic,hwversion=4,toolsversion=1,subformat=twoGbMaxExtentSparse,zeroed_grain=on new.vmdk 64M",
        "-f vpc new.vhd 1G",
        "-f vpc -o subformat=fixed,force_size=on new.vhd 64M",
        "-f vhdx new.vhdx 1G",
        "-f vhdx -o log_size=1M,block_size=8M,block_state_zero=off,subformat=fixed new.vhdx 64M",
        "-f luks --object secret,id=s,data=x -o key-secret=s,cipher-alg=aes-256,iter-time=10 new.luks 1M",
    ];

    [Theory]
    [MemberData(nameof(Commands))]
    public async Task Create_prints_what_qemu_img_prints(string command)
    {
        Assert.Equal(0, (await QemuIn(_dir.Path, "qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "64M")).ExitCode);
        string[] args = ["create", .. command.Split(' ')];
        RunResult theirs = await QemuIn(_dir.Path, "qemu-img", args);
        Assert.True(theirs.ExitCode == 0, theirs.ToString());
        foreach (string file in Directory.GetFiles(_dir.Path, "new*"))
        {
            File.Delete(file);
        }

        // Ours runs in-process: it is given absolute names, which are made relative again in its output.
        string[] ourArgs = [.. args.Select(a => a.StartsWith("new", StringComparison.Ordinal) || a == "base.qcow2" ? _dir.File(a) : a.Replace("data_file=new", $"data_file={_dir.Path}/new", StringComparison.Ordinal))];
        RunResult ours = await Imgtool(ourArgs);
        Assert.True(ours.ExitCode == 0, ours.ToString());
        Assert.Equal(theirs.Out, ours.Out.Replace(_dir.Path + "/", string.Empty, StringComparison.Ordinal));
    }
}
