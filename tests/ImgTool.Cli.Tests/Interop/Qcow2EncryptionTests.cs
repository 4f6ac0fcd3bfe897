using ImgTool.Block.Devices;
using ImgTool.Formats;
using ImgTool.TestSupport;
using static ImgTool.Cli.Tests.Tools;

namespace ImgTool.Cli.Tests.Interop;

/// <summary>
/// LUKS-encrypted qcow2 (crypt_method 2) against the real qemu-img and qemu-io, both ways: info without a key,
/// reading what qemu wrote, and images we create, convert and write that qemu checks and compares clean.
/// </summary>
public sealed class Qcow2EncryptionTests : IDisposable
{
    private const long MiB = 1 << 20;
    private const string Secret = "secret,id=s0,data=pw";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Cipher choices qemu-img takes (encrypt.* create options), fast PBKDF2 for tests.</summary>
    public static TheoryData<string> Ciphers =>
    [
        "",
        "encrypt.cipher-alg=aes-128",
        "encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256,encrypt.hash-alg=sha1",
        "encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain64,encrypt.hash-alg=sha512",
        "encrypt.cipher-alg=aes-192",
        "encrypt.cipher-mode=xts,encrypt.ivgen-alg=plain",
    ];

    private static string CreateOptions(string cipher) =>
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10" + (cipher.Length > 0 ? "," + cipher : string.Empty);

    private static string Opts(string file, string format = "qcow2") => $"driver={format},file.filename={file},encrypt.key-secret=s0";

    private async Task<string> QemuCreateAsync(string name, string cipher, string extra = "")
    {
        string path = _dir.File(name);
        RunResult created = await QemuImg("create", "-f", "qcow2", "--object", Secret, "-o", CreateOptions(cipher) + extra, path, "16M");
        for (int retry = 0; retry < 3 && created.Err.Contains("Unable to get accurate CPU usage", StringComparison.Ordinal); retry++)
        {
            // qemu-img's PBKDF2 benchmark gives up when a loaded machine makes its short timing meaningless.
            created = await QemuImg("create", "-f", "qcow2", "--object", Secret, "-o", CreateOptions(cipher) + extra, path, "16M");
        }

        Assert.True(created.ExitCode == 0, created.ToString());
        return path;
    }

