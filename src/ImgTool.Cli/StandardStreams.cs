using System.Runtime.InteropServices;
using System.Text;

namespace ImgTool.Cli;

/// <summary>
/// stdout and stderr written with write(2), bypassing System.Console's streams. On Unix the first write through
/// Console.Out or Console.Error on a terminal initialises the runtime's terminal support, which loads terminfo and
/// writes its keypad_xmit string ("ESC[?1h ESC=", application keypad mode) to the terminal and never resets it:
/// every command's output, JSON included, then began with those bytes (issue 19 item 2). imgtool reads no keys and
/// moves no cursor, so it needs none of that; with these writers no terminal control sequence is ever emitted.
/// </summary>
internal static partial class StandardStreams
{
    private const int StandardOutput = 1, StandardError = 2;

    /// <summary>The writers for stdout and stderr and stdout's byte stream (cat), as Console's but without terminal set-up.</summary>
    public static (TextWriter Output, TextWriter Error, Stream BinaryOutput) Open()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
        {
            return (Console.Out, Console.Error, Console.OpenStandardOutput());
        }

        var output = new FileDescriptorStream(StandardOutput);
        return (Writer(output), Writer(new FileDescriptorStream(StandardError)), output);
    }

    /// <summary>
    /// The terminal's width in columns for help text, read with TIOCGWINSZ as Console.WindowWidth would, which
    /// first sets the terminal up too (and so writes the keypad string); 80 when stdout has no window size.
    /// </summary>
    public static int TerminalColumns()
    {
        const nuint TIOCGWINSZ = 0x5413; // Linux's number (asm-generic/ioctls.h)
        const int DefaultColumns = 80;
        if (!OperatingSystem.IsLinux())
        {
            return DefaultColumns;
        }

        WindowSize size = default;
        return GetWindowSize(StandardOutput, TIOCGWINSZ, ref size) == 0 && size.Columns > 0 ? size.Columns : DefaultColumns;
    }

    /// <summary>struct winsize (termios.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct WindowSize
    {
        public ushort Rows;
        public ushort Columns;
        public ushort XPixels;
        public ushort YPixels;
    }

    [LibraryImport("libc", EntryPoint = "ioctl")]
    private static partial int GetWindowSize(int descriptor, nuint request, ref WindowSize size);

    /// <summary>UTF-8 without a byte-order mark, flushed after every write and safe across threads, as Console.Out is.</summary>
    private static TextWriter Writer(Stream stream) =>
        TextWriter.Synchronized(new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 4096, leaveOpen: true) { AutoFlush = true });

    /// <summary>
    /// An inherited descriptor written with write(2), which advances the descriptor's shared offset: a FileStream
    /// would write at its own position (pwrite) and overwrite what an earlier command wrote to the same redirected
    /// file, as in `(imgtool info a; imgtool info b) &gt; log`.
    /// </summary>
    private sealed partial class FileDescriptorStream(int descriptor) : Stream
    {
        private const int EINTR = 4, EAGAIN = 11, EPIPE = 32;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override unsafe void Write(ReadOnlySpan<byte> buffer)
        {
            fixed (byte* start = buffer)
            {
                int written = 0;
                while (written < buffer.Length)
                {
                    nint result = WriteSystemCall(descriptor, start + written, (nuint)(buffer.Length - written));
                    if (result >= 0)
                    {
                        written += (int)result;
                        continue;
                    }

                    int errno = Marshal.GetLastPInvokeError();
                    switch (errno)
                    {
                        case EINTR:
                            continue;
                        case EAGAIN:
                            // A non-blocking descriptor someone else set up: wait for room, as Console's stream does.
                            Thread.Sleep(1);
                            continue;
                        case EPIPE:
                            // The reader went away (`imgtool map x | head -1`): the rest is not wanted, as for Console.
                            return;
                        default:
                            throw new IOException($"cannot write to {(descriptor == StandardOutput ? "standard output" : "standard error")}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
                    }
                }
            }
        }

        [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
        private static unsafe partial nint WriteSystemCall(int descriptor, byte* buffer, nuint count);
    }
}
