namespace ImgTool.Bench;

/// <summary>
/// The cases of imgtool inspect / ls / cat (issue 16). qemu-img cannot look inside an image, so the peers are the
/// Debian tools that read the same structures: sfdisk for the partition table (imgtool also probes every file
/// system on it), and debugfs for listing a directory and reading a file of an ext4 file system.
/// The inputs are made once in the work folder with sgdisk, mke2fs -d and e2fsck -D (untimed).
/// </summary>
internal static class InspectCases
{
    private const string Disk = "{WORK}/inspect-disk.raw";
    private const string Ext4 = "{WORK}/inspect-ext4.raw";
    private const string Marker = "inspect-inputs.v1";

    public static BenchCase Inspect() => new()
    {
        Id = "inspect",
        Name = "inspect GPT disk (vs sfdisk --json)",
        PeerName = "sfdisk",
        PeerProgram = _ => "sfdisk",
        UsesTestImages = false,
        ImgtoolArgs = ["inspect", "-f", "raw", "--output", "json", Disk],
        QemuImgArgs = ["--json", Disk],
        Prepare = Prepare,
    };

    public static BenchCase List() => new()
    {
        Id = "ls-ext4",
        Name = "ls -l of a 5000-entry htree dir (vs debugfs)",
        PeerName = "debugfs",
        PeerProgram = _ => "debugfs",
        UsesTestImages = false,
        DiscardStdout = true,
        ImgtoolArgs = ["ls", "-l", "-f", "raw", Ext4 + ":/many"],
        QemuImgArgs = ["-R", "ls -l /many", Ext4],
        Prepare = Prepare,
    };

    public static BenchCase Cat() => new()
    {
        Id = "cat-ext4",
        Name = "cat a 256 MiB ext4 file (vs debugfs)",
        PeerName = "debugfs",
        PeerProgram = _ => "debugfs",
        UsesTestImages = false,
        DiscardStdout = true,
        ImgtoolArgs = ["cat", "-f", "raw", Ext4 + ":/big.bin"],
        QemuImgArgs = ["-R", "cat /big.bin", Ext4],
        Prepare = Prepare,
    };

    private static void Prepare(BenchContext context)
    {
        string work = context.Paths.WorkDir;
        if (File.Exists(Path.Combine(work, Marker)))
        {
            return;
        }

        string tree = Path.Combine(work, "inspect-tree");
        string script = $"""
            set -e
            rm -rf '{tree}' && mkdir -p '{tree}/many'
            head -c 268435456 /dev/urandom > '{tree}/big.bin'
            for i in $(seq 1 5000); do echo $i > '{tree}/many/entry-with-a-longer-name-'$i; done
            rm -f '{work}/inspect-ext4.raw' && truncate -s 512M '{work}/inspect-ext4.raw'
            mke2fs -q -t ext4 -d '{tree}' '{work}/inspect-ext4.raw'
            e2fsck -fyD '{work}/inspect-ext4.raw' >/dev/null 2>&1 || true
            rm -f '{work}/inspect-disk.raw' && truncate -s 1G '{work}/inspect-disk.raw'
            sgdisk -n1:2048:+100M -t1:ef00 -n2:0:+600M -n3:0:+64M -t3:8200 -n4:0:0 '{work}/inspect-disk.raw' >/dev/null
            dd if='{work}/inspect-ext4.raw' of='{work}/inspect-disk.raw' bs=1M seek=101 conv=notrunc,sparse status=none
            rm -rf '{tree}'
            touch '{work}/{Marker}'
            """;
        Runner.RunChecked(context.BashPath, "-c", script);
    }
}