    private static async Task QemuIoAsync(string image, params string[] commands)
    {
        List<string> args = ["--object", Secret, "--image-opts", Opts(image)];
        foreach (string command in commands)
        {
            args.AddRange(["-c", command]);
        }

        RunResult io = await Qemu("qemu-io", [.. args]);
        Assert.True(io.ExitCode == 0 && !io.Out.Contains("error", StringComparison.OrdinalIgnoreCase), io.ToString());
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public async Task Info_without_a_key_prints_what_qemu_prints(string cipher)
    {
        string image = await QemuCreateAsync("e.qcow2", cipher);
        foreach (string[] output in new[] { Array.Empty<string>(), ["--output", "json"] })
        {
            RunResult theirs = await QemuImg(["info", .. output, image]);
            RunResult ours = await Imgtool(["info", .. output, image]);
            Assert.True(ours.ExitCode == 0, ours.ToString());
            Assert.Equal(theirs.Out.TrimEnd(), ours.Out.TrimEnd());
        }

        Assert.Contains("encrypted: yes", (await Imgtool("info", image)).Out, StringComparison.Ordinal);

        // With the key through --image-opts, qemu-img names the image "json:{...}"; so do we.
        foreach (string[] output in new[] { Array.Empty<string>(), ["--output", "json"] })
        {
            string[] args = ["info", .. output, "--object", Secret, "--image-opts", Opts(image)];
            RunResult theirs = await QemuImg(args);
            RunResult ours = await Imgtool(args);
            Assert.True(ours.ExitCode == 0, ours.ToString());
            Assert.Equal(theirs.Out.TrimEnd(), ours.Out.TrimEnd());
        }
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public async Task We_read_what_qemu_wrote(string cipher)
    {
        string image = await QemuCreateAsync("theirs.qcow2", cipher);
        await QemuIoAsync(image, "write -P 0x11 0 1M", "write -P 0x22 3000 5000", "write -P 0x33 8M 100k", "write -z 9M 64k", "write -P 0x44 16773120 4096");
        string theirs = _dir.File("theirs.raw");
        string ours = _dir.File("ours.raw");
        RunResult qemuConvert = await QemuImg("convert", "--object", Secret, "--image-opts", Opts(image), "-O", "raw", theirs);
        Assert.True(qemuConvert.ExitCode == 0, qemuConvert.ToString());
        RunResult convert = await Imgtool("convert", "--object", Secret, "--image-opts", Opts(image), "-O", "raw", ours);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        Assert.Equal(await File.ReadAllBytesAsync(theirs), await File.ReadAllBytesAsync(ours));

        // check, map and compare open it with the key too, and agree with qemu-img.
        RunResult check = await Imgtool("check", "--object", Secret, "--image-opts", Opts(image));
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Equal(
            (await QemuImg("map", "--object", Secret, "--image-opts", Opts(image), "--output", "json")).Out,
            (await Imgtool("map", "--object", Secret, "--image-opts", Opts(image), "--output", "json")).Out);
        RunResult compare = await Imgtool("compare", "--object", Secret, "--image-opts", Opts(image), $"driver=raw,file.filename={theirs}");
        Assert.True(compare.ExitCode == 0, compare.ToString());
    }

    [Theory]
    [MemberData(nameof(Ciphers))]
    public async Task Qemu_reads_what_we_create_convert_and_write(string cipher)
    {
        // convert -O qcow2 with encryption, from a raw model.
        string model = _dir.File("model.raw");
        byte[] bytes = SparseFile(model, 16 * MiB, (0, 300_000), (5 * MiB, 70_000), (16 * MiB - 4096, 4096));
        string converted = _dir.File("conv.qcow2");
        RunResult convert = await Imgtool("convert", "--object", Secret, "-O", "qcow2", "-o", CreateOptions(cipher), model, converted);
        Assert.True(convert.ExitCode == 0, convert.ToString());
        await AssertQemuAgreesAsync(converted, model);

        // create, then unaligned writes and zeroes through the library (in-place sector read-modify-write included).
        string created = _dir.File("mine.qcow2");
        RunResult create = await Imgtool("create", "-f", "qcow2", "--object", Secret, "-o", CreateOptions(cipher), created, "16M");
        Assert.True(create.ExitCode == 0, create.ToString());
        Array.Clear(bytes);
        var random = new Random(cipher.Length);
        var opener = new ImageOpener(FormatRegistry.Default);
        await using (IImage device = await opener.OpenAsync(created, new ImageOpenRequest("qcow2", ReadOnly: false, EncryptionPassword: "pw"u8.ToArray())))
        {
            for (int step = 0; step < 40; step++)
            {
                long offset = random.NextInt64(bytes.Length - 1);
                int length = (int)Math.Min(bytes.Length - offset, random.Next(2) == 0 ? random.Next(1, 3000) : random.Next(1, 400_000));
                if (step % 5 == 4)
                {
                    await device.WriteZeroesAsync(offset, length, BlockZeroFlags.None);
                    Array.Clear(bytes, (int)offset, length);
                    continue;
                }

                byte[] data = new byte[length];
                random.NextBytes(data);
                await device.WriteAsync(offset, data);
                data.CopyTo(bytes, offset);
            }

            await device.FlushAsync();
        }

        await File.WriteAllBytesAsync(model, bytes);
        await AssertQemuAgreesAsync(created, model);
    }

    private static async Task AssertQemuAgreesAsync(string image, string model)
    {
        RunResult check = await QemuImg("check", "--object", Secret, "--image-opts", Opts(image));
        Assert.True(check.ExitCode == 0, check.ToString());
        RunResult compare = await QemuImg("compare", "--object", Secret, "--image-opts", Opts(image), $"driver=raw,file.filename={model}");
        Assert.True(compare.ExitCode == 0, compare.ToString());
        RunResult info = await QemuImg("info", image);
        Assert.Contains("encrypted: yes", info.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_or_wrong_key_is_one_line_and_leaves_nothing()
    {
        string image = await QemuCreateAsync("e.qcow2", string.Empty);
        string target = _dir.File("out.raw");

        RunResult noKey = await Imgtool("convert", "-O", "raw", image, target);
        Assert.Equal(1, noKey.ExitCode);
        Assert.Equal($"imgtool: {image}: Parameter 'encrypt.key-secret' is required for cipher", noKey.Err.Trim());

        RunResult wrong = await Imgtool("convert", "--object", "secret,id=s0,data=nope", "--image-opts", Opts(image), "-O", "raw", target);
        Assert.Equal(1, wrong.ExitCode);
        Assert.Equal($"imgtool: {image}: Invalid password, cannot unlock any keyslot", wrong.Err.Trim());

        RunResult wrongInfo = await Imgtool("info", "--object", "secret,id=s0,data=nope", "--image-opts", Opts(image));
        Assert.Equal(1, wrongInfo.ExitCode);
        Assert.Contains("Invalid password, cannot unlock any keyslot", wrongInfo.Err, StringComparison.Ordinal);

        RunResult unknownSecret = await Imgtool("create", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s9", target, "1M");
        Assert.NotEqual(0, unknownSecret.ExitCode);
        Assert.Contains("No secret with id 's9'", unknownSecret.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(target));

        RunResult secretFromFile = await Imgtool("info", "--object", $"secret,id=s0,file={_dir.File("missing")}", "--image-opts", Opts(image));
        Assert.Equal(1, secretFromFile.ExitCode);
        Assert.Single(secretFromFile.Err.Trim().Split('\n'));
    }

    [Fact]
    public async Task Secret_file_and_key_check_with_info()
    {
        string image = await QemuCreateAsync("e.qcow2", string.Empty);
        string secretFile = _dir.File("pw.txt");
        await File.WriteAllTextAsync(secretFile, "pw");
        RunResult info = await Imgtool("info", "--object", $"secret,id=s0,file={secretFile}", "--image-opts", Opts(image));
        Assert.True(info.ExitCode == 0, info.ToString());
        Assert.Contains("encrypted: yes", info.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compression_and_legacy_aes_are_refused_and_help_lists_the_options()
    {
        string model = _dir.File("m.raw");
        SparseFile(model, MiB, (0, 4096));
        string target = _dir.File("c.qcow2");
        RunResult compressed = await Imgtool("convert", "-c", "--object", Secret, "-O", "qcow2", "-o", CreateOptions(string.Empty), model, target);
        Assert.NotEqual(0, compressed.ExitCode);
        Assert.False(File.Exists(target));

        RunResult aes = await Imgtool("create", "-f", "qcow2", "-o", "encryption=on", target, "1M");
        Assert.NotEqual(0, aes.ExitCode);
        Assert.Contains("AES", aes.Err, StringComparison.Ordinal);

        // An image that claims crypt_method 1: one clear line.
        string legacy = _dir.File("legacy.qcow2");
        Assert.Equal(0, (await QemuImg("create", "-f", "qcow2", legacy, "1M")).ExitCode);
        await using (var stream = new FileStream(legacy, FileMode.Open))
        {
            stream.Position = 35;
            stream.WriteByte(1);
        }

        RunResult legacyInfo = await Imgtool("info", legacy);
        Assert.Equal(1, legacyInfo.ExitCode);
        Assert.Contains("crypt_method 1", legacyInfo.Err, StringComparison.Ordinal);

        RunResult help = await Imgtool("create", "-f", "qcow2", "-o", "help");
        foreach (string option in new[] { "encrypt.format", "encrypt.key-secret", "encrypt.cipher-alg", "encrypt.cipher-mode", "encrypt.ivgen-alg", "encrypt.ivgen-hash-alg", "encrypt.hash-alg", "encrypt.iter-time" })
        {
            Assert.Contains(option + "=", help.Out, StringComparison.Ordinal);
        }
    }

    public static TheoryData<string> Hostile => ["area offset unaligned", "area length huge", "slot iterations huge", "luks magic", "no pointer extension", "stripes huge"];

    /// <summary>Hostile encryption metadata: one clear line and exit 1, for info (no key) and convert (with key),
    /// without hanging in PBKDF2 or allocating what a field asks for.</summary>
    [Theory]
    [MemberData(nameof(Hostile))]
    public async Task Hostile_encryption_metadata_is_refused_in_one_line(string what)
    {
        string image = await QemuCreateAsync("h.qcow2", string.Empty);
        byte[] head = new byte[4096];
        await using (var stream = new FileStream(image, FileMode.Open))
        {
            await stream.ReadExactlyAsync(head);
            int ext = FindExtension(head, 0x0537be77);
            long luks = System.Buffers.Binary.BinaryPrimitives.ReadInt64BigEndian(head.AsSpan(ext + 8));
            (long offset, byte[] bytes) = what switch
            {
                "area offset unaligned" => (ext + 8L, new byte[] { 0, 0, 0, 0, 0, 0, 0x30, 0x39 }),
                "area length huge" => (ext + 16L, new byte[] { 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }),
                "slot iterations huge" => (luks + 208 + 4, new byte[] { 0xff, 0xff, 0xff, 0xff }),
                "stripes huge" => (luks + 208 + 44, new byte[] { 0x7f, 0xff, 0xff, 0xff }),
                "luks magic" => (luks, new byte[] { (byte)'X' }),
                _ => (ext, new byte[] { 0x12, 0x34, 0x56, 0x78 }),
            };
            stream.Position = offset;
            await stream.WriteAsync(bytes);
        }

        RunResult info = await Imgtool("info", image);
        Assert.Equal(1, info.ExitCode);
        Assert.Single(info.Err.Trim().Split('\n'));
        RunResult convert = await Imgtool("convert", "--object", Secret, "--image-opts", Opts(image), "-O", "raw", _dir.File("out.raw"));
        Assert.Equal(1, convert.ExitCode);
        Assert.Single(convert.Err.Trim().Split('\n'));
        Assert.False(File.Exists(_dir.File("out.raw")));
    }

    private static int FindExtension(byte[] head, uint type)
    {
        int position = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(100));
        while (true)
        {
            uint found = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(position));
            int length = (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(head.AsSpan(position + 4));
            if (found == type)
            {
                return position;
            }

            Assert.NotEqual(0u, found);
            position += 8 + ((length + 7) & ~7);
        }
    }
}
