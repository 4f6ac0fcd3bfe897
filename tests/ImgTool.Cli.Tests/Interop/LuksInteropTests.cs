using ImgTool.TestSupport;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>The standalone luks format (a raw LUKS1 container) against the real qemu-img and qemu-io, both ways.</summary>
public sealed class LuksInteropTests : IDisposable
{
    private const string Secret = "secret,id=s0,data=pw";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Opts(string file) => $"driver=luks,file.filename={file},key-secret=s0";

    public static TheoryData<string> Ciphers =>
    [
        "",
        "cipher-mode=cbc,ivgen-alg=essiv,cipher-alg=aes-128",
    ];

    [Theory]
    [MemberData(nameof(Ciphers))]
    public async Task We_read_and_describe_what_qemu_wrote(string cipher)
    {
        string image = _dir.File("theirs.luks");
        string options = "key-secret=s0,iter-time=10" + (cipher.Length > 0 ? "," + cipher : string.Empty);
        RunResult create = await QemuImg("create", "-f", "luks", "--object", Secret, "-o", options, image, "4M");
        for (int retry = 0; retry < 3 && create.Err.Contains("Unable to get accurate CPU usage", StringComparison.Ordinal); retry++)
        {
            create = await QemuImg("create", "-f", "luks", "--object", Secret, "-o", options, image, "4M");
        }

        Assert.True(create.ExitCode == 0, create.ToString());
        RunResult io = await Qemu("qemu-io", "--object", Secret, "--image-opts", Opts(image), "-c", "write -P 0x5a 1000 70000", "-c", "write -z 0 4M", "-c", "write -P 0x17 2M 100k");
        Assert.True(io.ExitCode == 0, io.ToString());

        foreach (string[] output in new[] { Array.Empty<string>(), ["--output", "json"] })
        {
            Assert.Equal((await QemuImg(["info", .. output, image])).Out, (await Imgtool(["info", .. output, image])).Out.TrimEnd() + "\n");
        }

        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        Assert.Equal(0, (await QemuImg("convert", "--object", Secret, "--image-opts", Opts(image), "-O", "raw", theirs)).ExitCode);
        RunResult convert = await Imgtool("convert", "--object", Secret, "--image-opts", Opts(image), "-O", "raw", ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));
        Assert.Equal(
            (await QemuImg("map", "--object", Secret, "--image-opts", Opts(image), "--output", "json")).Out,
            (await Imgtool("map", "--object", Secret, "--image-opts", Opts(image), "--output", "json")).Out);

        RunResult wrong = await Imgtool("info", "--object", "secret,id=s0,data=x", "--image-opts", Opts(image));
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("Invalid password, cannot unlock any keyslot", wrong.Err, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public async Task Qemu_reads_what_we_convert(string cipher)
    {
        string model = _dir.File("model.raw");
        SparseFile(model, 4 << 20, (0, 5000), (3 << 20, 100_000));
        string image = _dir.File("mine.luks");
        string options = "key-secret=s0,iter-time=10" + (cipher.Length > 0 ? "," + cipher : string.Empty);
        RunResult convert = await Imgtool("convert", "--object", Secret, "-O", "luks", "-o", options, model, image);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        RunResult compare = await QemuImg("compare", "--object", Secret, "--image-opts", Opts(image), $"driver=raw,file.filename={model}");
        Assert.True(compare.ExitCode == 0, compare.ToString());
        Assert.Contains("file format: luks", (await QemuImg("info", image)).Out, StringComparison.Ordinal);
    }
}
